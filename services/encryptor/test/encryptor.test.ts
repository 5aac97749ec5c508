import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable, Writable } from "node:stream";
import { Queue } from "bullmq";
import { generateKey } from "openpgp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testConfig } from "@transporter/config";
import type { Config } from "@transporter/config";
import { generateKeyPair, inspectPublicKey } from "@transporter/crypto";
import type { GeneratedKeyPair } from "@transporter/crypto";
import type { Db, Run } from "@transporter/db";
import { createTestDatabase } from "@transporter/db/testing";
import type { TestDatabase } from "@transporter/db/testing";
import { createRedis, jobIdFor, JobProducer, testRedisPrefix } from "@transporter/queue";
import type { Redis } from "@transporter/queue";
import { createStagingStore, stagingKey } from "@transporter/storage";
import type { StagingStore } from "@transporter/storage";
import { createLogger } from "@transporter/telemetry";
import { createGnupgHome } from "../../../libs/crypto/test/support/gnupg.js";
import type { GnupgHome } from "../../../libs/crypto/test/support/gnupg.js";
import { start } from "../src/index.js";

const PASSPHRASE = `Encryptor ${randomBytes(4).toString("hex")} test`;
const sha256 = (data: Buffer) => createHash("sha256").update(data).digest("hex");

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < 600; i++) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/**
 * A real file-system staging store whose put() first runs a hook: lets a test act "while the
 * file is being encrypted" deterministically.
 */
class HookedStagingStore implements StagingStore {
  beforePut: ((key: string) => Promise<void>) | undefined;
  constructor(private readonly inner: StagingStore) {}
  async put(key: string, body: Readable) {
    await this.beforePut?.(key);
    return this.inner.put(key, body);
  }
  get(key: string) {
    return this.inner.get(key);
  }
  stat(key: string) {
    return this.inner.stat(key);
  }
  delete(key: string) {
    return this.inner.delete(key);
  }
  deletePrefix(prefix: string) {
    return this.inner.deletePrefix(prefix);
  }
}

describe("encryptor service", () => {
  let db: TestDatabase;
  let prisma: Db;
  let redis: Redis;
  let config: Config;
  let producer: JobProducer;
  let staging: HookedStagingStore;
  let deliverQueue: Queue;
  let service: { stop(): Promise<void> };
  let workDir: string;
  let gpg: GnupgHome;
  let rsa: GeneratedKeyPair;
  let curve: GeneratedKeyPair;
  const logLines: string[] = [];

  beforeAll(async () => {
    workDir = await mkdtemp(join(tmpdir(), "tp-encryptor-"));
    [db, gpg, rsa, curve] = await Promise.all([
      createTestDatabase(),
      createGnupgHome(),
      generateKeyPair({ passphrase: PASSPHRASE, algorithm: "rsa-2048" }),
      generateKeyPair({ passphrase: PASSPHRASE, algorithm: "curve25519" }),
    ]);
    for (const pair of [rsa, curve]) {
      const path = join(gpg.dir, `${pair.fingerprint}.sec.asc`);
      await writeFile(path, pair.privateKey);
      await gpg.gpgWithPassphrase(PASSPHRASE, ["--import", path]);
    }
    prisma = db.prisma;
    const prefix = testRedisPrefix("encryptor");
    config = testConfig({
      DATABASE_URL: db.url,
      REDIS_PREFIX: prefix,
      STAGING_DIR: join(workDir, "staging"),
      JOB_ATTEMPTS: "3",
      JOB_BACKOFF_MS: "20",
      LOG_LEVEL: "debug",
    });
    redis = createRedis(config.REDIS_URL);
    producer = new JobProducer(redis, prefix, { attempts: 3, backoffMs: 20 });
    staging = new HookedStagingStore(createStagingStore(config));
    deliverQueue = new Queue("deliver", { connection: redis, prefix });
    const capture = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        logLines.push(chunk.toString("utf8"));
        callback();
      },
    });
    service = await start(config, { prisma, redis, producer, staging, logger: createLogger({ name: "encryptor", level: "debug", destination: capture }) });
  }, 120_000);

  afterAll(async () => {
    await service?.stop();
    await deliverQueue?.close();
    await producer?.close();
    await redis?.quit();
    await gpg?.close();
    await db?.drop();
    await rm(workDir, { recursive: true, force: true });
  });

  async function setUp(options: { key?: GeneratedKeyPair | { publicKey: string; fingerprint: string } | null; taskOptions?: Record<string, unknown>; report?: Buffer; reportFolder?: string }) {
    const tenant = await prisma.tenant.create({ data: { name: "Acme", accountId: String(randomBytes(4).readUInt32BE()), timezone: "Europe/Berlin" } });
    const key = options.key === undefined ? rsa : options.key;
    const stored = key
      ? await prisma.encryptionKey.create({
          data: { tenantId: tenant.id, publicKey: key.publicKey, fingerprint: key.fingerprint, algorithm: "rsa", bits: 2048, origin: "generated", active: true },
        })
      : null;
    const destination = await prisma.destination.create({ data: { tenantId: tenant.id, name: "managed", kind: "managed", config: {} } });
    const task = await prisma.task.create({
      data: {
        tenantId: tenant.id,
        description: "Daily Messaging",
        reportId: "messaging-conversations",
        format: "csv",
        frequency: "daily",
        time: "00:00",
        destinationId: destination.id,
        options: (options.taskOptions ?? {}) as object,
        enabled: true,
      },
    });
    const run = await prisma.run.create({
      data: {
        tenantId: tenant.id,
        taskId: task.id,
        windowStart: new Date("2026-11-21T23:00:00Z"),
        windowEnd: new Date("2026-11-22T23:00:00Z"),
        scheduledFor: new Date("2026-11-22T23:00:00Z"),
        trigger: "schedule",
        status: "TRANSFORMING",
      },
    });
    const report = options.report ?? Buffer.concat([Buffer.from("id,text\n"), randomBytes(1024 * 1024), Buffer.from("1,\"é, ü\"\r\n".repeat(50_000))]);
    const reportKey = stagingKey(tenant.id, run.id, "report", `${options.reportFolder ?? ""}daily-messaging_2026-11-22T0000+0100_2026-11-23T0000+0100.csv`);
    await staging.put(reportKey, Readable.from([report]));
    return { tenant, run, report, reportKey, key: stored };
  }

  async function encryptFinished(runId: string): Promise<Run> {
    return waitFor(`run ${runId} to leave the encrypt stage`, async () => {
      const run = await prisma.run.findUniqueOrThrow({ where: { id: runId } });
      return run.encryptFinishedAt || run.status === "FAILED" ? run : undefined;
    });
  }

  async function gpgDecrypt(ciphertext: Buffer): Promise<Buffer> {
    const name = randomBytes(6).toString("hex");
    await writeFile(join(gpg.dir, `${name}.in`), ciphertext);
    await gpg.gpgWithPassphrase(PASSPHRASE, ["--output", join(gpg.dir, `${name}.out`), "--decrypt", join(gpg.dir, `${name}.in`)]);
    return readFile(join(gpg.dir, `${name}.out`));
  }

  async function stagedBytes(key: string): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const chunk of await staging.get(key)) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  it("encrypts the report to the active key (binary, compressed), records the fingerprint and hands over to deliver", async () => {
    const { tenant, run, report, reportKey } = await setUp({});
    await producer.enqueue("encrypt", { runId: run.id, tenantId: tenant.id, reportKey });
    const done = await encryptFinished(run.id);
    expect(done.error).toBeNull();
    expect(done.status).toBe("ENCRYPTING");
    expect(done.keyFingerprint).toBe(rsa.fingerprint);
    const encryptedKey = stagingKey(tenant.id, run.id, "encrypted", "daily-messaging_2026-11-22T0000+0100_2026-11-23T0000+0100.csv.pgp");
    expect((done.staging as Record<string, string>).encryptedKey).toBe(encryptedKey);

    const ciphertext = await stagedBytes(encryptedKey);
    expect(ciphertext[0]! & 0x80).toBe(0x80);
    expect(ciphertext.length).toBeLessThan(report.length);
    expect(sha256(await gpgDecrypt(ciphertext))).toBe(sha256(report));

    const deliver = await waitFor("the deliver job", async () => (await deliverQueue.getJob(jobIdFor("deliver", run.id))) ?? undefined);
    expect(deliver.data).toMatchObject({ runId: run.id, tenantId: tenant.id, encryptedKey });
  });

  it("writes armored .asc without compression when the task asks, for a Curve25519 key", async () => {
    const { tenant, run, report, reportKey } = await setUp({ key: curve, taskOptions: { armor: true, compression: false } });
    await producer.enqueue("encrypt", { runId: run.id, tenantId: tenant.id, reportKey });
    const done = await encryptFinished(run.id);
    expect(done.error).toBeNull();
    expect(done.keyFingerprint).toBe(curve.fingerprint);
    const encryptedKey = (done.staging as Record<string, string>).encryptedKey!;
    expect(encryptedKey).toMatch(/\.csv\.asc$/);
    const ciphertext = await stagedBytes(encryptedKey);
    expect(ciphertext.toString("latin1")).toMatch(/^-----BEGIN PGP MESSAGE-----/);
    expect(ciphertext.length).toBeGreaterThan(report.length);
    expect(sha256(await gpgDecrypt(ciphertext))).toBe(sha256(report));
  });

  it("keeps the date folders the report was staged under, whatever the task says now", async () => {
    const { tenant, run, reportKey } = await setUp({ reportFolder: "2026/11/22/" });
    await producer.enqueue("encrypt", { runId: run.id, tenantId: tenant.id, reportKey });
    const done = await encryptFinished(run.id);
    expect(done.error).toBeNull();
    expect((done.staging as Record<string, string>).encryptedKey).toBe(stagingKey(tenant.id, run.id, "encrypted", "2026/11/22/daily-messaging_2026-11-22T0000+0100_2026-11-23T0000+0100.csv.pgp"));
  });

  it("encrypts an empty report", async () => {
    const { tenant, run, reportKey } = await setUp({ report: Buffer.alloc(0) });
    await producer.enqueue("encrypt", { runId: run.id, tenantId: tenant.id, reportKey });
    const done = await encryptFinished(run.id);
    expect(done.error).toBeNull();
    expect((await gpgDecrypt(await stagedBytes((done.staging as Record<string, string>).encryptedKey!))).length).toBe(0);
  });

  it("fails the run at once with a readable reason and an alert when the tenant has no active key", async () => {
    const { tenant, run, reportKey } = await setUp({ key: null });
    await producer.enqueue("encrypt", { runId: run.id, tenantId: tenant.id, reportKey });
    const done = await encryptFinished(run.id);
    expect(done.status).toBe("FAILED");
    expect(done.errorCode).toBe("encryption_key_missing");
    expect(done.attempts).toBe(1);
    expect(done.error).toMatch(/no active encryption key/);
    const alert = await prisma.alert.findFirst({ where: { tenantId: tenant.id, kind: "run.failed" } });
    expect(alert?.runId).toBe(run.id);
    expect(alert?.message).toMatch(/no active encryption key/);
  });

  it("fails the run and leaves no encrypted file when the key is removed while encrypting", async () => {
    const { tenant, run, reportKey, key } = await setUp({});
    staging.beforePut = async (target) => {
      if (target.includes(run.id) && target.includes("/encrypted/")) {
        await prisma.encryptionKey.update({ where: { id: key!.id }, data: { deletedAt: new Date(), active: false } });
      }
    };
    try {
      await producer.enqueue("encrypt", { runId: run.id, tenantId: tenant.id, reportKey });
      const done = await encryptFinished(run.id);
      expect(done.status).toBe("FAILED");
      expect(done.errorCode).toBe("encryption_key_removed");
      expect(done.error).toContain(rsa.fingerprint);
      expect(done.keyFingerprint).toBeNull();
      expect(await staging.stat(stagingKey(tenant.id, run.id, "encrypted", "daily-messaging_2026-11-22T0000+0100_2026-11-23T0000+0100.csv.pgp"))).toBeNull();
      expect(await prisma.alert.findFirst({ where: { tenantId: tenant.id, kind: "run.failed", runId: run.id } })).not.toBeNull();
    } finally {
      staging.beforePut = undefined;
    }
  });

  it("fails the run at once when the active key has expired since it was uploaded", async () => {
    const expired = await generateKey({
      type: "ecc",
      curve: "curve25519Legacy",
      userIDs: [{ name: "Expired" }],
      date: new Date(Date.now() - 10 * 86400_000),
      keyExpirationTime: 86400,
      format: "armored",
    });
    const fingerprint = (await inspectPublicKey(expired.publicKey, new Date(Date.now() - 9.5 * 86400_000))).fingerprint;
    const { tenant, run, reportKey } = await setUp({ key: { publicKey: expired.publicKey, fingerprint } });
    await producer.enqueue("encrypt", { runId: run.id, tenantId: tenant.id, reportKey });
    const done = await encryptFinished(run.id);
    expect(done.status).toBe("FAILED");
    expect(done.errorCode).toBe("encryption_key_unusable");
    expect(done.error).toMatch(/expired/);
    expect(done.attempts).toBe(1);
  });

  it("is idempotent: a retried job overwrites its own output", async () => {
    const { tenant, run, report, reportKey } = await setUp({});
    await producer.enqueue("encrypt", { runId: run.id, tenantId: tenant.id, reportKey });
    const first = await encryptFinished(run.id);
    const encryptedKey = (first.staging as Record<string, string>).encryptedKey!;
    const firstBytes = await stagedBytes(encryptedKey);
    // Same run, stage re-entered (as after a crash before the next stage was recorded).
    await prisma.run.update({ where: { id: run.id }, data: { encryptFinishedAt: null, status: "TRANSFORMING" } });
    // The producer's job id is one per run and stage; a second delivery of the job needs another id.
    const encryptQueue = new Queue("encrypt", { connection: redis, prefix: config.REDIS_PREFIX });
    await encryptQueue.add("encrypt", { runId: run.id, tenantId: tenant.id, reportKey, trace: {} }, { jobId: `${run.id}-encrypt-again`, attempts: 1 });
    await encryptQueue.close();
    const second = await encryptFinished(run.id);
    expect(second.error).toBeNull();
    expect((second.staging as Record<string, string>).encryptedKey).toBe(encryptedKey);
    const secondBytes = await stagedBytes(encryptedKey);
    // A fresh session key each time: new bytes, same plaintext, one object.
    expect(sha256(secondBytes)).not.toBe(sha256(firstBytes));
    expect(sha256(await gpgDecrypt(secondBytes))).toBe(sha256(report));
    const removed = await staging.deletePrefix(`tenants/${tenant.id}/runs/${run.id}/encrypted/`);
    expect(removed).toBe(1);
  });

  it("never logs key material or report contents", async () => {
    const logs = logLines.join("");
    expect(logs).toContain("report encrypted");
    expect(logs).not.toContain("PRIVATE KEY");
    expect(logs).not.toContain(PASSPHRASE);
    expect(logs).not.toContain("BEGIN PGP");
    expect(logs).not.toContain("é, ü");
  });
});
