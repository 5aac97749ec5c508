/**
 * Fetch benchmark: 200,000 conversations from the platform simulator on loopback.
 *
 *  - "bare":    a loop of OAuth-signed requests paging the same endpoint, reading each body and
 *               nothing more (offsets computed locally, no JSON parsing after the first page);
 *  - "fetcher": the fetcher's path — @transporter/sources (CSDS discovery, Redis token bucket,
 *               retries, next-link paging with two pages read ahead, each page validated and laid
 *               out from its bytes, window filter, de-duplication) → NDJSON chunks of the records
 *               as received → the file-system staging store (SHA-256 on the way).
 *
 * The simulator runs in its own process; each path runs in its own child process, twice,
 * alternating (BENCH_ROUNDS, default 2; the best run of each counts), so both see the same
 * simulator and machine. Reported: records/s, peak RSS, RSS sampled from start to end (flat
 * memory), and the fetcher/bare throughput ratio (target ≥ 0.7).
 *
 *   npm run bench:fetch                  (200,000 conversations)
 *   BENCH_RECORDS=50000 npm run bench:fetch
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const RECORDS = Number(process.env.BENCH_RECORDS ?? 200_000);
const PER_HOUR = 2000;
const ACCOUNT = "90210";
const SEED = "bench-fetch";
const CREDENTIALS = { consumerKey: "bench-key", consumerSecret: "bench-secret", token: "bench-token", tokenSecret: "bench-token-secret" };
const FROM = Date.parse("2026-09-01T00:00:00Z");

interface ChildResult {
  path: "bare" | "fetcher";
  records: number;
  /** Records the API sent (the bare loop also receives the rounding margin it does not filter). */
  served?: number;
  requests: number;
  bytes: number;
  ms: number;
  maxRssMb: number;
  rssSamplesMb: number[];
  heapSamplesMb: number[];
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
    server.on("error", reject);
  });
}

/** The window holding exactly RECORDS conversations from FROM. */
async function windowEnd(): Promise<number> {
  const { eventsInRange, conversationSeries } = await import("../services/simulator/src/index.js");
  const spec = conversationSeries(ACCOUNT, SEED, { perHour: PER_HOUR });
  let n = 0;
  for (const ref of eventsInRange(spec, FROM, FROM + 365 * 24 * 3_600_000)) {
    if (n === RECORDS) return ref.startMs;
    n++;
  }
  throw new Error("not enough records in a year");
}

function sampler(samples: number[], heap: number[] = []): () => void {
  return () => {
    // With --expose-gc (BENCH_GC=1) collect first, so heap samples show live memory only.
    (globalThis as { gc?: () => void }).gc?.();
    const m = process.memoryUsage();
    samples.push(Math.round(m.rss / 1048576));
    heap.push(Math.round(m.heapUsed / 1048576));
  };
}

async function runBare(simUrl: string, to: number): Promise<ChildResult> {
  const { MESSAGING_INTERACTIONS_SOURCE, oauthHeader } = await import("../libs/sources/src/index.js");
  const samples: number[] = [];
  const heap: number[] = [];
  const sample = sampler(samples, heap);
  const base = `${simUrl}/messaging_history/api/account/${ACCOUNT}/conversations/search`;
  const body = JSON.stringify({ start: { from: FROM, to: to - 1 } });
  sample();
  const started = performance.now();
  let requests = 0;
  let bytes = 0;
  let total = Number.POSITIVE_INFINITY;
  let offset = 0;
  while (offset < total) {
    const url = `${base}?offset=${offset}&limit=100&sort=start:asc&source=${MESSAGING_INTERACTIONS_SOURCE}`;
    const res = await fetch(url, { method: "POST", headers: { authorization: oauthHeader("POST", url, CREDENTIALS), "content-type": "application/json" }, body });
    const text = await res.text();
    requests++;
    bytes += text.length;
    if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
    if (offset === 0) total = (JSON.parse(text) as { _metadata: { count: number } })._metadata.count;
    offset += 100;
    if (requests % 200 === 0) sample();
  }
  sample();
  const ms = performance.now() - started;
  // Same window as the fetcher; `total` also counts the API's 10-minute rounding margin.
  return { path: "bare", records: RECORDS, served: total, requests, bytes, ms, maxRssMb: Math.round(process.resourceUsage().maxRSS / 1024), rssSamplesMb: samples, heapSamplesMb: heap };
}

async function runFetcher(simUrl: string, to: number, outDir: string): Promise<ChildResult> {
  const { Readable } = await import("node:stream");
  // The fetcher's own path (services/fetcher/src/fetch.ts), without the queue and database around it.
  const { createPlatform, createRateBudget, ndjsonChunks } = await import("../libs/sources/src/index.js");
  // The staging store module itself (the storage index also loads every destination SDK).
  const { FsStagingStore } = await import("../libs/storage/src/staging/fs-store.js");
  const { Redis } = await import("ioredis");
  const redis = new Redis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379");
  const prefix = `bench-fetch-${process.pid}`;
  const budget = createRateBudget(redis, { prefix, ratePerSecond: 100_000 });
  const platform = createPlatform({ csdsUrl: simUrl, allowInsecure: true, http: { budget } });
  const staging = new FsStagingStore(outDir);
  const samples: number[] = [];
  const heap: number[] = [];
  const sample = sampler(samples, heap);
  sample();
  const started = performance.now();
  const source = platform.openSource(ACCOUNT, CREDENTIALS);
  let records = 0;
  const lines = ndjsonChunks(source.fetch("messaging-interactions", { from: new Date(FROM), to: new Date(to) }, { asReceived: true }), () => {
    if (++records % 20_000 === 0) sample();
  });
  const stored = await staging.put("tenants/bench/runs/bench/raw/records.ndjson", Readable.from(lines));
  sample();
  const ms = performance.now() - started;
  const keys = await redis.keys(`${prefix}:*`);
  if (keys.length) await redis.del(...keys);
  await redis.quit();
  return { path: "fetcher", records, requests: source.calls, bytes: stored.bytes, ms, maxRssMb: Math.round(process.resourceUsage().maxRSS / 1024), rssSamplesMb: samples, heapSamplesMb: heap };
}

async function childMain(): Promise<void> {
  const [, , , mode, simUrl, to, outDir] = process.argv;
  const result = mode === "bare" ? await runBare(simUrl!, Number(to)) : await runFetcher(simUrl!, Number(to), outDir!);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

function runChild(mode: "bare" | "fetcher", simUrl: string, to: number, outDir: string): ChildResult {
  const run = spawnSync(process.execPath, [...(process.env.BENCH_GC === "1" ? ["--expose-gc"] : []), ...(process.env.BENCH_PROFILE_DIR ? ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_PROFILE_DIR}`] : []), "--import", "tsx", fileURLToPath(import.meta.url), "--child", mode, simUrl, String(to), outDir], {
    cwd: ROOT,
    encoding: "utf8",
    maxBuffer: 16 * 1024 * 1024,
  });
  if (run.status !== 0) throw new Error(`${mode} child failed:\n${run.stderr}`);
  return JSON.parse(run.stdout.trim().split("\n").pop()!) as ChildResult;
}

async function startSimulatorProcess(): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort();
  const child = spawn(process.execPath, ["--import", "tsx", "services/simulator/src/main.ts"], {
    cwd: ROOT,
    env: { ...process.env, SIMULATOR_PORT: String(port), SIMULATOR_SEED: SEED, LOG_LEVEL: "silent", NODE_ENV: "development" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 200; i++) {
    try {
      if ((await fetch(`${url}/_simulator/health`)).ok) break;
    } catch {
      /* not up yet */
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const registered = await fetch(`${url}/_simulator/accounts/${ACCOUNT}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ ...CREDENTIALS, volume: { conversations: PER_HOUR } }),
  });
  if (registered.status !== 204) throw new Error(`could not register the bench account: HTTP ${registered.status}`);
  return { url, child };
}

async function main(): Promise<void> {
  const to = await windowEnd();
  const { url, child } = await startSimulatorProcess();
  const outDir = mkdtempSync(join(tmpdir(), "bench-fetch-"));
  try {
    console.log(`fetch benchmark: ${RECORDS.toLocaleString("en")} conversations, ${new Date(FROM).toISOString()} → ${new Date(to).toISOString()}, simulator ${url} (own process)`);
    const results: ChildResult[] = [];
    const rounds = Number(process.env.BENCH_ROUNDS ?? 2);
    const order = Array.from({ length: rounds }, () => ["bare", "fetcher"] as const).flat();
    for (const mode of order) {
      const r = runChild(mode, url, to, outDir);
      results.push(r);
      console.log(
        `  ${mode.padEnd(8)} ${r.records.toLocaleString("en").padStart(8)} records  ${r.requests} requests  ${(r.ms / 1000).toFixed(1)} s  ` +
          `${Math.round(r.records / (r.ms / 1000)).toLocaleString("en")} records/s  peak RSS ${r.maxRssMb} MB  RSS from start to end: ${r.rssSamplesMb.join(" ")} MB; heap used: ${r.heapSamplesMb.join(" ")} MB`,
      );
    }
    const best = (mode: "bare" | "fetcher") => results.filter((r) => r.path === mode).reduce((a, b) => (a.ms <= b.ms ? a : b));
    const bare = best("bare");
    const fetcher = best("fetcher");
    const rate = (r: ChildResult) => r.records / (r.ms / 1000);
    const ratio = rate(fetcher) / rate(bare);
    const staged = statSync(join(outDir, "tenants/bench/runs/bench/raw/records.ndjson")).size;
    if (fetcher.records !== RECORDS) throw new Error(`fetcher delivered ${fetcher.records} records, expected ${RECORDS}`);
    const summary = {
      records: RECORDS,
      bare: { recordsPerSecond: Math.round(rate(bare)), seconds: +(bare.ms / 1000).toFixed(2), peakRssMb: bare.maxRssMb, requests: bare.requests },
      fetcher: { recordsPerSecond: Math.round(rate(fetcher)), seconds: +(fetcher.ms / 1000).toFixed(2), peakRssMb: fetcher.maxRssMb, requests: fetcher.requests, ndjsonBytes: staged },
      ratio: +ratio.toFixed(3),
      target: 0.7,
      pass: ratio >= 0.7,
    };
    console.log(`\nfetcher / bare throughput: ${ratio.toFixed(2)} (target ≥ 0.70) ${summary.pass ? "PASS" : "FAIL"}; NDJSON ${Math.round(staged / 1048576)} MB`);
    console.log(JSON.stringify(summary));
  } finally {
    child.kill("SIGTERM");
    rmSync(outDir, { recursive: true, force: true });
  }
}

if (process.argv[2] === "--child") await childMain();
else await main();
