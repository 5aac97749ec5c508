import { randomUUID } from "node:crypto";
import { UnrecoverableError } from "bullmq";
import { keyringFromConfig } from "@transporter/crypto";
import { buildApp, generateApiKey, type GatewayApp } from "@transporter/gateway";
import { createRedis, createStageWorker, createWorker, JobProducer, type Stage } from "@transporter/queue";
import { installTestTelemetry } from "@transporter/telemetry/testing";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { Clock, DAY, fetchJobRunIds, HOUR, MINUTE, runsOf, setup, type Env } from "./helpers.js";

const telemetry = installTestTelemetry();
afterAll(async () => telemetry.shutdown());

describe("reconciler", () => {
  let env: Env;
  beforeAll(async () => {
    env = await setup("sched-reconciler", { RECONCILER_GRACE_MS: String(2 * MINUTE) });
  });
  afterAll(async () => env.close());
  beforeEach(async () => env.reset());

  it("a flushed Redis loses no run: PENDING runs get their fetch job back, under the same job id, once", async () => {
    const clock = new Clock(Date.parse("2026-06-01T00:00:00Z"));
    const owner = await env.tenant("Europe/Dublin");
    const taskId = await env.task(owner, { frequency: "interval", everyMinutes: 15 }, "Europe/Dublin", clock.now());
    const scheduler = env.scheduler({ now: clock.now });
    clock.advance(HOUR);
    const tick = await scheduler.tick();
    expect(tick.created).toBe(4);
    const runs = await runsOf(env.pool, taskId);
    expect((await fetchJobRunIds(scheduler)).sort()).toEqual(runs.map((r) => r.id).sort());

    // Redis loses everything (FLUSHDB, failover without persistence): here, this file's keys.
    const keys = await env.redis.keys(`${env.prefix}:*`);
    await env.redis.del(...keys);
    expect(await fetchJobRunIds(scheduler)).toEqual([]);

    // Within the grace period nothing happens: the runs may still be on their way to the queue.
    clock.advance(MINUTE);
    expect((await scheduler.reconcile()).reenqueued).toBe(0);

    clock.advance(2 * MINUTE);
    const first = await scheduler.reconcile();
    expect(first.reenqueued).toBe(4);
    const restored = await fetchJobRunIds(scheduler);
    expect(restored.sort()).toEqual(runs.map((r) => r.id).sort());
    const jobIds = (await scheduler.producer.queue("fetch").getJobs(["wait"], 0, -1, true)).map((j) => j.id);
    expect(jobIds.sort()).toEqual(runs.map((r) => `${r.id}-fetch`).sort());

    // A second pass (or a second replica) finds every job in place.
    const second = await scheduler.reconcile();
    expect(second).toMatchObject({ reenqueued: 0, checked: 4 });
    expect(await fetchJobRunIds(scheduler)).toHaveLength(4);
  });

  it("a crash between commit and enqueue loses no run", async () => {
    const clock = new Clock(Date.parse("2026-06-02T00:00:00Z"));
    const owner = await env.tenant("UTC");
    const taskId = await env.task(owner, { frequency: "daily", time: "06:00" }, "UTC", clock.now());
    // A producer whose Redis writes fail, as if the process died right after COMMIT.
    const broken = new JobProducer(env.redis, env.prefix);
    broken.enqueueBulk = async () => {
      throw new Error("connection lost");
    };
    const crashing = env.scheduler({ now: clock.now, producer: broken });
    clock.set("2026-06-02T06:01:00Z");
    await expect(crashing.tick()).rejects.toThrow("connection lost");
    const [run] = await runsOf(env.pool, taskId);
    expect(run).toMatchObject({ status: "PENDING", enqueuedAt: null });

    const healthy = env.scheduler({ now: clock.now });
    // The window is not created twice: the task already moved on to tomorrow.
    expect((await healthy.tick()).due).toBe(0);
    clock.advance(3 * MINUTE);
    const result = await healthy.reconcile();
    expect(result.reenqueued).toBe(1);
    expect(await healthy.producer.hasJob("fetch", run!.id)).toBe(true);
    expect((await runsOf(env.pool, taskId))[0]!.enqueuedAt).not.toBeNull();
  });

  it("records a run as enqueued when the tick's enqueue reached Redis though its reply was lost", async () => {
    const clock = new Clock(Date.parse("2026-06-04T00:00:00Z"));
    const owner = await env.tenant("UTC");
    const taskId = await env.task(owner, { frequency: "daily", time: "06:00" }, "UTC", clock.now());
    // The jobs are added, then the reply is lost (Redis went away after taking the write).
    const lossy = new JobProducer(env.redis, env.prefix);
    const add = lossy.enqueueBulk.bind(lossy);
    lossy.enqueueBulk = async (name, payloads) => {
      await add(name, payloads);
      throw new Error("connection reset before the reply");
    };
    clock.set("2026-06-04T06:01:00Z");
    await expect(env.scheduler({ now: clock.now, producer: lossy }).tick()).rejects.toThrow("reply");
    const [run] = await runsOf(env.pool, taskId);
    expect(run).toMatchObject({ status: "PENDING", enqueuedAt: null });

    const healthy = env.scheduler({ now: clock.now });
    clock.advance(3 * MINUTE);
    expect((await healthy.reconcile()).reenqueued).toBe(0);
    // Enqueued (about) when it was created: its job is there.
    expect((await runsOf(env.pool, taskId))[0]!.enqueuedAt).toEqual(run!.createdAt);
  });

  it("leaves runs that moved past PENDING to the stuck-run pass, which gives a FETCHING run its lost fetch job back", async () => {
    const clock = new Clock(Date.parse("2026-06-03T00:00:00Z"));
    const owner = await env.tenant("UTC");
    const taskId = await env.task(owner, { frequency: "daily", time: "01:00" }, "UTC", clock.now());
    const scheduler = env.scheduler({ now: clock.now });
    clock.set("2026-06-03T01:00:00Z");
    await scheduler.tick();
    const [run] = await runsOf(env.pool, taskId);
    await env.pool.query(`UPDATE "Run" SET status = 'FETCHING', "fetchStartedAt" = $2 WHERE id = $1`, [run!.id, clock.now()]);
    await scheduler.producer.queue("fetch").remove(`${run!.id}-fetch`);
    clock.advance(HOUR);
    const result = await scheduler.reconcile();
    expect(result).toMatchObject({ checked: 0, reenqueued: 0, stuck: { checked: 1, reenqueued: 1, failed: 0 } });
    expect(await scheduler.producer.hasJob("fetch", run!.id)).toBe(true);
    expect((await runsOf(env.pool, taskId))[0]).toMatchObject({ status: "FETCHING" });
  });
});

describe("reconciler: runs stuck in a stage status", () => {
  let env: Env;
  let gateway: GatewayApp;
  beforeAll(async () => {
    env = await setup("sched-stuck", { RECONCILER_GRACE_MS: String(2 * MINUTE) });
    gateway = await buildApp({ config: env.config, prisma: env.db.prisma, redis: env.redis, queues: new JobProducer(env.redis, env.prefix), keyring: keyringFromConfig(env.config) });
  });
  afterAll(async () => {
    await gateway?.close();
    await env.close();
  });
  beforeEach(async () => env.reset());

  const DAY_START = Date.parse("2026-06-10T00:00:00Z");

  /** A run of a new task, put in `status` as a stage would leave it, last changed at `updatedAt`. */
  async function stuckRun(status: string, updatedAt: Date, fields: { staging?: Record<string, string>; finished?: boolean; notifications?: object } = {}) {
    const owner = await env.tenant("UTC");
    const taskId = await env.task(owner, { frequency: "daily", time: "06:00" }, "UTC", new Date(DAY_START));
    if (fields.notifications) await env.pool.query(`UPDATE "Task" SET notifications = $2 WHERE id = $1`, [taskId, JSON.stringify(fields.notifications)]);
    const stage = ({ FETCHING: "fetch", TRANSFORMING: "transform", ENCRYPTING: "encrypt", DELIVERING: "deliver" } as const)[status]!;
    const started = { fetch: "fetchStartedAt", transform: "transformStartedAt", encrypt: "encryptStartedAt", deliver: "deliverStartedAt" }[stage];
    const finished = { fetch: "fetchFinishedAt", transform: "transformFinishedAt", encrypt: "encryptFinishedAt", deliver: "deliveredAt" }[stage];
    // Staging keys are given relative to the run's staging folder, as the stages write them.
    const runId = randomUUID();
    const key = (name: string) => `tenants/${owner.tenantId}/runs/${runId}/${name}`;
    const staging = Object.fromEntries(Object.entries(fields.staging ?? {}).map(([field, name]) => [field, key(name)]));
    await env.pool.query(
      `INSERT INTO "Run" (id, "tenantId", "taskId", "windowStart", "windowEnd", "scheduledFor", trigger, status, attempts, staging, "${started}", "${finished}", "createdAt", "updatedAt")
       VALUES ($9, $1, $2, $3, $4, $4, 'schedule', $5, 1, $6, $7, $8, $7, $7)`,
      [owner.tenantId, taskId, new Date(DAY_START - DAY), new Date(DAY_START), status, JSON.stringify(staging), updatedAt, fields.finished ? updatedAt : null, runId],
    );
    return { ...owner, taskId, runId, key };
  }

  async function runRow(id: string) {
    const { rows } = await env.pool.query(`SELECT status, error, "errorCode", attempts, "updatedAt", "transformFinishedAt", "finishedAt" FROM "Run" WHERE id = $1`, [id]);
    return rows[0];
  }

  async function failureAlerts(taskId: string) {
    const { rows } = await env.pool.query(`SELECT kind, message, occurrences, "runId", "resolvedAt" FROM "Alert" WHERE "taskId" = $1 AND "dedupeKey" = $2`, [taskId, `run.failed:${taskId}`]);
    return rows;
  }

  async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** Puts a `stage` job for the run in BullMQ's failed set, as a worker that gives up on it does. */
  async function failedJob(stage: Stage, payload: Record<string, unknown> & { runId: string; tenantId: string }, reason: string, stalledCount = 0) {
    const producer = new JobProducer(env.redis, env.prefix, { attempts: 1, backoffMs: 1 });
    const connection = createRedis(env.config.REDIS_URL);
    try {
      const jobId = await producer.enqueue(stage, payload as never);
      const worker = createWorker(stage, async () => {
        throw new UnrecoverableError(reason);
      }, { connection, prefix: env.prefix, concurrency: 1 });
      await waitFor(`${jobId} failed`, async () => (await producer.queue(stage).getJobState(jobId)) === "failed");
      await worker.close();
      if (stalledCount) await env.redis.hset(producer.queue(stage).toKey(jobId), "stc", stalledCount);
    } finally {
      await producer.close();
      connection.disconnect();
    }
  }

  it("a DELIVERING run whose deliver job failed while the database was unreachable is FAILED with the reason and one alert, and can be retried", async () => {
    const { taskId, runId, tenantId } = await stuckRun("ENCRYPTING", new Date(Date.now() - HOUR), { staging: { rawKey: "r", reportKey: "p", encryptedKey: "e" }, finished: true });
    // The deliverer as it runs: a transient error on every attempt, and on the last one the
    // database refuses the FAILED write (prisma.$transaction rejects), so the job ends failed
    // with the run still DELIVERING.
    const prisma = env.db.prisma;
    const transaction = prisma.$transaction;
    prisma.$transaction = (async () => {
      throw new Error("Can't reach database server");
    }) as typeof prisma.$transaction;
    const connection = createRedis(env.config.REDIS_URL);
    const producer = new JobProducer(env.redis, env.prefix, { attempts: 2, backoffMs: 1 });
    const deliverer = createStageWorker({
      stage: "deliver", config: env.config, prisma, redis: connection, producer,
      handler: async () => {
        throw Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" });
      },
    });
    try {
      await producer.enqueue("deliver", { runId, tenantId, encryptedKey: `tenants/${tenantId}/runs/${runId}/encrypted/e.csv.pgp` });
      await waitFor("the deliver job failed", async () => (await producer.queue("deliver").getJobState(`${runId}-deliver`)) === "failed");
    } finally {
      await deliverer.close();
      prisma.$transaction = transaction;
      await producer.close();
      connection.disconnect();
    }
    expect(await runRow(runId)).toMatchObject({ status: "DELIVERING", attempts: 3 });
    expect(await failureAlerts(taskId)).toEqual([]);

    const scheduler = env.scheduler({ now: () => new Date(Date.now() + 5 * MINUTE) });
    const result = await scheduler.reconcile();
    expect(result.stuck).toMatchObject({ failed: 1, reenqueued: 0 });
    const failed = await runRow(runId);
    expect(failed).toMatchObject({
      status: "FAILED",
      errorCode: "job_failed",
      error: "deliver: the deliver job failed after 2 attempts without the run being marked failed: Can't reach database server",
    });
    expect(failed.finishedAt).not.toBeNull();
    const alerts = await failureAlerts(taskId);
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({ kind: "run.failed", occurrences: 1, runId, resolvedAt: null });
    expect(alerts[0].message).toContain("failed while it was delivering: the deliver job failed after 2 attempts");

    // A second pass (or replica) finds nothing to do: still one alert, raised once.
    expect((await scheduler.reconcile()).stuck).toMatchObject({ failed: 0, reenqueued: 0, checked: 0 });
    expect((await failureAlerts(taskId))[0]).toMatchObject({ occurrences: 1 });

    // The failed run can be retried through the API like any failed run (given what any run needs: a key and a source).
    const key = generateApiKey();
    await env.db.prisma.apiKey.create({ data: { tenantId, name: "admin", prefix: key.prefix, secretHash: key.secretHash, role: "admin" } });
    await env.db.prisma.encryptionKey.create({ data: { tenantId, publicKey: "k", fingerprint: `FP${tenantId}`, algorithm: "rsa", bits: 2048, origin: "generated", active: true } });
    const source = await env.db.prisma.source.create({ data: { tenantId, name: "LP", kind: "liveperson", accountId: `acc-${tenantId}`, sealedCredentials: "v1.x.y.z", permissions: [] } });
    await env.db.prisma.task.update({ where: { id: taskId }, data: { sourceId: source.id } });
    const retry = await gateway.inject({ method: "POST", url: `/v1/runs/${runId}/retry`, headers: { authorization: `Bearer ${key.key}` } });
    expect(retry.statusCode).toBe(202);
    const again = JSON.parse(retry.body) as { id: string; status: string; retryOfId: string };
    expect(again).toMatchObject({ status: "PENDING", retryOfId: runId });
    expect(await scheduler.producer.hasJob("fetch", again.id)).toBe(true);
  });

  it("a job BullMQ failed for stalling too often (its worker died each time) fails the run with that reason and notifies", async () => {
    const { taskId, runId, tenantId, key } = await stuckRun("TRANSFORMING", new Date(Date.now() - HOUR), { staging: { rawKey: "raw.ndjson" }, notifications: { email: ["ops@example.com"], on: "failure" } });
    await failedJob("transform", { runId, tenantId, rawKey: key("raw.ndjson") }, "job stalled more than allowable limit", 4);
    const scheduler = env.scheduler({ now: () => new Date(Date.now() + 5 * MINUTE) });
    expect((await scheduler.reconcile()).stuck).toMatchObject({ failed: 1 });
    const run = await runRow(runId);
    expect(run).toMatchObject({ status: "FAILED", errorCode: "job_stalled" });
    expect(run.error).toMatch(/^transform: the transform job failed without recording why: its worker died \(or lost the job's lock\) in the middle of it 4 times/);
    expect(await failureAlerts(taskId)).toHaveLength(1);
    const notify = await scheduler.producer.queue("notify").getJob(`${runId}-notify`);
    expect(notify?.data).toMatchObject({ runId, tenantId, outcome: "failed" });
    // The notification is owed from the failure on, with it: if the enqueue had been lost, the next pass queues it.
    const { rows } = await env.pool.query(`SELECT "notificationDueAt" = "finishedAt" AS owed FROM "Run" WHERE id = $1`, [runId]);
    expect(rows[0]).toEqual({ owed: true });
  });

  it("a PENDING run whose fetch job failed before the fetch stage could claim it is FAILED; one whose job is only missing is the PENDING pass's", async () => {
    const owner = await env.tenant("UTC");
    const taskId = await env.task(owner, { frequency: "daily", time: "06:00" }, "UTC", new Date(DAY_START));
    const old = new Date(Date.now() - HOUR);
    const pending = async (windowStart: number) =>
      (
        await env.pool.query<{ id: string }>(
          `INSERT INTO "Run" (id, "tenantId", "taskId", "windowStart", "windowEnd", "scheduledFor", trigger, status, "createdAt", "updatedAt")
           VALUES (gen_random_uuid(), $1, $2, $3, $4, $4, 'schedule', 'PENDING', $5, $5) RETURNING id`,
          [owner.tenantId, taskId, new Date(windowStart), new Date(windowStart + DAY), old],
        )
      ).rows[0]!.id;
    const failedId = await pending(DAY_START - 2 * DAY);
    const lostId = await pending(DAY_START - DAY);
    await failedJob("fetch", { runId: failedId, tenantId: owner.tenantId }, "Can't reach database server at 127.0.0.1:5432");
    const scheduler = env.scheduler({ now: () => new Date(Date.now() + 5 * MINUTE) });
    const result = await scheduler.reconcile();
    expect(result.stuck).toMatchObject({ failed: 1, reenqueued: 0 });
    expect(result.reenqueued).toBe(1);
    expect(await runRow(failedId)).toMatchObject({ status: "FAILED", errorCode: "job_failed" });
    expect((await runRow(failedId)).error).toMatch(/^fetch: the fetch job failed after 1 attempt without the run being marked failed: Can't reach database server/);
    expect(await failureAlerts(taskId)).toHaveLength(1);
    expect(await runRow(lostId)).toMatchObject({ status: "PENDING" });
    expect(await scheduler.producer.queue("fetch").getJob(`${lostId}-fetch`)).toBeDefined();
  });

  it("a PENDING run whose fetch job failed and whose task was deleted meanwhile ends SKIPPED, with no alert", async () => {
    const owner = await env.tenant("UTC");
    const taskId = await env.task(owner, { frequency: "daily", time: "06:00" }, "UTC", new Date(DAY_START));
    const old = new Date(Date.now() - HOUR);
    const { rows } = await env.pool.query<{ id: string }>(
      `INSERT INTO "Run" (id, "tenantId", "taskId", "windowStart", "windowEnd", "scheduledFor", trigger, status, "createdAt", "updatedAt")
       VALUES (gen_random_uuid(), $1, $2, $3, $4, $4, 'schedule', 'PENDING', $5, $5) RETURNING id`,
      [owner.tenantId, taskId, new Date(DAY_START - 3 * DAY), new Date(DAY_START - 2 * DAY), old],
    );
    const runId = rows[0]!.id;
    await failedJob("fetch", { runId, tenantId: owner.tenantId }, "Can't reach database server at 127.0.0.1:5432");
    await env.pool.query(`UPDATE "Task" SET "deletedAt" = now(), enabled = false WHERE id = $1`, [taskId]);
    const scheduler = env.scheduler({ now: () => new Date(Date.now() + 5 * MINUTE) });
    const result = await scheduler.reconcile();
    expect(result.stuck).toMatchObject({ failed: 0, skipped: 1 });
    expect(await runRow(runId)).toMatchObject({ status: "SKIPPED", errorCode: "task_deleted" });
    expect(await failureAlerts(taskId)).toEqual([]);
    // Counted with the runs the fetch stage skips, by reason.
    const skipped = (await telemetry.collectMetrics()).get("transporter.runs.skipped") ?? [];
    expect(skipped).toEqual([{ attributes: { reason: "task_deleted" }, value: 1 }]);
  });

  it("a run under way whose job failed and whose task was deleted meanwhile is FAILED with its reason and notification, with no alert", async () => {
    const { taskId, runId, tenantId, key } = await stuckRun("TRANSFORMING", new Date(Date.now() - HOUR), { staging: { rawKey: "raw.ndjson" }, notifications: { email: ["ops@example.com"], on: "failure" } });
    await failedJob("transform", { runId, tenantId, rawKey: key("raw.ndjson") }, "job stalled more than allowable limit", 4);
    // Deleted while the run was under way (a run that has begun finishes): the delete resolved the
    // task's failure alert, and no later success could resolve one raised now.
    await env.pool.query(`UPDATE "Task" SET "deletedAt" = now(), enabled = false, "nextRunAt" = NULL WHERE id = $1`, [taskId]);
    const scheduler = env.scheduler({ now: () => new Date(Date.now() + 5 * MINUTE) });
    expect((await scheduler.reconcile()).stuck).toMatchObject({ failed: 1 });
    const run = await runRow(runId);
    expect(run).toMatchObject({ status: "FAILED", errorCode: "job_stalled" });
    expect(run.error).toMatch(/^transform: the transform job failed without recording why/);
    expect(await failureAlerts(taskId)).toEqual([]);
    expect((await scheduler.producer.queue("notify").getJob(`${runId}-notify`))?.data).toMatchObject({ runId, tenantId, outcome: "failed" });
  });

  it("a TRANSFORMING run whose transform job Redis lost gets it back with its input, and the transform stage takes it on", async () => {
    const { runId, tenantId, key } = await stuckRun("TRANSFORMING", new Date(Date.now() - HOUR), { staging: { rawKey: "raw/records.ndjson" } });
    const scheduler = env.scheduler({ now: () => new Date(Date.now() + 5 * MINUTE) });
    const result = await scheduler.reconcile();
    expect(result.stuck).toMatchObject({ checked: 1, reenqueued: 1, failed: 0 });
    const job = await scheduler.producer.queue("transform").getJob(`${runId}-transform`);
    expect(job?.data).toMatchObject({ runId, tenantId, rawKey: key("raw/records.ndjson") });
    // The next pass leaves the waiting job alone.
    expect((await scheduler.reconcile()).stuck).toMatchObject({ reenqueued: 0, failed: 0 });

    // The stage claims the run again (it has not finished), runs, and hands over to encrypt.
    const connection = createRedis(env.config.REDIS_URL);
    const seen: string[] = [];
    const transformer = createStageWorker({
      stage: "transform", config: env.config, prisma: env.db.prisma, redis: connection, producer: scheduler.producer,
      handler: async ({ payload }) => {
        seen.push(payload.rawKey);
        return { reportKey: key("report/file.csv") };
      },
    });
    try {
      await waitFor("the encrypt job", () => scheduler.producer.hasJob("encrypt", runId));
    } finally {
      await transformer.close();
      connection.disconnect();
    }
    expect(seen).toEqual([key("raw/records.ndjson")]);
    const run = await runRow(runId);
    expect(run).toMatchObject({ status: "TRANSFORMING", attempts: 2 });
    expect(run.transformFinishedAt).not.toBeNull();
    expect((await scheduler.producer.queue("encrypt").getJob(`${runId}-encrypt`))?.data).toMatchObject({ reportKey: key("report/file.csv") });
  });

  it("a run whose stage finished but whose next job was lost gets the next stage's job; one whose input is unknown fails", async () => {
    const done = await stuckRun("FETCHING", new Date(Date.now() - HOUR), { staging: { rawKey: "raw/records.ndjson" }, finished: true });
    const blind = await stuckRun("ENCRYPTING", new Date(Date.now() - HOUR), { staging: {}, finished: true });
    const scheduler = env.scheduler({ now: () => new Date(Date.now() + 5 * MINUTE) });
    expect((await scheduler.reconcile()).stuck).toMatchObject({ checked: 2, reenqueued: 1, failed: 1 });
    expect(await scheduler.producer.hasJob("fetch", done.runId)).toBe(false);
    expect((await scheduler.producer.queue("transform").getJob(`${done.runId}-transform`))?.data).toMatchObject({ rawKey: done.key("raw/records.ndjson") });
    expect(await runRow(blind.runId)).toMatchObject({ status: "FAILED", errorCode: "job_lost" });
    expect(await failureAlerts(blind.taskId)).toHaveLength(1);
  });

  it("leaves alone runs whose job is waiting or active, and runs that changed within the grace period", async () => {
    const old = new Date(Date.now() - HOUR);
    const waiting = await stuckRun("DELIVERING", old, { staging: { encryptedKey: "e" } });
    const active = await stuckRun("ENCRYPTING", old, { staging: { reportKey: "p" } });
    const young = await stuckRun("DELIVERING", new Date(Date.now() - MINUTE), { staging: { encryptedKey: "e" } });
    const youngLost = await stuckRun("TRANSFORMING", new Date(Date.now() - MINUTE), { staging: { rawKey: "r" } });
    await failedJob("deliver", { runId: young.runId, tenantId: young.tenantId, encryptedKey: young.key("e") }, "boom");
    const producer = new JobProducer(env.redis, env.prefix);
    await producer.enqueue("deliver", { runId: waiting.runId, tenantId: waiting.tenantId, encryptedKey: waiting.key("e") });
    await producer.enqueue("encrypt", { runId: active.runId, tenantId: active.tenantId, reportKey: active.key("p") });
    const connection = createRedis(env.config.REDIS_URL);
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const worker = createWorker("encrypt", () => held, { connection, prefix: env.prefix, concurrency: 1 });
    try {
      await waitFor("the encrypt job active", async () => (await producer.queue("encrypt").getJobState(`${active.runId}-encrypt`)) === "active");
      const scheduler = env.scheduler({ now: () => new Date(Date.now()) });
      expect((await scheduler.reconcile()).stuck).toEqual({ checked: 2, reenqueued: 0, failed: 0, skipped: 0 });
      for (const run of [waiting, active, young, youngLost]) expect((await runRow(run.runId)).status).not.toBe("FAILED");
      expect(await producer.hasJob("transform", youngLost.runId)).toBe(false);
      expect(await failureAlerts(young.taskId)).toEqual([]);

      // Once the grace period has passed, the failed and the lost ones are recovered; the others still wait.
      const later = env.scheduler({ now: () => new Date(Date.now() + 5 * MINUTE) });
      expect((await later.reconcile()).stuck).toEqual({ checked: 4, reenqueued: 1, failed: 1, skipped: 0 });
      expect(await runRow(young.runId)).toMatchObject({ status: "FAILED", errorCode: "job_failed" });
      expect(await producer.hasJob("transform", youngLost.runId)).toBe(true);
      expect(await runRow(waiting.runId)).toMatchObject({ status: "DELIVERING" });
      expect(await runRow(active.runId)).toMatchObject({ status: "ENCRYPTING" });
    } finally {
      release();
      await worker.close();
      connection.disconnect();
      await producer.close();
    }
  });

  /** A finished run of a task with notification settings, owing its notification since `dueAt` (null: handled). */
  async function finishedRun(status: "SUCCEEDED" | "FAILED", dueAt: Date | null) {
    const run = await stuckRun("DELIVERING", new Date(Date.now() - 2 * HOUR), { staging: { encryptedKey: "e" }, notifications: { webhookUrl: "https://hooks.example.test/runs", on: "always" } });
    await env.pool.query(`UPDATE "Run" SET status = $2, "finishedAt" = $3, "notificationDueAt" = $4 WHERE id = $1`, [run.runId, status, new Date(Date.now() - HOUR), dueAt]);
    return run;
  }

  async function notificationDueAt(runId: string): Promise<Date | null> {
    const { rows } = await env.pool.query(`SELECT "notificationDueAt" FROM "Run" WHERE id = $1`, [runId]);
    return rows[0].notificationDueAt;
  }

  /** A notify job for the run that a worker completed, or failed on its only attempt. */
  async function settledNotifyJob(run: { runId: string; tenantId: string }, ending: "completed" | "failed") {
    const producer = new JobProducer(env.redis, env.prefix, { attempts: 1, backoffMs: 1 });
    const connection = createRedis(env.config.REDIS_URL);
    try {
      const jobId = await producer.enqueue("notify", { runId: run.runId, tenantId: run.tenantId, outcome: "succeeded" });
      const worker = createWorker("notify", async () => {
        if (ending === "failed") throw new Error("database unreachable");
      }, { connection, prefix: env.prefix, concurrency: 1 });
      await waitFor(`${jobId} ${ending}`, async () => (await producer.queue("notify").getJobState(jobId)) === ending);
      await worker.close();
    } finally {
      await producer.close();
      connection.disconnect();
    }
  }

  it("a finished run still owing its notification after the grace period gets its notify job; a handled, fresh or queued one is left", async () => {
    const old = new Date(Date.now() - HOUR);
    const lost = await finishedRun("FAILED", old);
    const fresh = await finishedRun("SUCCEEDED", new Date(Date.now() + 4 * MINUTE));
    const handled = await finishedRun("SUCCEEDED", null);
    // Its job completed, but clearing the mark failed (the database out for a moment).
    const completed = await finishedRun("SUCCEEDED", old);
    await settledNotifyJob(completed, "completed");
    const queued = await finishedRun("SUCCEEDED", old);
    const producer = new JobProducer(env.redis, env.prefix);
    await producer.enqueue("notify", { runId: queued.runId, tenantId: queued.tenantId, outcome: "succeeded" });
    await producer.close();
    const scheduler = env.scheduler({ now: () => new Date(Date.now() + 5 * MINUTE) });

    const first = await scheduler.reconcile();
    expect(first.notifications).toEqual({ checked: 3, enqueued: 1, retried: 0, settled: 1, abandoned: 0 });
    const notify = scheduler.producer.queue("notify");
    expect((await notify.getJob(`${lost.runId}-notify`))?.data).toMatchObject({ runId: lost.runId, tenantId: lost.tenantId, outcome: "failed" });
    for (const run of [fresh, handled]) expect(await scheduler.producer.hasJob("notify", run.runId)).toBe(false);
    expect(await notify.getJobState(`${queued.runId}-notify`)).toBe("waiting");
    expect(await notificationDueAt(completed.runId)).toBeNull();
    expect(await notificationDueAt(lost.runId)).toEqual(old);

    // The next pass finds the job in place: nothing is queued twice.
    expect((await scheduler.reconcile()).notifications).toMatchObject({ checked: 2, enqueued: 0, settled: 0 });
    expect(await notify.getJobCounts("waiting")).toMatchObject({ waiting: 2 });
  });

  it("a notify job that failed on every attempt is tried again from its first attempt; after a day owed it is given up", async () => {
    const failing = await finishedRun("SUCCEEDED", new Date(Date.now() - HOUR));
    await settledNotifyJob(failing, "failed");
    const stale = await finishedRun("FAILED", new Date(Date.now() - 25 * HOUR));
    await settledNotifyJob(stale, "failed");
    const scheduler = env.scheduler({ now: () => new Date(Date.now() + 5 * MINUTE) });
    expect((await scheduler.reconcile()).notifications).toEqual({ checked: 2, enqueued: 0, retried: 1, settled: 0, abandoned: 1 });
    const job = await scheduler.producer.queue("notify").getJob(`${failing.runId}-notify`);
    expect(await job?.getState()).toBe("waiting");
    expect(job?.attemptsMade).toBe(0);
    expect(await notificationDueAt(failing.runId)).not.toBeNull();
    expect(await scheduler.producer.queue("notify").getJobState(`${stale.runId}-notify`)).toBe("failed");
    expect(await notificationDueAt(stale.runId)).toBeNull();
  });

  it("a run a worker finishes between the reconciler's read and its write stays SUCCEEDED", async () => {
    const old = new Date(Date.now() - HOUR);
    const failing = await stuckRun("DELIVERING", old, { staging: { encryptedKey: "e" } });
    const lost = await stuckRun("TRANSFORMING", old, { staging: { rawKey: "r" } });
    await failedJob("deliver", { runId: failing.runId, tenantId: failing.tenantId, encryptedKey: failing.key("e") }, "boom");
    const scheduler = env.scheduler({ now: () => new Date(Date.now() + 5 * MINUTE) });
    // The runs are read, then, while their jobs are looked up in Redis, a worker completes them.
    const pipeline = env.redis.pipeline;
    env.redis.pipeline = ((...args: Parameters<typeof pipeline>) => {
      const p = pipeline.apply(env.redis, args);
      const exec = p.exec.bind(p);
      p.exec = (async () => {
        await env.pool.query(`UPDATE "Run" SET status = 'SUCCEEDED', "finishedAt" = now(), "updatedAt" = now() WHERE id = ANY($1::uuid[])`, [[failing.runId, lost.runId]]);
        return exec();
      }) as typeof p.exec;
      return p;
    }) as typeof pipeline;
    try {
      expect((await scheduler.reconcile()).stuck).toEqual({ checked: 2, reenqueued: 0, failed: 0, skipped: 0 });
    } finally {
      env.redis.pipeline = pipeline;
    }
    expect(await runRow(failing.runId)).toMatchObject({ status: "SUCCEEDED", error: null, errorCode: null });
    expect(await runRow(lost.runId)).toMatchObject({ status: "SUCCEEDED" });
    expect(await scheduler.producer.hasJob("transform", lost.runId)).toBe(false);
    expect(await failureAlerts(failing.taskId)).toEqual([]);
  });
});
