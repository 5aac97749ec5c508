/**
 * Pipeline benchmark: 2,000 small runs (~100 conversations each, CSV, managed destination)
 * through all four stages (fetch → transform → encrypt → deliver) with every service in one
 * process (`startSystem`, fs staging, the platform simulator as source, in its own process as the
 * remote platform would be: its work is not ours). Tenant, key, source,
 * destination and task are set up through the API; the runs are then created the way the
 * scheduler's tick creates them (Run rows in one insert, `fetch` jobs enqueued in bulk), and the
 * clock runs from the enqueue to the last run's finish. In the same process, a bare BullMQ
 * four-queue pipeline whose workers do nothing but add the next job (same concurrency per
 * queue, same job options, jobs added in bulk too) moves the same number of jobs. Prints runs/s
 * of both and the ratio (target ≥ 0.25). Then, with the system stopped, the platform ceiling:
 * the same windows only downloaded from the same simulator (see `platformCeiling`), printed
 * with its own ratio to the bare pipeline: the most any pipeline that fetches the records could
 * reach on this machine.
 *
 *   npm run bench:pipeline
 *   BENCH_RUNS=500 npm run bench:pipeline
 *   BENCH_RECORDS=100 BENCH_WINDOW_MINUTES=15 …   (mean conversations per run, window length)
 *   BENCH_PARTS=bare …                            (only one side: bare or system; default both)
 *   BENCH_SIMULATOR=in-process …                  (the simulator in the bench's process instead)
 *
 * Uses a throwaway database (dropped at the end), its own Redis key prefixes and temp folders.
 */
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Queue, Worker } from "bullmq";
import { loadConfig, type Config } from "@transporter/config";
import { createTestDatabase } from "@transporter/db/testing";
import { createOperatorKey } from "@transporter/gateway";
import { getReport } from "@transporter/reports";
import { createRedis, defaultJobOptions, testRedisPrefix, type Redis } from "@transporter/queue";
import { MESSAGING_INTERACTIONS_SOURCE, oauthHeader, type SourceCredentials } from "@transporter/sources";
import { startSimulator } from "@transporter/simulator";
import { startSimulatorProcess } from "./support/simulator-process.js";
import { startSystem } from "../scripts/system.js";
import { apiClient, pastWindows, provisionTenant } from "../test/e2e/support/api.js";
import { deleteRedisPrefix } from "../test/e2e/support/infrastructure.js";

const RUNS = Number(process.env.BENCH_RUNS ?? 2_000);
const RECORDS = Number(process.env.BENCH_RECORDS ?? 100);
const WINDOW_MINUTES = Number(process.env.BENCH_WINDOW_MINUTES ?? 15);
/** The simulator's mean volume that gives RECORDS conversations per window. */
const PER_HOUR = Math.round((RECORDS * 60) / WINDOW_MINUTES);
/** Jobs per bulk enqueue (both sides). */
const BULK = 500;
const TARGET_RATIO = 0.25;
const SIMULATOR_IN_PROCESS = process.env.BENCH_SIMULATOR === "in-process";
const PARTS = new Set((process.env.BENCH_PARTS ?? "bare,system").split(",").map((p) => p.trim()));

const fmt = (n: number, digits = 1) => n.toFixed(digits);
const REPORT_ID = "messaging-conversations";
/** What the fetcher asks the platform for, for the bench task's report (its latest version). */
const CONTENT = getReport(REPORT_ID).version.sourceContent;

/** Ours: 2,000 runs through the real services in one process. */
interface SystemResult {
  runsPerSecond: number;
  seconds: number;
  records: number;
  failed: number;
  stages: Record<string, number>;
  /** CPU time per run: this process (all threads) and the simulator's process. */
  cpuMsPerRun: { ours: number; simulator: number | null };
  /** Share of the time the main thread's event loop was busy. */
  eventLoopUtilization: number;
  /** The same windows only downloaded from the same simulator: no pipeline can be faster here. */
  platformCeiling: { runsPerSecond: number; seconds: number; requests: number; megabytes: number };
}

/**
 * The platform's ceiling on this machine: the requests the fetcher makes for each run's window
 * (OAuth-signed search POSTs, 100 per page, following the next links) at the fetch
 * concurrency, each body read and nothing else done with it. The simulator builds and
 * serialises every page, and it shares the machine's cores with us, PostgreSQL and Redis;
 * a run cannot finish before its records have been served, so no pipeline, ours or any other,
 * can exceed these runs/s against it.
 */
async function platformCeiling(
  simulatorUrl: string,
  accountId: string,
  credentials: SourceCredentials,
  windows: ReadonlyArray<{ start: Date; end: Date }>,
  concurrency: number,
): Promise<SystemResult["platformCeiling"]> {
  const first = `${simulatorUrl}/messaging_history/api/account/${encodeURIComponent(accountId)}/conversations/search?offset=0&limit=100&sort=start:asc&source=${MESSAGING_INTERACTIONS_SOURCE}`;
  let requests = 0;
  let bytes = 0;
  let nextWindow = 0;
  const started = performance.now();
  async function downloader(): Promise<void> {
    for (let w = nextWindow++; w < windows.length; w = nextWindow++) {
      const { start, end } = windows[w]!;
      // The parts the report reads, as the fetcher asks for them.
      const body = JSON.stringify({ start: { from: start.getTime(), to: end.getTime() - 1 }, contentToRetrieve: CONTENT });
      for (let url: string | undefined = first; url; ) {
        const response: Response = await fetch(url, { method: "POST", headers: { authorization: oauthHeader("POST", url, credentials), "content-type": "application/json" }, body });
        const page = Buffer.from(await response.arrayBuffer());
        if (response.status !== 200) throw new Error(`simulator answered ${response.status}: ${page.toString("utf8", 0, 200)}`);
        requests++;
        bytes += page.length;
        // `_metadata` comes first: the next link is in the page's head (as the fetcher reads it).
        url = /"next"\s*:\s*\{[^{}]*?"href"\s*:\s*"([^"\\]+)"/.exec(page.toString("utf8", 0, 4096))?.[1];
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, downloader));
  const seconds = (performance.now() - started) / 1000;
  return { runsPerSecond: windows.length / seconds, seconds, requests, megabytes: bytes / 1_048_576 };
}

async function benchSystem(baseEnv: Record<string, string>): Promise<SystemResult> {
  const db = await createTestDatabase();
  const simulator = SIMULATOR_IN_PROCESS
    ? { ...(await startSimulator({ port: 0, host: "127.0.0.1" })), cpuSeconds: null }
    : await startSimulatorProcess();
  const dataDir = await mkdtemp(join(tmpdir(), "bench-pipeline-"));
  const prefix = testRedisPrefix("bench-pipeline");
  const config: Config = loadConfig({
    ...baseEnv,
    DATABASE_URL: db.url,
    REDIS_PREFIX: prefix,
    STAGING_DRIVER: "fs",
    STAGING_DIR: join(dataDir, "staging"),
    MANAGED_DRIVER: "fs",
    MANAGED_DIR: join(dataDir, "managed"),
    PLATFORM_CSDS_URL: simulator.url,
    PLATFORM_DATA_ACCESS_URL: simulator.url,
    ALLOW_INSECURE_ENDPOINTS: "true",
    GATEWAY_PORT: "0",
  });
  let system: Awaited<ReturnType<typeof startSystem>> | undefined = await startSystem(config);
  try {
    const call = apiClient(system.gateway.url);
    const operator = await createOperatorKey(system.prisma, "pipeline bench");
    const tenant = await provisionTenant(call, operator.key, simulator, { name: "Pipeline bench", conversationsPerHour: PER_HOUR });
    const task = await call<{ id: string }>(tenant.adminKey, "POST", "/v1/tasks", {
      description: "Pipeline bench",
      reportId: REPORT_ID,
      format: "csv",
      schedule: { frequency: "interval", everyMinutes: WINDOW_MINUTES, delayMinutes: 0 },
      sourceId: tenant.sourceId,
      destinationId: tenant.managedDestinationId,
      enabled: false,
    });
    const scheduledFor = new Date();
    const runs = pastWindows(RUNS, WINDOW_MINUTES, 60).map((window) => ({
      id: randomUUID(), tenantId: tenant.tenantId, taskId: task.id, windowStart: window.start, windowEnd: window.end, scheduledFor, trigger: "manual" as const,
    }));
    await system.prisma.run.createMany({ data: runs });

    const started = Date.now();
    const cpuBefore = process.cpuUsage();
    const eluBefore = performance.eventLoopUtilization();
    const simulatorCpuBefore = (await simulator.cpuSeconds?.()) ?? null;
    for (let i = 0; i < RUNS; i += BULK) {
      await system.queues.enqueueBulk("fetch", runs.slice(i, i + BULK).map((run) => ({ runId: run.id, tenantId: run.tenantId })));
    }
    let lastReport = 0;
    for (;;) {
      const finished = await system.prisma.run.count({ where: { status: { in: ["SUCCEEDED", "FAILED", "SKIPPED"] } } });
      if (finished >= RUNS) break;
      if (Date.now() - lastReport > 10_000) {
        lastReport = Date.now();
        console.log(`  … ${finished}/${RUNS} runs finished after ${fmt((Date.now() - started) / 1000, 0)} s`);
      }
      await sleep(250);
    }
    const cpu = process.cpuUsage(cpuBefore);
    const elu = performance.eventLoopUtilization(eluBefore).utilization;
    const simulatorCpu = simulatorCpuBefore === null ? null : ((await simulator.cpuSeconds?.()) ?? 0) - simulatorCpuBefore;
    const last = await system.prisma.run.aggregate({ _max: { finishedAt: true }, _sum: { records: true } });
    const seconds = ((last._max.finishedAt?.getTime() ?? Date.now()) - started) / 1000;
    const failed = await system.prisma.run.count({ where: { status: { not: "SUCCEEDED" } } });
    const stageRows = await system.prisma.$queryRaw<Array<{ fetch: number; transform: number; encrypt: number; deliver: number }>>`
      SELECT avg(extract(epoch FROM "fetchFinishedAt" - "fetchStartedAt")) * 1000 AS fetch,
             avg(extract(epoch FROM "transformFinishedAt" - "transformStartedAt")) * 1000 AS transform,
             avg(extract(epoch FROM "encryptFinishedAt" - "encryptStartedAt")) * 1000 AS encrypt,
             avg(extract(epoch FROM "deliveredAt" - "deliverStartedAt")) * 1000 AS deliver
      FROM "Run" WHERE status = 'SUCCEEDED'`;
    const stages = Object.fromEntries(Object.entries(stageRows[0] ?? {}).map(([k, v]) => [k, Number(v)]));
    const cpuMsPerRun = { ours: (cpu.user + cpu.system) / 1000 / RUNS, simulator: simulatorCpu === null ? null : (simulatorCpu * 1000) / RUNS };
    // With the system stopped, the same windows downloaded from the same simulator.
    await system.stop();
    system = undefined;
    const ceiling = await platformCeiling(simulator.url, tenant.accountId, tenant.credentials, runs.map((run) => ({ start: run.windowStart, end: run.windowEnd })), config.CONCURRENCY_FETCH);
    return { runsPerSecond: RUNS / seconds, seconds, records: Number(last._sum.records ?? 0), failed, stages, cpuMsPerRun, eventLoopUtilization: elu, platformCeiling: ceiling };
  } finally {
    await system?.stop();
    await simulator.stop();
    const redis = createRedis(config.REDIS_URL);
    await deleteRedisPrefix(redis, prefix);
    await redis.quit();
    await db.drop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

/** The baseline: four BullMQ queues, each worker only adds the next job; same concurrency and job options. */
async function benchBareBullmq(config: Config): Promise<{ runsPerSecond: number; seconds: number }> {
  const redis: Redis = createRedis(config.REDIS_URL);
  const prefix = testRedisPrefix("bench-bare");
  const names = ["bare-fetch", "bare-transform", "bare-encrypt", "bare-deliver"] as const;
  const concurrency = [config.CONCURRENCY_FETCH, config.CONCURRENCY_TRANSFORM, config.CONCURRENCY_ENCRYPT, config.CONCURRENCY_DELIVER];
  const jobOptions = defaultJobOptions({ attempts: config.JOB_ATTEMPTS, backoffMs: config.JOB_BACKOFF_MS });
  const queues = names.map((name) => new Queue(name, { connection: redis, prefix, defaultJobOptions: jobOptions }));
  let done = 0;
  let resolveDone: () => void = () => undefined;
  const allDone = new Promise<void>((resolve) => (resolveDone = resolve));
  const workers = names.map(
    (name, i) =>
      new Worker(
        name,
        async (job) => {
          const next = queues[i + 1];
          if (next) {
            await next.add(names[i + 1] as string, job.data, { jobId: `${job.data.runId}-${i + 1}` });
          } else if (++done === RUNS) {
            resolveDone();
          }
        },
        { connection: redis, prefix, concurrency: concurrency[i] as number },
      ),
  );
  try {
    await Promise.all(workers.map((w) => w.waitUntilReady()));
    const started = Date.now();
    const first = queues[0] as Queue;
    for (let i = 0; i < RUNS; i += BULK) {
      const ids = Array.from({ length: Math.min(BULK, RUNS - i) }, (_, k) => `run${i + k}`);
      await first.addBulk(ids.map((runId) => ({ name: names[0], data: { runId }, opts: { jobId: `${runId}-0` } })));
    }
    await allDone;
    const seconds = (Date.now() - started) / 1000;
    return { runsPerSecond: RUNS / seconds, seconds };
  } finally {
    await Promise.all(workers.map((w) => w.close()));
    await Promise.all(queues.map((q) => q.close()));
    await deleteRedisPrefix(redis, prefix);
    await redis.quit();
  }
}

const baseEnv: Record<string, string> = {
  ...(process.env as Record<string, string>),
  LOG_LEVEL: process.env.LOG_LEVEL ?? "warn",
  API_RATE_LIMIT_PER_MINUTE: "1000000",
  PLATFORM_RATE_PER_SECOND: process.env.PLATFORM_RATE_PER_SECOND ?? "10000",
};
const config = loadConfig(baseEnv);
console.log(
  `pipeline bench: ${RUNS} runs of ~${RECORDS} conversations (${WINDOW_MINUTES}-minute windows at ${PER_HOUR}/h), CSV, managed storage; ` +
    `concurrency fetch ${config.CONCURRENCY_FETCH} / transform ${config.CONCURRENCY_TRANSFORM} / encrypt ${config.CONCURRENCY_ENCRYPT} / deliver ${config.CONCURRENCY_DELIVER}`,
);

const bare = PARTS.has("bare") ? await benchBareBullmq(config) : undefined;
if (bare) console.log(`bare BullMQ four-queue no-op pipeline: ${RUNS} jobs in ${fmt(bare.seconds, 2)} s = ${fmt(bare.runsPerSecond)} runs/s`);
const ours = PARTS.has("system") ? await benchSystem(baseEnv) : undefined;
if (ours) {
  console.log(
    `transporter (all services, one process): ${RUNS} runs in ${fmt(ours.seconds)} s = ${fmt(ours.runsPerSecond)} runs/s ` +
      `(${fmt(ours.records / RUNS)} records/run; ${ours.failed} not SUCCEEDED)`,
  );
  const simulatorCpu = ours.cpuMsPerRun.simulator === null ? "in this process" : `${fmt(ours.cpuMsPerRun.simulator)} ms in its own process`;
  console.log(`  CPU per run: ${fmt(ours.cpuMsPerRun.ours)} ms in this process (all threads); simulator ${simulatorCpu}; main thread busy ${fmt(ours.eventLoopUtilization * 100, 0)}% of the time`);
  console.log(`  mean stage times (ms): ${Object.entries(ours.stages).map(([stage, ms]) => `${stage} ${fmt(ms)}`).join(", ")}`);
  const ceiling = ours.platformCeiling;
  console.log(
    `platform ceiling (the same ${RUNS} windows only downloaded from the same simulator, ${config.CONCURRENCY_FETCH} at a time): ` +
      `${ceiling.requests} requests, ${fmt(ceiling.megabytes)} MiB in ${fmt(ceiling.seconds, 2)} s = ${fmt(ceiling.runsPerSecond)} runs/s`,
  );
  if (ours.failed > 0) process.exitCode = 1;
}
if (bare && ours) {
  const ratio = ours.runsPerSecond / bare.runsPerSecond;
  console.log(`ratio transporter / bare BullMQ: ${fmt(ratio, 3)} (target ≥ ${TARGET_RATIO}: ${ratio >= TARGET_RATIO ? "met" : "NOT met"})`);
  const ceilingRatio = ours.platformCeiling.runsPerSecond / bare.runsPerSecond;
  console.log(
    `ratio platform ceiling / bare BullMQ: ${fmt(ceilingRatio, 3)} (the most any pipeline fetching these records could reach here); ` +
      `transporter / platform ceiling: ${fmt(ours.runsPerSecond / ours.platformCeiling.runsPerSecond, 2)}`,
  );
}
