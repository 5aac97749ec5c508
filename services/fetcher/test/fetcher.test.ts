import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Queue } from "bullmq";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testConfig, type Config } from "@transporter/config";
import { keyringFromConfig, sealJson } from "@transporter/crypto";
import type { Db, Run } from "@transporter/db";
import { createTestDatabase, type TestDatabase } from "@transporter/db/testing";
import { createRedis, JobProducer, testRedisPrefix, type Redis } from "@transporter/queue";
import { conversationsForWindow, engagementsForWindow, startSimulator, type Simulator } from "@transporter/simulator";
import { createPlatform, createRateBudget, SOURCE_APIS, type SourceCredentials } from "@transporter/sources";
import { getReport } from "@transporter/reports";
import { createStagingStore, stagingKey } from "@transporter/storage";
import { start, sourceCredentialsContext } from "../src/index.js";

const SEED = "fetcher-tests";

async function waitFor<T>(what: string, probe: () => Promise<T | undefined | null>): Promise<T> {
  for (let i = 0; i < 600; i++) {
    const value = await probe();
    if (value !== undefined && value !== null) return value;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const ndjson = (records: Iterable<unknown>) => [...records].map((r) => JSON.stringify(r) + "\n").join("");

describe("fetcher service", () => {
  let db: TestDatabase;
  let prisma: Db;
  let redis: Redis;
  let config: Config;
  let producer: JobProducer;
  let transformQueue: Queue;
  let sim: Simulator;
  let service: { stop(): Promise<void> };
  let workDir: string;
  let prefix: string;
  let tenantId: string;
  let destinationId: string;
  let accountSeq = 0;

  beforeAll(async () => {
    workDir = await mkdtemp(join(tmpdir(), "tp-fetcher-"));
    [db, sim] = await Promise.all([createTestDatabase(), startSimulator({ seed: SEED })]);
    prisma = db.prisma;
    prefix = testRedisPrefix("fetcher");
    config = testConfig({ DATABASE_URL: db.url, REDIS_PREFIX: prefix, STAGING_DIR: join(workDir, "staging"), JOB_ATTEMPTS: "3", JOB_BACKOFF_MS: "20" });
    redis = createRedis(config.REDIS_URL);
    producer = new JobProducer(redis, prefix, { attempts: 3, backoffMs: 20 });
    transformQueue = new Queue("transform", { connection: redis, prefix });
    const platform = createPlatform({
      csdsUrl: sim.url,
      dataAccessUrl: sim.url,
      allowInsecure: true,
      http: { budget: createRateBudget(redis, { prefix: `${prefix}:source-rate`, ratePerSecond: 200 }), backoffBaseMs: 5, backoffMaxMs: 20 },
    });
    service = await start(config, { prisma, redis, producer, platform, staging: createStagingStore(config) });
    const tenant = await prisma.tenant.create({ data: { name: "Fetch brand", accountId: `acct-${randomBytes(3).toString("hex")}`, timezone: "UTC" } });
    tenantId = tenant.id;
    const destination = await prisma.destination.create({ data: { tenantId, name: "managed", kind: "managed", config: {} } });
    destinationId = destination.id;
  }, 120_000);

  afterAll(async () => {
    await service?.stop();
    await transformQueue?.close();
    await producer?.close();
    if (redis) {
      const keys = await redis.keys(`${prefix}:*`);
      if (keys.length) await redis.del(...keys);
      await redis.quit();
    }
    await sim?.stop();
    await db?.drop();
    await rm(workDir, { recursive: true, force: true });
  });

  /** A platform account in the simulator, a source row with its sealed key, and a task. */
  async function setup(options: { reportId?: string; credentials?: Partial<SourceCredentials>; permissions?: (typeof SOURCE_APIS)[number][] } = {}) {
    const accountId = `9${process.pid % 1000}${++accountSeq}${Date.now() % 10_000}`;
    const credentials: SourceCredentials = { consumerKey: randomBytes(6).toString("hex"), consumerSecret: randomBytes(8).toString("hex"), token: randomBytes(6).toString("hex"), tokenSecret: randomBytes(8).toString("hex") };
    sim.control.registerAccount(accountId, { ...credentials, ...(options.permissions ? { permissions: options.permissions } : {}), volume: { conversations: 30, engagements: 20 } });
    const sourceId = crypto.randomUUID();
    await prisma.source.create({
      data: {
        id: sourceId, tenantId, name: "platform", kind: "liveperson", accountId,
        sealedCredentials: sealJson({ ...credentials, ...options.credentials }, keyringFromConfig(config), sourceCredentialsContext(tenantId, sourceId)),
      },
    });
    const task = await prisma.task.create({
      data: { tenantId, description: `fetch ${accountSeq}`, reportId: options.reportId ?? "messaging-conversations", format: "csv", frequency: "daily", time: "00:00", sourceId, destinationId },
    });
    return { accountId, credentials, sourceId, task };
  }

  async function runWindow(taskId: string, from: string, to: string): Promise<Run> {
    const run = await prisma.run.create({
      data: { tenantId, taskId, windowStart: new Date(from), windowEnd: new Date(to), scheduledFor: new Date(to), trigger: "manual" },
    });
    await producer.enqueue("fetch", { runId: run.id, tenantId });
    return waitFor("the fetch to finish", async () => {
      const current = await prisma.run.findUniqueOrThrow({ where: { id: run.id } });
      return current.fetchFinishedAt || current.status === "FAILED" ? current : undefined;
    });
  }

  const raw = (runId: string) => readFile(join(config.STAGING_DIR, stagingKey(tenantId, runId, "raw", "records.ndjson")), "utf8");

  it("streams the window's records as NDJSON to staging, records counts and calls, and hands over to transform", async () => {
    const { accountId, task } = await setup();
    const run = await runWindow(task.id, "2026-10-05T00:00:00Z", "2026-10-05T12:00:00Z");
    expect(run).toMatchObject({ status: "FETCHING", error: null, attempts: 1 });
    const want = [...conversationsForWindow(accountId, new Date("2026-10-05T00:00:00Z"), new Date("2026-10-05T12:00:00Z"), SEED, { perHour: 30 })];
    expect(run.records).toBe(want.length);
    expect(run.sourceCalls).toBeGreaterThanOrEqual(Math.ceil(want.length / 100));
    expect(run.reportVersion).toEqual(expect.any(Number));
    // Pinned with the report: the params the data was fetched with (the task's may change since).
    expect(run.params).toEqual(task.params);
    // Only the parts the report's version reads were asked for (campaign, consumers, … left out).
    const content = getReport("messaging-conversations", run.reportVersion!).version.sourceContent!;
    expect(content).not.toContain("campaign");
    const parts = (r: Record<string, unknown>) => Object.fromEntries(Object.entries(r).filter(([k]) => k === "info" || content.includes(k)));
    expect(await raw(run.id)).toBe(ndjson(want.map(parts)));
    const job = await waitFor("the transform job", async () => (await transformQueue.getJob(`${run.id}-transform`)) ?? undefined);
    expect(job.data).toMatchObject({ runId: run.id, tenantId, rawKey: stagingKey(tenantId, run.id, "raw", "records.ndjson") });
  });

  it("stages whole records for a report that carries them as they came", async () => {
    const { accountId, task } = await setup({ reportId: "messaging-conversations-raw" });
    const run = await runWindow(task.id, "2026-10-05T00:00:00Z", "2026-10-05T06:00:00Z");
    const want = [...conversationsForWindow(accountId, new Date("2026-10-05T00:00:00Z"), new Date("2026-10-05T06:00:00Z"), SEED, { perHour: 30 })];
    expect(want.length).toBeGreaterThan(100);
    expect(await raw(run.id)).toBe(ndjson(want));
  });

  it("gives identical NDJSON for the same window fetched twice", async () => {
    const { task } = await setup({ reportId: "chat-engagements" });
    const first = await runWindow(task.id, "2026-10-06T03:00:00Z", "2026-10-06T09:30:00Z");
    const second = await runWindow(task.id, "2026-10-06T03:00:00Z", "2026-10-06T09:30:00Z");
    expect(first.records).toBeGreaterThan(50);
    expect(await raw(second.id)).toBe(await raw(first.id));
  });

  it("retries a truncated response as a failed attempt and then delivers every record", async () => {
    const { accountId, task } = await setup({ reportId: "chat-engagements" });
    sim.control.setFaults(accountId, { truncateBody: { count: 1 } });
    const run = await runWindow(task.id, "2026-10-07T00:00:00Z", "2026-10-07T06:00:00Z");
    expect(run.status).toBe("FETCHING");
    expect(run.attempts).toBe(2);
    const want = [...engagementsForWindow(accountId, new Date("2026-10-07T00:00:00Z"), new Date("2026-10-07T06:00:00Z"), SEED, { perHour: 20 })];
    expect(await raw(run.id)).toBe(ndjson(want));
    expect(run.records).toBe(want.length);
  });

  it("fails the run at once with bad_credentials when the secret is wrong", async () => {
    const { task } = await setup({ credentials: { consumerSecret: "not-the-secret" } });
    const run = await runWindow(task.id, "2026-10-05T00:00:00Z", "2026-10-05T01:00:00Z");
    expect(run).toMatchObject({ status: "FAILED", errorCode: "bad_credentials", attempts: 1 });
    expect(run.error).toMatch(/^fetch: The platform rejected the API key/);
    expect(run.error).not.toContain("not-the-secret");
  });

  it("fails the run at once, without a call, when the source's platform account now belongs to another tenant", async () => {
    const { accountId, task } = await setup();
    // The operator onboarded that account as its own tenant after the source was saved.
    await prisma.tenant.create({ data: { accountId, name: "The account's own tenant", timezone: "UTC" } });
    sim.control.clearRequestLog(accountId);
    const run = await runWindow(task.id, "2026-10-05T00:00:00Z", "2026-10-05T01:00:00Z");
    expect(run).toMatchObject({ status: "FAILED", errorCode: "account_of_another_tenant", attempts: 1 });
    expect(run.error).toContain(accountId);
    expect(sim.control.requestLog(accountId)).toEqual([]);
  });

  it("fails the run at once naming the API the key may not use", async () => {
    const { task } = await setup({ permissions: SOURCE_APIS.filter((a) => a !== "messaging-interactions") });
    const run = await runWindow(task.id, "2026-10-05T00:00:00Z", "2026-10-05T01:00:00Z");
    expect(run).toMatchObject({ status: "FAILED", errorCode: "missing_permission", attempts: 1 });
    expect(run.error).toContain("Messaging Interactions");
  });

  it("fails with the reason after the last attempt when the platform stays down", async () => {
    const { accountId, task } = await setup();
    sim.control.setFaults(accountId, { status5xx: { count: 1000 } });
    const run = await runWindow(task.id, "2026-10-05T00:00:00Z", "2026-10-05T01:00:00Z");
    expect(run).toMatchObject({ status: "FAILED", errorCode: "upstream_unavailable", attempts: 3 });
    expect(run.error).toMatch(/HTTP 503 after 4 attempts/);
    expect(run.sourceCalls).toBeGreaterThanOrEqual(4);
  });
});
