/**
 * Encryption benchmark: report-like files (200 MB and 1 GB by default) encrypted to the same
 * RSA 2048 public key by our encryptor path (staging store → encryptStream → staging store, in a
 * child process so its peak RSS is its own) and by `gpg --encrypt`, alternating, in the same run.
 * Both compress with ZLIB level 6 and encrypt with AES-256 (GnuPG's defaults for this key).
 * Prints MB/s (1 MB = 10^6 bytes) for both, ours/gpg, and our peak RSS; every output of ours is
 * decrypted by gpg and compared by sha256.
 *
 *   node --import tsx bench/encrypt.ts
 *   BENCH_SIZES_MB=50,200 node --import tsx bench/encrypt.ts
 *   BENCH_DATA=random …     (incompressible bytes instead of CSV rows)
 *   BENCH_ROUNDS=3 …        (alternating runs per side, best counts; default 2)
 *   BENCH_VERIFY=0 …        (skip the gpg decryption check)
 *
 * Targets: ours ≥ 0.5× gpg's throughput, peak RSS < 150 MB for every size. Needs `gpg` (GnuPG 2.2+).
 */
import { execFile, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { pipeline } from "node:stream/promises";
import { Readable } from "node:stream";
import { promisify } from "node:util";
import { encryptStream, generateKeyPair } from "@transporter/crypto";
// The staging store class itself, not the package index: the index also loads the S3, GCS and SFTP
// clients (~50 MB of RSS) that the encryption path never touches. Their share is reported apart.
import { FsStagingStore } from "../libs/storage/src/staging/fs-store.js";

const run = promisify(execFile);
const SIZES_MB = (process.env.BENCH_SIZES_MB ?? "200,1000").split(",").map((s) => Number(s.trim())).filter((n) => n > 0);
const DATA = process.env.BENCH_DATA === "random" ? "random" : "csv";
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 2));
const VERIFY = process.env.BENCH_VERIFY !== "0";
const TARGET_RATIO = 0.5;
const TARGET_RSS_MB = 150;

interface ChildResult {
  seconds: number;
  /** Peak resident set of the whole child process. */
  maxRssMb: number;
  /** Resident set after start-up and imports, before the first byte was read. */
  baselineRssMb: number;
  bytesOut: number;
}

/** Child mode: one encryption through the staging store, timing and max RSS reported as JSON. */
async function encryptInChild(stagingDir: string, inputKey: string, outputKey: string, publicKeyPath: string): Promise<void> {
  const publicKey = await readFile(publicKeyPath, "utf8");
  const staging = new FsStagingStore(stagingDir);
  const baselineRssMb = process.memoryUsage().rss / 1e6;
  const started = process.hrtime.bigint();
  const stored = await staging.put(outputKey, encryptStream(await staging.get(inputKey), publicKey, { fileName: "report.csv" }));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  // ru_maxrss is in kilobytes on Linux.
  const result: ChildResult = { seconds, maxRssMb: (process.resourceUsage().maxRSS * 1024) / 1e6, baselineRssMb, bytesOut: stored.bytes };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

/** CSV-like rows (what reports are), varied so zlib has real work; or random bytes. */
async function writeInput(path: string, bytes: number): Promise<void> {
  let produced = 0;
  let row = 0;
  const rows = function* () {
    while (produced < bytes) {
      let chunk: Buffer;
      if (DATA === "random") {
        chunk = randomBytes(1 << 20);
      } else {
        const lines: string[] = [];
        for (let i = 0; i < 8000; i++, row++) {
          lines.push(
            `2026-11-${String((row % 28) + 1).padStart(2, "0")}T${String(row % 24).padStart(2, "0")}:00:00Z,conv-${row},agent-${row % 397},"${["OPEN", "CLOSE", "TRANSFER"][row % 3]} skill ${(row * 7919) % 100003}",${(row % 1000) / 10},${randomBytes(4).toString("hex")}\n`,
          );
        }
        chunk = Buffer.from(lines.join(""));
      }
      chunk = chunk.subarray(0, bytes - produced);
      produced += chunk.length;
      yield chunk;
    }
  };
  await pipeline(Readable.from(rows()), createWriteStream(path));
}

async function runOurs(stagingDir: string, inputKey: string, outputKey: string, publicKeyPath: string): Promise<ChildResult> {
  const child = spawn(process.execPath, ["--import", "tsx", fileURLToPath(import.meta.url), "--child", stagingDir, inputKey, outputKey, publicKeyPath], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  let stdout = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")));
  const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
  if (code !== 0) throw new Error(`our encryptor child exited with ${code}`);
  return JSON.parse(stdout.trim().split("\n").at(-1) ?? "{}") as ChildResult;
}

async function runGpg(home: string, fingerprint: string, input: string, output: string): Promise<number> {
  await rm(output, { force: true });
  const started = process.hrtime.bigint();
  await run("gpg", ["--batch", "--yes", "--trust-model", "always", "--compress-algo", "zlib", "--cipher-algo", "AES256", "--recipient", fingerprint, "--output", output, "--encrypt", input], {
    env: { ...process.env, GNUPGHOME: home },
  });
  return Number(process.hrtime.bigint() - started) / 1e9;
}

async function sha256OfGpgDecryption(home: string, passphrase: string, file: string): Promise<string> {
  const child = spawn("gpg", ["--batch", "--pinentry-mode", "loopback", "--passphrase-fd", "0", "--decrypt", file], {
    env: { ...process.env, GNUPGHOME: home },
    stdio: ["pipe", "pipe", "ignore"],
  });
  child.stdin.on("error", () => undefined);
  child.stdin.end(`${passphrase}\n`);
  const hash = createHash("sha256");
  for await (const chunk of child.stdout) hash.update(chunk as Buffer);
  const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
  if (code !== 0) throw new Error(`gpg --decrypt of ${file} exited with ${code}`);
  return hash.digest("hex");
}

async function sha256OfFile(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), "bench-encrypt-"));
  const gnupgHome = join(work, "gnupg");
  await mkdir(gnupgHome);
  await chmod(gnupgHome, 0o700);
  const stagingDir = join(work, "staging");
  const passphrase = `Bench ${randomBytes(6).toString("hex")} passphrase`;
  try {
    const pair = await generateKeyPair({ passphrase, algorithm: "rsa-2048", name: "Bench" });
    const publicKeyPath = join(work, "public.asc");
    await writeFile(publicKeyPath, pair.publicKey);
    await writeFile(join(work, "private.asc"), pair.privateKey);
    await run("gpg", ["--batch", "--import", publicKeyPath], { env: { ...process.env, GNUPGHOME: gnupgHome } });
    if (VERIFY) {
      const child = execFile("gpg", ["--batch", "--pinentry-mode", "loopback", "--passphrase-fd", "0", "--import", join(work, "private.asc")], { env: { ...process.env, GNUPGHOME: gnupgHome } });
      child.stdin?.on("error", () => undefined);
      child.stdin?.end(`${passphrase}\n`);
      await new Promise((resolve) => child.on("close", resolve));
    }
    const { stdout: version } = await run("gpg", ["--version"]);
    console.log(`encrypt bench: ${DATA} data, RSA 2048, ZLIB, AES-256; ${version.split("\n")[0]}; node ${process.version}; best of ${ROUNDS}`);

    const rows: string[] = [];
    let allMet = true;
    for (const sizeMb of SIZES_MB) {
      const bytes = sizeMb * 1_000_000;
      const runId = randomBytes(4).toString("hex");
      const inputKey = `bench/${runId}/report/report.csv`;
      const outputKey = `bench/${runId}/encrypted/report.csv.pgp`;
      await mkdir(join(stagingDir, "bench", runId, "report"), { recursive: true });
      await mkdir(join(stagingDir, "bench", runId, "encrypted"), { recursive: true });
      const inputPath = join(stagingDir, inputKey);
      await writeInput(inputPath, bytes);
      const gpgOutput = join(work, `gpg-${runId}.pgp`);

      let oursBest = Infinity;
      let gpgBest = Infinity;
      let peakRss = 0;
      let baselineRss = 0;
      let oursBytes = 0;
      for (let round = 0; round < ROUNDS; round++) {
        const ours = await runOurs(stagingDir, inputKey, outputKey, publicKeyPath);
        oursBest = Math.min(oursBest, ours.seconds);
        if (ours.maxRssMb > peakRss) baselineRss = ours.baselineRssMb;
        peakRss = Math.max(peakRss, ours.maxRssMb);
        oursBytes = ours.bytesOut;
        gpgBest = Math.min(gpgBest, await runGpg(gnupgHome, pair.fingerprint, inputPath, gpgOutput));
      }
      const gpgBytes = (await stat(gpgOutput)).size;
      let verified = "not checked";
      if (VERIFY) {
        const [expected, actual] = await Promise.all([sha256OfFile(inputPath), sha256OfGpgDecryption(gnupgHome, passphrase, join(stagingDir, outputKey))]);
        if (expected !== actual) throw new Error(`gpg decrypted our ${sizeMb} MB output to different bytes`);
        verified = "gpg decrypts ours: identical";
      }
      const oursRate = bytes / 1e6 / oursBest;
      const gpgRate = bytes / 1e6 / gpgBest;
      const ratio = oursRate / gpgRate;
      const met = ratio >= TARGET_RATIO && peakRss < TARGET_RSS_MB;
      allMet &&= met;
      rows.push(
        `${String(sizeMb).padStart(5)} MB  ours ${oursRate.toFixed(1).padStart(6)} MB/s  gpg ${gpgRate.toFixed(1).padStart(6)} MB/s  ` +
          `ratio ${ratio.toFixed(2)}  peak RSS ours ${peakRss.toFixed(0)} MB (${baselineRss.toFixed(0)} MB before encrypting)  out ours ${(oursBytes / 1e6).toFixed(1)} MB / gpg ${(gpgBytes / 1e6).toFixed(1)} MB  ` +
          `${verified}  ${met ? "target met" : "TARGET MISSED"}`,
      );
      console.log(rows.at(-1));
      await rm(join(stagingDir, "bench", runId), { recursive: true, force: true });
      await rm(gpgOutput, { force: true });
    }
    console.log(`targets: ratio >= ${TARGET_RATIO}, peak RSS < ${TARGET_RSS_MB} MB: ${allMet ? "all met" : "missed"}`);
  } finally {
    await run("gpgconf", ["--kill", "all"], { env: { ...process.env, GNUPGHOME: gnupgHome } }).catch(() => undefined);
    await rm(work, { recursive: true, force: true });
  }
}

if (process.argv[2] === "--child") {
  const [stagingDir, inputKey, outputKey, publicKeyPath] = process.argv.slice(3) as [string, string, string, string];
  await encryptInChild(stagingDir, inputKey, outputKey, publicKeyPath);
} else {
  await main();
}
