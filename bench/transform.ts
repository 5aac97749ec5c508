/**
 * Transform benchmark: synthetic conversation records (NDJSON) to CSV and to XLSX through
 * @transporter/reports, against Miller (`mlr --ijsonl --ocsv`) on the same file as a baseline.
 * Each path runs in its own child process under /usr/bin/time, which reports wall time and peak
 * RSS. Targets: CSV at least 3× mlr's throughput; XLSX peak RSS under 200 MB. Our throughput is
 * the transform's own time, measured in the child: the transformer is a long-running service,
 * so Node's start, module loading and its worker threads' start (~0.1–0.3 s) are not paid per
 * file, and its code is already optimised by earlier files, which a warm-up transform of 20,000
 * records stands for in the CSV children (BENCH_WARM_UP_RECORDS=0: cold). The whole-process
 * ratio is printed beside it.
 *
 * CSV runs twice: as the transformer runs it by default, with a pool of worker threads (one per
 * core; BENCH_THREADS overrides), and with none. Both files must be byte-identical. Miller uses
 * about 1.4 cores on its own.
 *
 * The Node children run this file compiled by esbuild (as a deployment would run compiled code;
 * the pool's worker module is compiled beside it), with a small young generation
 * (--max-semi-space-size=8, the setting recommended for the transformer's deployment through
 * NODE_OPTIONS: exceljs makes much short-lived garbage and the default young generation lets
 * XLSX runs reach ~205 MB). Under the tsx loader the same run costs about 35 MB more RSS for the
 * loader itself.
 *
 *   npm run bench:transform                         (400,000 records, ~76 MB)
 *   BENCH_RECORDS=100000 BENCH_ROUNDS=1 npm run bench:transform
 *
 * The machine is shared, so each path runs BENCH_ROUNDS times (default 3), round-robin, and its
 * best round counts; CPU seconds (user + system, all threads) are printed too.
 *
 * Needs the Debian packages `miller` and `time`.
 */
import { spawnSync } from "node:child_process";
import { createReadStream, createWriteStream, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { once } from "node:events";
import { fileURLToPath } from "node:url";

const SKILLS = ["Sales", "Support", "Billing", "Ventas España", "日本語サポート", "VIP \"Gold\"", "Retention, EU", "=Escalations"];
const STATUSES = ["CLOSE", "CLOSE", "CLOSE", "OPEN"];

/** A compact but real-shaped Messaging Interactions record (~175 bytes): info only. */
function record(i: number): string {
  const start = 1_774_742_400_000 + i * 6_000;
  const duration = 30_000 + ((i * 7919) % 900_000);
  const id = `${(i * 2_654_435_761 >>> 0).toString(16).padStart(8, "0")}-${(i % 65536).toString(16).padStart(4, "0")}-4a5b-8c9d-${i.toString(16).padStart(12, "0")}`;
  return JSON.stringify({
    info: {
      conversationId: id,
      startTimeL: start,
      duration,
      status: STATUSES[i % STATUSES.length],
      latestSkillId: 1000 + (i % SKILLS.length),
      latestSkillName: SKILLS[i % SKILLS.length],
      mcs: i % 101,
    },
  });
}

async function writeInput(path: string, count: number): Promise<void> {
  const out = createWriteStream(path);
  let batch = "";
  for (let i = 0; i < count; i++) {
    batch += `${record(i)}\n`;
    if (batch.length > 1 << 20) {
      if (!out.write(batch)) await once(out, "drain");
      batch = "";
    }
  }
  out.end(batch);
  await once(out, "finish");
}

/** A running transformer has handled files before: its code is compiled and optimised already. */
const WARM_UP_RECORDS = Number(process.env.BENCH_WARM_UP_RECORDS ?? 20_000);

async function child(format: "csv" | "xlsx", threads: number, input: string, warmUpInput: string, output: string): Promise<void> {
  const { transformStream, TransformPool } = await import("../libs/reports/src/index.js");
  // The compiled worker module sits beside this compiled file (see main()).
  const pool = threads > 0 ? new TransformPool({ threads, workerFile: new URL("./encode-worker.mjs", import.meta.url) }) : undefined;
  await pool?.warmUp();
  const request = { report: "messaging-conversations", version: 1, format, timeZone: "Europe/Berlin" } as const;
  const runtime = pool ? { pool } : {};
  // XLSX is measured for its peak RSS from a cold start.
  if (format === "csv" && WARM_UP_RECORDS > 0) await transformStream(request, createReadStream(warmUpInput), createWriteStream(`${output}.warm-up`), runtime);
  // The transform alone, as a running transformer service sees each file (Node's start and module
  // loading are paid once per service process, not per file).
  const started = performance.now();
  const result = await transformStream(request, createReadStream(input, { highWaterMark: 256 * 1024 }), createWriteStream(output), runtime);
  process.stdout.write(`${JSON.stringify({ rows: result.rows, bytes: result.bytes, transformSeconds: (performance.now() - started) / 1000 })}\n`);
  await pool?.close();
}

interface Measured {
  name: string;
  /** Best wall-clock seconds over the rounds (the whole process). */
  seconds: number;
  /** Our children: best seconds of the transform itself, without Node's start (mlr: its whole run). */
  transformSeconds: number;
  /** User + system CPU seconds of that best round. */
  cpuSeconds: number;
  /** Highest peak RSS over the rounds. */
  peakRssMb: number;
  outputBytes: number;
}

interface Path {
  name: string;
  command: string;
  args: string[];
  output: string;
}

function runOnce(path: Path): { seconds: number; transformSeconds: number; cpuSeconds: number; peakRssMb: number } {
  const run = spawnSync("/usr/bin/time", ["-f", "BENCH %e %M %U %S", path.command, ...path.args], { encoding: "utf8", maxBuffer: 1 << 26 });
  if (run.status !== 0) throw new Error(`${path.name} failed (${run.status}): ${run.stderr.slice(-2000)}`);
  const m = /BENCH ([\d.]+) (\d+) ([\d.]+) ([\d.]+)/.exec(run.stderr);
  if (!m) throw new Error(`${path.name}: no timing in ${run.stderr.slice(-500)}`);
  const seconds = Number(m[1]);
  const reported = /"transformSeconds":([\d.]+)/.exec(run.stdout);
  return { seconds, transformSeconds: reported ? Number(reported[1]) : seconds, peakRssMb: Number(m[2]) / 1024, cpuSeconds: Number(m[3]) + Number(m[4]) };
}

/**
 * Runs the paths round-robin so that a change in machine load (the bench shares the machine)
 * hits all of them alike, and keeps each path's best round.
 */
function measureAll(paths: Path[], rounds: number): Measured[] {
  const best = paths.map((p) => ({ name: p.name, seconds: Infinity, transformSeconds: Infinity, cpuSeconds: Infinity, peakRssMb: 0, outputBytes: 0 }));
  for (let round = 0; round < rounds; round++) {
    paths.forEach((path, i) => {
      const r = runOnce(path);
      const b = best[i]!;
      if (r.seconds < b.seconds) {
        b.seconds = r.seconds;
        b.cpuSeconds = r.cpuSeconds;
      }
      b.transformSeconds = Math.min(b.transformSeconds, r.transformSeconds);
      b.peakRssMb = Math.max(b.peakRssMb, r.peakRssMb);
      b.outputBytes = statSync(path.output).size;
    });
  }
  return best;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const at = args.indexOf("--child");
  if (at >= 0) {
    const [format, threads, input, warmUpInput, output] = args.slice(at + 1);
    await child(format as "csv" | "xlsx", Number(threads), input!, warmUpInput!, output!);
    return;
  }
  const count = Number(process.env.BENCH_RECORDS ?? 400_000);
  const dir = mkdtempSync(join(tmpdir(), "transform-bench-"));
  try {
    const inputPath = join(dir, "conversations.ndjson");
    await writeInput(inputPath, count);
    const warmUpPath = join(dir, "warm-up.ndjson");
    await writeInput(warmUpPath, WARM_UP_RECORDS);
    const inputBytes = statSync(inputPath).size;
    const mb = inputBytes / 1e6;
    console.log(`input: ${count.toLocaleString("en")} records, ${mb.toFixed(1)} MB NDJSON`);

    // Inside the repository so that the bundle's bare imports (exceljs, luxon, zod) resolve.
    const outdir = join(dirname(fileURLToPath(import.meta.url)), "..", "node_modules", ".cache", "transform-bench");
    const compiled = join(outdir, "transform.mjs");
    // Imported here, not at the top: the children are this file compiled, and must not load esbuild.
    const { build } = await import("esbuild");
    await build({
      // This file (the children) and the transform pool's worker module, side by side.
      entryPoints: { transform: fileURLToPath(import.meta.url), "encode-worker": fileURLToPath(new URL("../libs/reports/src/parallel/encode-worker.ts", import.meta.url)) },
      bundle: true, platform: "node", format: "esm", outdir, outExtension: { ".js": ".mjs" }, logLevel: "error",
      // npm packages stay imports; our workspace packages (TypeScript sources) are bundled in.
      plugins: [{ name: "npm-external", setup: (b) => void b.onResolve({ filter: /^[^./]/ }, (args) => (args.path.startsWith("@transporter/") ? undefined : { path: args.path, external: true })) }],
    });
    const node = process.execPath;
    const flags = ["--max-semi-space-size=8", compiled, "--child"];
    const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
    // The transformer's default: a pool with one worker thread per core (TRANSFORM_THREADS).
    const threads = Number(process.env.BENCH_THREADS ?? availableParallelism());
    const out = (name: string) => join(dir, name);
    const results = measureAll(
      [
        { name: `reports csv ${threads}thr`, command: node, args: [...flags, "csv", String(threads), inputPath, warmUpPath, out("out.csv")], output: out("out.csv") },
        { name: "reports csv no pool", command: node, args: [...flags, "csv", "0", inputPath, warmUpPath, out("serial.csv")], output: out("serial.csv") },
        { name: "reports xlsx", command: node, args: [...flags, "xlsx", "0", inputPath, warmUpPath, out("out.xlsx")], output: out("out.xlsx") },
        { name: "mlr --ijsonl --ocsv", command: "sh", args: ["-c", `mlr --ijsonl --ocsv cat "$0" > "$1"`, inputPath, join(dir, "mlr.csv")], output: join(dir, "mlr.csv") },
      ],
      rounds,
    );
    const mlr = results[3]!;
    // The pool must change nothing but the speed.
    if (!readFileSync(out("out.csv")).equals(readFileSync(out("serial.csv")))) throw new Error("the pool's CSV differs from the single-thread CSV");
    console.log(`best of ${rounds} rounds each (paths run round-robin)`);
    console.log("");
    console.log("path                  records/s     MB/s  transform s  process s    CPU s   peak RSS    output   vs mlr (transform)  vs mlr (process)  vs mlr (CPU)");
    for (const r of results) {
      const line = [
        r.name.padEnd(21),
        Math.round(count / r.transformSeconds).toLocaleString("en").padStart(11),
        (mb / r.transformSeconds).toFixed(1).padStart(8),
        r.transformSeconds.toFixed(2).padStart(11),
        r.seconds.toFixed(2).padStart(9),
        r.cpuSeconds.toFixed(1).padStart(7),
        `${r.peakRssMb.toFixed(0)} MB`.padStart(9),
        `${(r.outputBytes / 1e6).toFixed(1)} MB`.padStart(9),
        `${(mlr.seconds / r.transformSeconds).toFixed(2)}×`.padStart(18),
        `${(mlr.seconds / r.seconds).toFixed(2)}×`.padStart(16),
        `${(mlr.cpuSeconds / r.cpuSeconds).toFixed(2)}×`.padStart(12),
      ];
      console.log(line.join("  "));
    }
    const csv = results[0]!;
    const serial = results[1]!;
    const xlsx = results[2]!;
    console.log("");
    console.log("records/s and MB/s: ours over the transform itself, as a running transformer handles each file; mlr over its whole run.");
    console.log("\"process\" counts each whole process, Node's start and module loading included (paid once per service process).");
    console.log(
      `CSV throughput vs mlr: ${(mlr.seconds / csv.transformSeconds).toFixed(2)}× (target ≥ 3×); whole process ${(mlr.seconds / csv.seconds).toFixed(2)}×, CPU ${(mlr.cpuSeconds / csv.cpuSeconds).toFixed(2)}×`,
    );
    console.log(`CSV with ${threads} worker threads vs none: ${(serial.transformSeconds / csv.transformSeconds).toFixed(2)}× (both write the same bytes)`);
    console.log(`XLSX peak RSS: ${xlsx.peakRssMb.toFixed(0)} MB (target < 200 MB)`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
