/**
 * Start-up benchmark: the compiled build (`npm run serve:<service>`, what the image runs) against
 * the same service run from source through tsx (`npm run start:<service>`, the baseline), in the
 * same run, alternating. For the gateway: time from spawn until `/readyz` answers 200; for both
 * the gateway and the transformer (with its 2 worker threads): resident memory once idle.
 * Builds first (`npm run build`; turbo skips what is unchanged).
 *
 *   npm run bench:startup
 *   BENCH_ROUNDS=5 npm run bench:startup
 *
 * Uses a throwaway database (dropped at the end) and its own Redis key prefix.
 */
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { createTestDatabase } from "@transporter/db/testing";
import { createRedis, testRedisPrefix } from "@transporter/queue";
import { deleteRedisPrefix } from "../test/e2e/support/infrastructure.js";
import { freePort, REPO_ROOT } from "../test/e2e/support/processes.js";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
/** Memory is read after this long idle (start-up garbage collected, threads warmed up). */
const SETTLE_MS = 4_000;
const MODES = {
  tsx: (service: string) => ["--import", "tsx", `services/${service}/src/main.ts`],
  compiled: (service: string) => ["--conditions=compiled", `services/${service}/dist/main.js`],
} as const;
type Mode = keyof typeof MODES;

const build = spawnSync("npm", ["run", "-s", "build"], { cwd: REPO_ROOT, stdio: ["ignore", "ignore", "inherit"], env: { ...process.env, TURBO_TELEMETRY_DISABLED: "1" } });
if (build.status !== 0) throw new Error("npm run build failed");

const db = await createTestDatabase();
const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const prefix = testRedisPrefix("bench-startup");

function residentMegabytes(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!match) throw new Error(`no VmRSS for ${pid}`);
  return Number(match[1]) / 1024;
}

async function measure(mode: Mode, service: "gateway" | "transformer"): Promise<{ readyMs: number | null; rssMb: number }> {
  const port = await freePort();
  const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", NODE_ENV: "test", LOG_LEVEL: "warn", DATABASE_URL: db.url, REDIS_URL: redisUrl, REDIS_PREFIX: prefix, GATEWAY_PORT: String(port), TRANSFORM_THREADS: "2" };
  const started = performance.now();
  const child = spawn(process.execPath, MODES[mode](service), { cwd: REPO_ROOT, env, stdio: ["ignore", "ignore", "inherit"] });
  try {
    let readyMs: number | null = null;
    if (service === "gateway") {
      for (;;) {
        if (child.exitCode !== null) throw new Error(`the ${mode} gateway exited (${child.exitCode})`);
        const ok = await fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.ok, () => false);
        if (ok) break;
        await sleep(10);
      }
      readyMs = performance.now() - started;
    }
    await sleep(SETTLE_MS);
    if (child.exitCode !== null) throw new Error(`the ${mode} ${service} exited (${child.exitCode})`);
    return { readyMs, rssMb: residentMegabytes(child.pid as number) };
  } finally {
    child.kill("SIGTERM");
    if (child.exitCode === null) await once(child, "exit");
  }
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number;

try {
  console.log(`start-up bench: ${ROUNDS} rounds, tsx (from source) and compiled (dist/) alternating; memory read after ${SETTLE_MS / 1000} s idle`);
  for (const service of ["gateway", "transformer"] as const) {
    const results: Record<Mode, Array<{ readyMs: number | null; rssMb: number }>> = { tsx: [], compiled: [] };
    for (let round = 0; round < ROUNDS; round++) for (const mode of ["tsx", "compiled"] as const) results[mode].push(await measure(mode, service));
    const summary = (mode: Mode) => {
      const ready = results[mode].map((r) => r.readyMs).filter((ms): ms is number => ms !== null);
      return { readyMs: ready.length ? median(ready) : null, rssMb: median(results[mode].map((r) => r.rssMb)) };
    };
    const [baseline, ours] = [summary("tsx"), summary("compiled")];
    const ready = ours.readyMs !== null && baseline.readyMs !== null ? `ready in ${ours.readyMs.toFixed(0)} ms vs ${baseline.readyMs.toFixed(0)} ms (${(ours.readyMs / baseline.readyMs).toFixed(2)}×), ` : "";
    console.log(`${service}${service === "transformer" ? " (2 threads)" : ""}: compiled vs tsx (medians): ${ready}RSS ${ours.rssMb.toFixed(0)} MB vs ${baseline.rssMb.toFixed(0)} MB (${(ours.rssMb / baseline.rssMb).toFixed(2)}×)`);
  }
} finally {
  const redis = createRedis(redisUrl);
  await deleteRedisPrefix(redis, prefix).finally(() => redis.quit());
  await db.drop();
}
