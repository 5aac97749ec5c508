import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, Readable } from "node:stream";
import { Queue } from "bullmq";
import { parse } from "csv-parse/sync";
import ExcelJS from "exceljs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testConfig } from "@transporter/config";
import type { Config } from "@transporter/config";
import type { Db, Run } from "@transporter/db";
import { createTestDatabase } from "@transporter/db/testing";
import type { TestDatabase } from "@transporter/db/testing";
import { createRedis, jobIdFor, JobProducer, testRedisPrefix } from "@transporter/queue";
import type { Redis } from "@transporter/queue";
import { getReport, transformStream } from "@transporter/reports";
import { conversationsForWindow } from "@transporter/simulator";
import { createStagingStore, FsStagingStore, stagingKey } from "@transporter/storage";
import type { StagingStore } from "@transporter/storage";
import { start } from "../src/index.js";

const WINDOW_START = new Date("2026-03-29T00:00:00Z");
const WINDOW_END = new Date("2026-03-29T02:00:00Z");

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < 600; i++) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

describe("transformer service", () => {
  let db: TestDatabase;
  let prisma: Db;
  let redis: Redis;
  let config: Config;
  let producer: JobProducer;
  let staging: StagingStore;
  let encryptQueue: Queue;
  let service: { stop(): Promise<void> };
  let workDir: string;

  const conversations = Array.from(conversationsForWindow("55501234", WINDOW_START, WINDOW_END, "transformer-test"), (r) => JSON.stringify(r));

  beforeAll(async () => {
    workDir = await mkdtemp(join(tmpdir(), "tp-transformer-"));
    db = await createTestDatabase();
    prisma = db.prisma;
    const prefix = testRedisPrefix("transformer");
    config = testConfig({ DATABASE_URL: db.url, REDIS_PREFIX: prefix, STAGING_DIR: join(workDir, "staging"), JOB_ATTEMPTS: "2", JOB_BACKOFF_MS: "20" });
    redis = createRedis(config.REDIS_URL);
    producer = new JobProducer(redis, prefix, { attempts: 2, backoffMs: 20 });
    staging = createStagingStore(config);
    encryptQueue = new Queue("encrypt", { connection: redis, prefix });
    service = await start(config, { prisma, redis, producer, staging });
  }, 120_000);

  afterAll(async () => {
    await service?.stop();
    await encryptQueue?.close();
    await producer?.close();
    await redis?.quit();
    await db?.drop();
    await rm(workDir, { recursive: true, force: true });
  });

  /** A tenant, task and run whose raw records are in staging, and the transform job for it. */
  async function runTransform(task: { reportId: string; reportVersion?: string; format: string; params?: object; options?: object }, lines: string[], runVersion?: number, via: JobProducer = producer, fetched?: { reportId: string; params?: object }) {
    const tenant = await prisma.tenant.create({ data: { name: "Acme", accountId: String(randomBytes(4).readUInt32BE()), timezone: "Europe/Berlin" } });
    const destination = await prisma.destination.create({ data: { tenantId: tenant.id, name: "managed", kind: "managed", config: {} } });
    const created = await prisma.task.create({
      data: {
        tenantId: tenant.id,
        description: "Nightly Messaging",
        reportId: task.reportId,
        reportVersion: task.reportVersion ?? "latest",
        format: task.format,
        params: task.params ?? {},
        options: task.options ?? {},
        frequency: "daily",
        time: "03:00",
        destinationId: destination.id,
      },
    });
    const run = await prisma.run.create({
      data: {
        tenantId: tenant.id,
        taskId: created.id,
        windowStart: WINDOW_START,
        windowEnd: WINDOW_END,
        scheduledFor: WINDOW_END,
        trigger: "manual",
        status: "FETCHING",
        notes: ["transform: stale note from an earlier attempt", "fetch: kept"],
        ...(runVersion ? { reportVersion: runVersion } : {}),
        ...(fetched ? { reportId: fetched.reportId } : {}),
        ...(fetched?.params ? { params: fetched.params } : {}),
      },
    });
    const rawKey = stagingKey(tenant.id, run.id, "raw", "records.ndjson");
    await staging.put(rawKey, Readable.from(lines.map((l) => `${l}\n`)));
    await via.enqueue("transform", { runId: run.id, tenantId: tenant.id, rawKey });
    const finished = await waitFor("the transform stage", async () => {
      const current = await prisma.run.findUniqueOrThrow({ where: { id: run.id } });
      return current.transformFinishedAt || current.status === "FAILED" ? current : undefined;
    });
    return { run: finished, tenant, rawKey };
  }

  async function reportKeyOf(run: Run): Promise<string> {
    const job = await waitFor("the encrypt job", async () => (await encryptQueue.getJob(jobIdFor("encrypt", run.id))) ?? undefined);
    return (job.data as { reportKey: string }).reportKey;
  }

  it("stages the report below its date folders (in the account's zone) when the task asks for them", async () => {
    const { run, tenant } = await runTransform({ reportId: "messaging-conversations", format: "csv", options: { dateFolders: true } }, conversations.slice(0, 2));
    expect(run.status).toBe("TRANSFORMING");
    expect(await reportKeyOf(run)).toBe(stagingKey(tenant.id, run.id, "report", "2026/03/29/nightly-messaging_2026-03-29T0100+0100_2026-03-29T0400+0200.csv"));
  });

  it("writes the report, counts rows and skipped records, and hands the file to encrypt", async () => {
    const lines = [...conversations.slice(0, 5), "{broken", JSON.stringify({ info: { startTimeL: 1 } }), ...conversations.slice(5)];
    const { run, tenant } = await runTransform({ reportId: "messaging-conversations", format: "csv", params: { includeTranscript: true } }, lines);
    expect(run.status).toBe("TRANSFORMING");
    expect(run.rows).toBe(conversations.length);
    expect(run.skippedRecords).toBe(2);
    expect(run.reportVersion).toBe(2);
    const notes = run.notes as string[];
    expect(notes).toContain("fetch: kept");
    expect(notes).not.toContain("transform: stale note from an earlier attempt");
    expect(notes.find((n) => n.startsWith("transform: "))).toMatch(/^transform: 2 of \d+ records skipped .*line 6: invalid JSON.*line 7: info\.conversationId: missing$/);

    const reportKey = await reportKeyOf(run);
    expect(reportKey).toBe(stagingKey(tenant.id, run.id, "report", "nightly-messaging_2026-03-29T0100+0100_2026-03-29T0400+0200.csv"));
    expect((run.staging as Record<string, string>).reportKey).toBe(reportKey);
    const rows = parse(await readAll(await staging.get(reportKey))) as string[][];
    const header = rows[0]!;
    const { version } = getReport("messaging-conversations", 2);
    expect(header).toEqual(version.shape === "rows" ? version.columns.map((c) => c.key) : []);
    expect(rows).toHaveLength(conversations.length + 1);
    const first = JSON.parse(conversations[0]!) as { info: { conversationId: string } };
    expect(rows[1]![header.indexOf("conversationId")]).toBe(first.info.conversationId);
    expect(rows[1]![header.indexOf("startTime")]).toMatch(/^2026-03-29T0[1-3]:\d\d:\d\d\.\d{3}\+0[12]:00$/);
    expect(rows[1]![header.indexOf("transcript")]).toContain("Consumer: ");
  });

  it("renders the report the run fetched, though the task was switched to another since, and records what it wrote", async () => {
    // Fetched as messaging-conversations v1; the task now asks for messaging-messages as JSON.
    const { run } = await runTransform({ reportId: "messaging-messages", format: "json" }, conversations, 1, producer, { reportId: "messaging-conversations" });
    expect(run).toMatchObject({ status: "TRANSFORMING", reportId: "messaging-conversations", reportVersion: 1, format: "json", rows: conversations.length, skippedRecords: 0 });
    const reportKey = await reportKeyOf(run);
    expect(reportKey).toMatch(/\.json$/);
    const rows = JSON.parse((await readAll(await staging.get(reportKey))).toString()) as Array<Record<string, unknown>>;
    const { version } = getReport("messaging-conversations", 1);
    // One row per conversation, in the conversations report's columns.
    expect(rows).toHaveLength(conversations.length);
    expect(Object.keys(rows[0]!)).toEqual(version.shape === "rows" ? version.columns.map((c) => c.key) : []);
  });

  it("renders with the params the run fetched with, though the task moved to a version whose params the fetched one does not take", async () => {
    // Fetched as messaging-conversations v1 (no params); the task now asks for v2 with its transcript.
    const task = { reportId: "messaging-conversations", reportVersion: "2", format: "csv", params: { includeTranscript: true } };
    const { run } = await runTransform(task, conversations, 1, producer, { reportId: "messaging-conversations", params: {} });
    expect(run.error).toBeNull();
    expect(run).toMatchObject({ status: "TRANSFORMING", reportId: "messaging-conversations", reportVersion: 1, rows: conversations.length, params: {} });
  });

  it("keeps the version a run already resolved, and writes XLSX", async () => {
    const { run } = await runTransform({ reportId: "messaging-conversations", format: "xlsx" }, conversations, 1);
    expect(run.reportVersion).toBe(1);
    expect(run.skippedRecords).toBe(0);
    const reportKey = await reportKeyOf(run);
    expect(reportKey.endsWith(".xlsx")).toBe(true);
    const workbook = new ExcelJS.Workbook();
    await workbook.xlsx.load((await readAll(await staging.get(reportKey))) as unknown as ArrayBuffer);
    const sheet = workbook.worksheets[0]!;
    expect(sheet.rowCount).toBe(conversations.length + 1);
    const { version } = getReport("messaging-conversations", 1);
    expect((sheet.getRow(1).values as unknown[]).slice(1)).toEqual(version.shape === "rows" ? version.columns.map((c) => c.key) : []);
    expect(sheet.getRow(2).getCell(2).value).toBeInstanceOf(Date);
  });

  it("fails the run at once when the task's report cannot be rendered", async () => {
    const { run, tenant } = await runTransform({ reportId: "retired-report", format: "csv" }, conversations);
    expect(run.status).toBe("FAILED");
    expect(run.errorCode).toBe("report.unknown_report");
    expect(run.error).toContain('unknown report "retired-report"');
    expect(run.attempts).toBe(1);
    expect(await encryptQueue.getJob(jobIdFor("encrypt", run.id))).toBeUndefined();
    const alert = await prisma.alert.findFirst({ where: { tenantId: tenant.id, runId: run.id } });
    expect(alert?.kind).toBe("run.failed");
  });

  it("fails the run with the params problem, leaving no report behind", async () => {
    const { run, tenant } = await runTransform({ reportId: "messaging-messages", format: "csv", params: { includeText: "no" } }, conversations);
    expect(run.status).toBe("FAILED");
    expect(run.errorCode).toBe("report.invalid_params");
    expect(run.error).toContain("params.includeText");
    const reportKey = stagingKey(tenant.id, run.id, "report", "nightly-messaging_2026-03-29T0100+0100_2026-03-29T0400+0200.csv");
    expect(await staging.stat(reportKey)).toBeNull();
  });

  it("encodes CSV on its worker threads, byte for byte the file one thread writes", async () => {
    expect(config.TRANSFORM_THREADS).toBeGreaterThan(0);
    // Enough records for many chunks, with a malformed one deep inside.
    const lines = Array.from({ length: 100 }, () => conversations).flat();
    lines.splice(1234, 0, "{broken");
    const { run } = await runTransform({ reportId: "messaging-conversations", format: "csv" }, lines);
    expect(run.status).toBe("TRANSFORMING");
    expect(run.skippedRecords).toBe(1);
    expect(run.notes as string[]).toContainEqual(expect.stringContaining("line 1235: invalid JSON"));
    const written = await readAll(await staging.get(await reportKeyOf(run)));
    const alone = new PassThrough();
    const [expected] = await Promise.all([
      readAll(alone),
      transformStream({ report: "messaging-conversations", version: 2, format: "csv", timeZone: "Europe/Berlin" }, Readable.from(lines.map((l) => `${l}\n`)), alone),
    ]);
    expect(written.length).toBeGreaterThan(500_000);
    expect(written.equals(expected)).toBe(true);
  });

  it("fails the run, rather than hang, when the store gives up before reading the report", async () => {
    // Reads from the good store; writes into one whose root is a regular file, so every put fails
    // at once (mkdir: ENOTDIR) without reading a byte of the stream the transform fills.
    const notAFolder = join(workDir, "not-a-folder");
    await writeFile(notAFolder, "");
    const unwritable = new FsStagingStore(notAFolder);
    const splitStore: StagingStore = {
      get: (key) => staging.get(key),
      stat: (key) => staging.stat(key),
      delete: (key) => staging.delete(key),
      deletePrefix: (prefix) => staging.deletePrefix(prefix),
      put: (key, body) => unwritable.put(key, body),
    };
    const prefix = testRedisPrefix("transformer-unwritable");
    const brokenConfig = testConfig({ DATABASE_URL: db.url, REDIS_PREFIX: prefix, STAGING_DIR: join(workDir, "staging"), JOB_ATTEMPTS: "2", JOB_BACKOFF_MS: "20" });
    const brokenProducer = new JobProducer(redis, prefix, { attempts: 2, backoffMs: 20 });
    const broken = await start(brokenConfig, { prisma, redis, producer: brokenProducer, staging: splitStore });
    try {
      // Far more than the pipes between the transform and the store hold.
      const lines = Array.from({ length: 100 }, () => conversations).flat();
      const { run, tenant, rawKey } = await runTransform({ reportId: "messaging-conversations", format: "csv" }, lines, undefined, brokenProducer);
      expect(run.status).toBe("FAILED");
      expect(run.attempts).toBe(2);
      expect(run.error).toContain("ENOTDIR");
      expect(await brokenProducer.hasJob("encrypt", run.id)).toBe(false);
      const reportKey = stagingKey(tenant.id, run.id, "report", "nightly-messaging_2026-03-29T0100+0100_2026-03-29T0400+0200.csv");
      expect(await staging.stat(reportKey)).toBeNull();
      expect(await staging.stat(rawKey)).not.toBeNull();
    } finally {
      await broken.stop();
      await brokenProducer.close();
      const keys = await redis.keys(`${prefix}:*`);
      if (keys.length) await redis.del(...keys);
    }
  });
});
