/**
 * Delivery benchmark: one random file (500 MB by default) delivered by our destination adapters
 * to local servers, each against a plain baseline in the same run:
 *   - SFTP to OpenSSH sshd: our adapter vs OpenSSH's own `sftp` client (batch `put`);
 *   - S3 to s3rver: our adapter vs a plain @aws-sdk/lib-storage Upload;
 *   - GCS to our JSON API test server: our adapter vs a plain @google-cloud/storage resumable upload.
 * Prints MB/s (1 MB = 10^6 bytes) and our/baseline ratio. Every delivered copy is checked by size.
 *
 *   node --import tsx bench/deliver.ts             (500 MB, needs root for sshd and its test user)
 *   BENCH_MB=100 node --import tsx bench/deliver.ts
 *   BENCH_TARGETS=sftp,s3 node --import tsx bench/deliver.ts
 *   BENCH_ROUNDS=3 …                               (alternating runs per side, best counts; default 2)
 *
 * Needs the Debian package `openssh-server` (sshd, ssh-keygen) and `openssh-client` (sftp).
 */
import { execFile } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { once } from "node:events";
import { createReadStream, createWriteStream } from "node:fs";
import { chown, mkdir, mkdtemp, rm, stat, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { promisify } from "node:util";
import { DeleteObjectCommand } from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { Storage } from "@google-cloud/storage";
import { JWT } from "google-auth-library";
import {
  createGcsAdapter,
  createS3Adapter,
  createSftpAdapter,
  gcsConfigSchema,
  gcsCredentialsSchema,
  s3ConfigSchema,
  s3CredentialsSchema,
  sftpConfigSchema,
  sftpCredentialsSchema,
} from "@transporter/storage";
import { startGcsServer } from "../libs/storage/test/support/gcs-server.js";
import { startS3rver } from "../libs/storage/test/support/s3rver.js";
import { startSshd } from "../libs/storage/test/support/sshd.js";

const run = promisify(execFile);
// The benchmark's servers listen on loopback, as in tests (ALLOW_INSECURE_ENDPOINTS=true).
const loopback = { allowInsecureEndpoints: true };
const sftpAdapter = createSftpAdapter(loopback);
const s3Adapter = createS3Adapter(loopback);
const gcsAdapter = createGcsAdapter(loopback);
const SIZE_MB = Number(process.env.BENCH_MB ?? 500);
const BYTES = SIZE_MB * 1_000_000;
const TARGETS = new Set((process.env.BENCH_TARGETS ?? "sftp,s3,gcs").split(",").map((t) => t.trim()));
const CHUNK = 1 << 20;
/** Each side runs this many times, alternating, and its best run counts: the machine is shared and noisy. */
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 2));

interface Row {
  target: string;
  ours: number;
  baseline: number;
  baselineName: string;
}

async function writePayload(path: string): Promise<void> {
  const out = createWriteStream(path);
  for (let written = 0; written < BYTES; written += CHUNK) {
    if (!out.write(randomBytes(Math.min(CHUNK, BYTES - written)))) await once(out, "drain");
  }
  out.end();
  await once(out, "finish");
}

/** MB/s of one timed call. */
async function throughput(label: string, fn: () => Promise<void>): Promise<number> {
  const started = process.hrtime.bigint();
  await fn();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const rate = BYTES / 1e6 / seconds;
  console.error(`  ${label}: ${seconds.toFixed(2)} s, ${rate.toFixed(1)} MB/s`);
  return rate;
}

function expectSize(what: string, actual: number): void {
  if (actual !== BYTES) throw new Error(`${what}: ${actual} bytes delivered, expected ${BYTES}`);
}

/** Runs baseline and ours alternately ROUNDS times; each side's best MB/s counts. */
async function compare(
  target: string,
  baselineName: string,
  baselineRun: () => Promise<void>,
  oursName: string,
  oursRun: () => Promise<void>,
): Promise<Row> {
  let baseline = 0;
  let ours = 0;
  for (let round = 0; round < ROUNDS; round++) {
    baseline = Math.max(baseline, await throughput(baselineName, baselineRun));
    ours = Math.max(ours, await throughput(oursName, oursRun));
  }
  return { target, ours, baseline, baselineName };
}

const meta = () => ({ tenantId: randomUUID(), runId: randomUUID(), expectedBytes: BYTES });
const payloadStream = (path: string) => createReadStream(path, { highWaterMark: CHUNK });

async function benchSftp(payload: string, work: string): Promise<Row> {
  console.error("sftp (OpenSSH sshd on loopback)");
  const sshd = await startSshd();
  try {
    const drop = join(sshd.home, "drop");
    await mkdir(drop);
    await chown(drop, sshd.uid, sshd.gid);
    const keyPath = join(work, "client_key");
    await writeFile(keyPath, sshd.privateKey, { mode: 0o600 });
    const batch = join(work, "sftp-batch");
    await writeFile(batch, `put ${payload} drop/baseline.bin\n`);
    const config = sftpConfigSchema.parse({ host: sshd.host, port: sshd.port, username: sshd.username, folder: "drop", hostKeyFingerprint: sshd.hostKeyFingerprint });
    const credentials = sftpCredentialsSchema.parse({ privateKey: sshd.privateKey });
    return await compare(
      "sftp",
      "OpenSSH sftp put",
      async () => {
        await run("sftp", [
          "-q", "-b", batch, "-i", keyPath, "-P", String(sshd.port),
          "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
          `${sshd.username}@${sshd.host}`,
        ]);
        expectSize("sftp baseline", (await stat(join(drop, "baseline.bin"))).size);
        await unlink(join(drop, "baseline.bin"));
      },
      "sftpAdapter.deliver",
      async () => {
        const result = await sftpAdapter.deliver(payloadStream(payload), "ours.bin", meta(), config, credentials);
        expectSize("sftp adapter", result.bytes);
        expectSize("sftp adapter on disk", (await stat(join(drop, "ours.bin"))).size);
        await unlink(join(drop, "ours.bin"));
      },
    );
  } finally {
    await sshd.stop();
  }
}

async function benchS3(payload: string): Promise<Row> {
  console.error("s3 (s3rver on loopback)");
  const bucket = `bench-${randomBytes(4).toString("hex")}`;
  const s3 = await startS3rver({ buckets: [bucket] });
  try {
    const client = s3.client();
    const config = s3ConfigSchema.parse({ bucket, endpoint: s3.endpoint, region: s3.region, forcePathStyle: true });
    const credentials = s3CredentialsSchema.parse({ accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey });
    return await compare(
      "s3",
      "lib-storage Upload",
      async () => {
        await new Upload({ client, params: { Bucket: bucket, Key: "baseline.bin", Body: payloadStream(payload) } }).done();
        await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: "baseline.bin" }));
      },
      "s3Adapter.deliver",
      async () => {
        const result = await s3Adapter.deliver(payloadStream(payload), "ours.bin", meta(), config, credentials);
        expectSize("s3 adapter", result.bytes);
        await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: "ours.bin" }));
      },
    );
  } finally {
    await s3.stop();
  }
}

async function benchGcs(payload: string): Promise<Row> {
  console.error("gcs (JSON API test server on loopback)");
  const gcs = await startGcsServer();
  try {
    const bucket = `bench-${randomBytes(4).toString("hex")}`;
    gcs.createBucket(bucket);
    const key = gcs.serviceAccount("writer");
    const auth = new JWT({ email: key.client_email, key: key.private_key, keyId: key.private_key_id, scopes: ["https://www.googleapis.com/auth/devstorage.read_write"] });
    // The library always asks Google for tokens; send them to the test server instead.
    auth.gaxios?.interceptors.request.add({
      resolved: async (options) => (String(options.url) === "https://www.googleapis.com/oauth2/v4/token" ? { ...options, url: key.token_uri } : options),
    });
    const storage = new Storage({ projectId: key.project_id, authClient: auth, apiEndpoint: gcs.url, useAuthWithCustomEndpoint: true });
    const config = gcsConfigSchema.parse({ bucket, apiEndpoint: gcs.url });
    const credentials = gcsCredentialsSchema.parse({ serviceAccountKey: key });
    return await compare(
      "gcs",
      "@google-cloud/storage upload",
      async () => {
        // @google-cloud/storage 7 drops useAuthWithCustomEndpoint when createWriteStream starts the
        // session itself, so the session is started first (authenticated) and the stream uses its URI.
        const file = storage.bucket(bucket).file("baseline.bin");
        const [uri] = await file.createResumableUpload();
        // Each round replaces the same object names, so the in-memory server holds two copies at most.
        await pipeline(payloadStream(payload), file.createWriteStream({ uri, resumable: true, validation: false }));
        expectSize("gcs baseline", gcs.objects(bucket).get("baseline.bin")?.data.length ?? 0);
      },
      "gcsAdapter.deliver",
      async () => {
        const result = await gcsAdapter.deliver(payloadStream(payload), "ours.bin", meta(), config, credentials);
        expectSize("gcs adapter", result.bytes);
      },
    );
  } finally {
    await gcs.stop();
  }
}

const work = await mkdtemp(join(tmpdir(), "tp-bench-deliver-"));
try {
  const payload = join(work, "payload.bin");
  console.error(`writing a ${SIZE_MB} MB random file…`);
  await writePayload(payload);
  const rows: Row[] = [];
  const failures: string[] = [];
  const benches: Array<[string, () => Promise<Row>]> = [
    ["sftp", () => benchSftp(payload, work)],
    ["s3", () => benchS3(payload)],
    ["gcs", () => benchGcs(payload)],
  ];
  for (const [target, bench] of benches) {
    if (!TARGETS.has(target)) continue;
    try {
      rows.push(await bench());
    } catch (error) {
      // One broken target must not hide the figures of the others.
      failures.push(`${target}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  console.log(`\nDelivery of a ${SIZE_MB} MB file to local servers (MB/s, 1 MB = 10^6 bytes)`);
  console.log(["target", "ours MB/s", "baseline MB/s", "ratio", "baseline"].join("\t"));
  for (const row of rows) {
    console.log([row.target, row.ours.toFixed(1), row.baseline.toFixed(1), `${(row.ours / row.baseline).toFixed(2)}×`, row.baselineName].join("\t"));
  }
  for (const failure of failures) console.log(`FAILED ${failure}`);
  if (failures.length > 0) process.exitCode = 1;
} finally {
  await rm(work, { recursive: true, force: true });
}
