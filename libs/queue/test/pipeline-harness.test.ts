import { context, trace } from "@opentelemetry/api";
import { installTestTelemetry } from "@transporter/telemetry/testing";
import { poolOf } from "@transporter/db";
import { failStatements, type TestDatabase } from "@transporter/db/testing";
import { beforeAll, describe, expect, it } from "vitest";
import { createStageWorker, createWorker, JobProducer, PermanentError, type Redis } from "../src/index.js";
import { useStageTestEnv } from "./support/stage-env.js";

const telemetry = installTestTelemetry();
const exporter = telemetry.spans;

async function waitFor<T>(probe: () => Promise<T | undefined | null | false>, timeoutMs = 20_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > until) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("queue contracts and the stage harness", () => {
  const env = useStageTestEnv("queue", { JOB_ATTEMPTS: "2", JOB_BACKOFF_MS: "10" });
  const { prefix, config } = env;
  let db: TestDatabase;
  let redis: Redis;
  beforeAll(() => {
    ({ db, redis } = env);
  });

  async function newRun(notifications: { [key: string]: string } = {}, options: { trigger?: "schedule" | "manual" | "retry"; enabled?: boolean } = {}) {
    const tenant = await db.prisma.tenant.create({ data: { accountId: `a${Math.random()}`, name: "t", timezone: "UTC" } });
    const destination = await db.prisma.destination.create({ data: { tenantId: tenant.id, name: "m", kind: "managed", config: {} } });
    const task = await db.prisma.task.create({
      data: { tenantId: tenant.id, description: "d", reportId: "messaging-conversations", format: "csv", frequency: "daily", time: "00:00", destinationId: destination.id, notifications, enabled: options.enabled ?? false },
    });
    return db.prisma.run.create({ data: { tenantId: tenant.id, taskId: task.id, windowStart: new Date(0), windowEnd: new Date(86_400_000), scheduledFor: new Date(), trigger: options.trigger ?? "manual" } });
  }

  it("rejects a payload that breaks the catalogue and never doubles a job id", async () => {
    const producer = new JobProducer(redis, prefix);
    await expect(producer.enqueue("transform", { runId: "not-a-uuid", tenantId: "x" } as never)).rejects.toThrow();
    const run = await newRun();
    await producer.enqueue("fetch", { runId: run.id, tenantId: run.tenantId });
    await producer.enqueue("fetch", { runId: run.id, tenantId: run.tenantId });
    expect(await producer.queue("fetch").getJobCounts("waiting")).toMatchObject({ waiting: 1 });
    expect(await producer.hasJob("fetch", run.id)).toBe(true);
    await producer.queue("fetch").obliterate({ force: true });
    await producer.close();
  });

  it("carries the trace context from the producer to the worker", async () => {
    const producer = new JobProducer(redis, `${prefix}-trace`);
    const run = await newRun();
    const tracer = trace.getTracer("test");
    const parent = tracer.startSpan("api request");
    await context.with(trace.setSpan(context.active(), parent), () => producer.enqueue("fetch", { runId: run.id, tenantId: run.tenantId }));
    parent.end();
    const seen: string[] = [];
    const worker = createWorker("fetch", async (payload) => {
      seen.push(payload.trace.traceparent ?? "");
    }, { connection: redis, prefix: `${prefix}-trace`, concurrency: 1 });
    await waitFor(async () => seen.length > 0);
    await worker.close();
    await producer.close();
    expect(seen[0]).toContain(parent.spanContext().traceId);
  });

  it("runs a stage, records its times and enqueues the next one in the same trace", async () => {
    const producer = new JobProducer(redis, prefix);
    const run = await newRun();
    const stage = createStageWorker({ stage: "fetch", config, prisma: db.prisma, redis, producer, handler: async () => ({ rawKey: "tenants/x/raw.ndjson" }) });
    const parent = trace.getTracer("test").startSpan("run now");
    await context.with(trace.setSpan(context.active(), parent), () => producer.enqueue("fetch", { runId: run.id, tenantId: run.tenantId }));
    parent.end();
    const job = await waitFor(async () => producer.queue("transform").getJob(`${run.id}-transform`));
    await stage.close();
    expect(job.data).toMatchObject({ runId: run.id, rawKey: "tenants/x/raw.ndjson" });
    const updated = await db.prisma.run.findUniqueOrThrow({ where: { id: run.id } });
    expect(updated.status).toBe("FETCHING");
    expect(updated.fetchStartedAt).toBeInstanceOf(Date);
    expect(updated.fetchFinishedAt).toBeInstanceOf(Date);
    expect(updated.attempts).toBe(1);
    expect(updated.staging).toEqual({ rawKey: "tenants/x/raw.ndjson" });
    const spans = exporter.getFinishedSpans().filter((s) => s.name === "fetch run");
    expect(spans.some((s) => s.spanContext().traceId === parent.spanContext().traceId)).toBe(true);
    await producer.close();
  });

  it("a permanent error fails the run at once with its reason and one alert per failure streak", async () => {
    const producer = new JobProducer(redis, prefix, { attempts: 5, backoffMs: 10 });
    const first = await newRun({ webhookUrl: "https://hooks.example.test/runs", on: "failure" });
    const unnotified = await newRun();
    let calls = 0;
    const stage = createStageWorker({
      stage: "fetch", config, prisma: db.prisma, redis, producer,
      handler: async () => {
        calls += 1;
        throw new PermanentError("bad_credentials", "the platform refused the API key (wrong secret)");
      },
    });
    await producer.enqueue("fetch", { runId: first.id, tenantId: first.tenantId });
    const failed = await waitFor(async () => {
      const r = await db.prisma.run.findUniqueOrThrow({ where: { id: first.id } });
      return r.status === "FAILED" ? r : null;
    });
    expect(calls).toBe(1);
    expect(failed.errorCode).toBe("bad_credentials");
    expect(failed.error).toContain("wrong secret");
    const second = await db.prisma.run.create({ data: { tenantId: first.tenantId, taskId: first.taskId, windowStart: new Date(1), windowEnd: new Date(2), scheduledFor: new Date(), trigger: "manual" } });
    await producer.enqueue("fetch", { runId: second.id, tenantId: second.tenantId });
    await waitFor(async () => (await db.prisma.run.findUniqueOrThrow({ where: { id: second.id } })).status === "FAILED");
    await producer.enqueue("fetch", { runId: unnotified.id, tenantId: unnotified.tenantId });
    await waitFor(async () => (await db.prisma.run.findUniqueOrThrow({ where: { id: unnotified.id } })).status === "FAILED");
    await stage.close();
    const alerts = await db.prisma.alert.findMany({ where: { tenantId: first.tenantId, kind: "run.failed" } });
    expect(alerts).toHaveLength(1);
    expect(alerts[0]!.occurrences).toBe(2);
    expect(await producer.hasJob("notify", second.id)).toBe(true);
    // A task without notification settings has nothing to notify: no job.
    expect(await producer.hasJob("notify", unnotified.id)).toBe(false);
    await producer.close();
  });

  it("a transient error is retried and fails the run only after the last attempt", async () => {
    const producer = new JobProducer(redis, prefix, { attempts: 3, backoffMs: 10 });
    const run = await newRun();
    let calls = 0;
    const stage = createStageWorker({
      stage: "fetch", config, prisma: db.prisma, redis, producer,
      handler: async () => {
        calls += 1;
        throw Object.assign(new Error("upstream answered 503"), { code: "upstream_unavailable" });
      },
    });
    await producer.enqueue("fetch", { runId: run.id, tenantId: run.tenantId });
    const failed = await waitFor(async () => {
      const r = await db.prisma.run.findUniqueOrThrow({ where: { id: run.id } });
      return r.status === "FAILED" ? r : null;
    });
    await stage.close();
    expect(calls).toBe(3);
    expect(failed.attempts).toBe(3);
    expect(failed.errorCode).toBe("upstream_unavailable");
    await producer.close();
  });

  /** A producer whose first enqueue onto `queue` fails, as when Redis drops the connection. */
  function producerFailingOnce(queuePrefix: string, queue: string, attempts: number, times = 1) {
    const producer = new JobProducer(redis, queuePrefix, { attempts, backoffMs: 10 });
    const enqueue = producer.enqueue.bind(producer);
    let failures = times;
    producer.enqueue = (async (name, payload, opts) => {
      if (name === queue && failures-- > 0) throw new Error("Connection is closed");
      return enqueue(name, payload, opts);
    }) as typeof producer.enqueue;
    return producer;
  }

  async function settledJob(producer: JobProducer, queue: "fetch" | "deliver", runId: string) {
    return waitFor(async () => {
      const job = await producer.queue(queue).getJob(`${runId}-${queue}`);
      const state = await job?.getState();
      return state === "completed" || state === "failed" ? { job: job!, state } : null;
    });
  }

  it("a job whose staging key is not its run's own fails at once, without the handler reading it", async () => {
    const producer = new JobProducer(redis, prefix, { attempts: 3, backoffMs: 1 });
    const victim = await newRun();
    const run = await newRun();
    let calls = 0;
    const stage = createStageWorker({ stage: "deliver", config, prisma: db.prisma, redis, producer, handler: async () => void calls++ });
    // Job data edited to point at another run's (another tenant's, in general) staged file.
    await producer.enqueue("deliver", { runId: run.id, tenantId: run.tenantId, encryptedKey: `tenants/${victim.tenantId}/runs/${victim.id}/encrypted/report.csv.pgp` });
    const { job, state } = await settledJob(producer, "deliver", run.id);
    await stage.close();
    await producer.close();
    expect(state).toBe("failed");
    expect(job.attemptsMade).toBe(1);
    expect(job.failedReason).toContain(`encryptedKey is not in run ${run.id}'s staging folder`);
    expect(calls).toBe(0);
  });

  it("a notification lost after success is enqueued by the retry, and the succeeded run keeps no error", async () => {
    const handoffPrefix = `${prefix}-notify-lost`;
    const producer = producerFailingOnce(handoffPrefix, "notify", 2);
    const run = await newRun({ webhookUrl: "https://hooks.example.test/runs", on: "always" });
    let calls = 0;
    const stage = createStageWorker({ stage: "deliver", config: { ...config, REDIS_PREFIX: handoffPrefix }, prisma: db.prisma, redis, producer, handler: async () => void calls++ });
    await producer.enqueue("deliver", { runId: run.id, tenantId: run.tenantId, encryptedKey: `tenants/${run.tenantId}/runs/${run.id}/encrypted/report.csv.pgp` });
    const { state } = await settledJob(producer, "deliver", run.id);
    await stage.close();
    expect(state).toBe("completed");
    expect(calls).toBe(1);
    const done = await db.prisma.run.findUniqueOrThrow({ where: { id: run.id } });
    expect(done).toMatchObject({ status: "SUCCEEDED", error: null, errorCode: null });
    const notify = await producer.queue("notify").getJob(`${run.id}-notify`);
    expect(notify?.data).toMatchObject({ runId: run.id, outcome: "succeeded" });
    await producer.queue("deliver").obliterate({ force: true });
    await producer.queue("notify").obliterate({ force: true });
    await producer.close();
  });

  it("a notification whose enqueue fails once on the deliver job's last attempt is still enqueued", async () => {
    const handoffPrefix = `${prefix}-notify-last-attempt`;
    const producer = producerFailingOnce(handoffPrefix, "notify", 1);
    const run = await newRun({ webhookUrl: "https://hooks.example.test/runs", on: "always" });
    const stage = createStageWorker({ stage: "deliver", config: { ...config, REDIS_PREFIX: handoffPrefix }, prisma: db.prisma, redis, producer, handler: async () => undefined });
    await producer.enqueue("deliver", { runId: run.id, tenantId: run.tenantId, encryptedKey: `tenants/${run.tenantId}/runs/${run.id}/encrypted/report.csv.pgp` });
    const { state } = await settledJob(producer, "deliver", run.id);
    await stage.close();
    expect(state).toBe("completed");
    expect((await db.prisma.run.findUniqueOrThrow({ where: { id: run.id } })).status).toBe("SUCCEEDED");
    expect((await producer.queue("notify").getJob(`${run.id}-notify`))?.data).toMatchObject({ outcome: "succeeded" });
    await producer.queue("deliver").obliterate({ force: true });
    await producer.queue("notify").obliterate({ force: true });
    await producer.close();
  });

  it("a notification whose enqueue fails through the deliver job's last attempt stays owed on the run, for the reconciler", async () => {
    const handoffPrefix = `${prefix}-notify-owed`;
    const producer = producerFailingOnce(handoffPrefix, "notify", 1, Number.POSITIVE_INFINITY);
    const run = await newRun({ webhookUrl: "https://hooks.example.test/runs", on: "always" });
    const quiet = await newRun();
    const stage = createStageWorker({ stage: "deliver", config: { ...config, REDIS_PREFIX: handoffPrefix }, prisma: db.prisma, redis, producer, handler: async () => undefined });
    for (const r of [run, quiet]) await producer.enqueue("deliver", { runId: r.id, tenantId: r.tenantId, encryptedKey: `tenants/${r.tenantId}/runs/${r.id}/encrypted/report.csv.pgp` });
    await settledJob(producer, "deliver", run.id);
    await settledJob(producer, "deliver", quiet.id);
    await stage.close();
    const owed = await db.prisma.run.findUniqueOrThrow({ where: { id: run.id } });
    expect(owed).toMatchObject({ status: "SUCCEEDED", error: null });
    expect(owed.notificationDueAt).toEqual(owed.finishedAt);
    expect(await producer.hasJob("notify", run.id)).toBe(false);
    // A task without notification settings owes nothing.
    expect(await db.prisma.run.findUniqueOrThrow({ where: { id: quiet.id } })).toMatchObject({ status: "SUCCEEDED", notificationDueAt: null });
    await producer.queue("deliver").obliterate({ force: true });
    await producer.close();
  });

  it("a late job for a finished run whose notification was handled queues no second one", async () => {
    const handoffPrefix = `${prefix}-notify-handled`;
    const producer = new JobProducer(redis, handoffPrefix, { attempts: 1, backoffMs: 10 });
    const run = await newRun({ webhookUrl: "https://hooks.example.test/runs", on: "always" });
    // Delivered, notified, and the notify job since removed from the queue (retention).
    await db.prisma.run.update({ where: { id: run.id }, data: { status: "SUCCEEDED", finishedAt: new Date(), notificationDueAt: null } });
    const owing = await newRun({ webhookUrl: "https://hooks.example.test/runs", on: "always" });
    await db.prisma.run.update({ where: { id: owing.id }, data: { status: "FAILED", finishedAt: new Date(), notificationDueAt: new Date() } });
    let calls = 0;
    const stage = createStageWorker({ stage: "deliver", config: { ...config, REDIS_PREFIX: handoffPrefix }, prisma: db.prisma, redis, producer, handler: async () => void calls++ });
    for (const r of [run, owing]) await producer.enqueue("deliver", { runId: r.id, tenantId: r.tenantId, encryptedKey: `tenants/${r.tenantId}/runs/${r.id}/encrypted/report.csv.pgp` });
    await settledJob(producer, "deliver", run.id);
    await settledJob(producer, "deliver", owing.id);
    await stage.close();
    expect(calls).toBe(0);
    expect(await producer.hasJob("notify", run.id)).toBe(false);
    // One still owed is queued (the retry of an attempt whose enqueue was lost).
    expect((await producer.queue("notify").getJob(`${owing.id}-notify`))?.data).toMatchObject({ outcome: "failed" });
    await producer.queue("deliver").obliterate({ force: true });
    await producer.queue("notify").obliterate({ force: true });
    await producer.close();
  });

  it("a failure notification lost after a permanent error is enqueued by the retry", async () => {
    const handoffPrefix = `${prefix}-failure-notify-lost`;
    const producer = producerFailingOnce(handoffPrefix, "notify", 2);
    const run = await newRun({ webhookUrl: "https://hooks.example.test/runs", on: "failure" });
    const stage = createStageWorker({
      stage: "fetch", config: { ...config, REDIS_PREFIX: handoffPrefix }, prisma: db.prisma, redis, producer,
      handler: async () => {
        throw new PermanentError("bad_credentials", "the platform refused the API key");
      },
    });
    await producer.enqueue("fetch", { runId: run.id, tenantId: run.tenantId });
    await settledJob(producer, "fetch", run.id);
    await stage.close();
    const failed = await db.prisma.run.findUniqueOrThrow({ where: { id: run.id } });
    expect(failed).toMatchObject({ status: "FAILED", errorCode: "bad_credentials" });
    const notify = await producer.queue("notify").getJob(`${run.id}-notify`);
    expect(notify?.data).toMatchObject({ runId: run.id, outcome: "failed" });
    await producer.queue("fetch").obliterate({ force: true });
    await producer.queue("notify").obliterate({ force: true });
    await producer.close();
  });

  it("a next stage lost after a stage finished is enqueued by the retry, without doing the stage again", async () => {
    const handoffPrefix = `${prefix}-handoff-lost`;
    const producer = producerFailingOnce(handoffPrefix, "transform", 2);
    const run = await newRun();
    let calls = 0;
    const stage = createStageWorker({
      stage: "fetch", config: { ...config, REDIS_PREFIX: handoffPrefix }, prisma: db.prisma, redis, producer,
      handler: async ({ setRunFields }) => {
        calls += 1;
        setRunFields({ records: 7 });
        return { rawKey: "tenants/x/raw/records.ndjson" };
      },
    });
    await producer.enqueue("fetch", { runId: run.id, tenantId: run.tenantId });
    const { state } = await settledJob(producer, "fetch", run.id);
    await stage.close();
    expect(state).toBe("completed");
    expect(calls).toBe(1);
    const transform = await producer.queue("transform").getJob(`${run.id}-transform`);
    expect(transform?.data).toMatchObject({ runId: run.id, rawKey: "tenants/x/raw/records.ndjson" });
    const updated = await db.prisma.run.findUniqueOrThrow({ where: { id: run.id } });
    expect(updated).toMatchObject({ status: "FETCHING", records: 7, staging: { rawKey: "tenants/x/raw/records.ndjson" } });
    await producer.queue("fetch").obliterate({ force: true });
    await producer.queue("transform").obliterate({ force: true });
    await producer.close();
  });
  describe("a queued run whose task or account changed before it began", () => {
    /** Runs the fetch stage over `runs` and returns them settled, with how often the handler ran per run. */
    async function fetchAll(runs: Array<{ id: string; tenantId: string }>, before?: (calls: Map<string, number>) => Promise<void>) {
      const queuePrefix = `${prefix}-refusal-${Math.random().toString(36).slice(2)}`;
      const producer = new JobProducer(redis, queuePrefix, { attempts: 2, backoffMs: 10 });
      const calls = new Map<string, number>();
      const stage = createStageWorker({
        stage: "fetch", config: { ...config, REDIS_PREFIX: queuePrefix }, prisma: db.prisma, redis, producer,
        handler: async ({ run }) => {
          calls.set(run.id, (calls.get(run.id) ?? 0) + 1);
          return { rawKey: `tenants/${run.tenantId}/runs/${run.id}/raw/records.ndjson` };
        },
      });
      await before?.(calls);
      for (const run of runs) await producer.enqueue("fetch", { runId: run.id, tenantId: run.tenantId });
      for (const run of runs) await settledJob(producer, "fetch", run.id);
      await stage.close();
      const transformed = await Promise.all(runs.map((run) => producer.hasJob("transform", run.id)));
      await producer.queue("fetch").obliterate({ force: true });
      await producer.queue("transform").obliterate({ force: true });
      await producer.close();
      const settled = await Promise.all(runs.map((run) => db.prisma.run.findUniqueOrThrow({ where: { id: run.id } })));
      return { settled, calls, transformed };
    }

    it("a scheduled run of a task disabled since it was queued ends SKIPPED without fetching", async () => {
      const run = await newRun({}, { trigger: "schedule", enabled: true });
      await db.prisma.task.update({ where: { id: run.taskId }, data: { enabled: false } });
      const { settled, calls, transformed } = await fetchAll([run]);
      expect(calls.get(run.id)).toBeUndefined();
      expect(transformed).toEqual([false]);
      expect(settled[0]).toMatchObject({ status: "SKIPPED", errorCode: "task_disabled", attempts: 0, fetchStartedAt: null });
      expect(settled[0]!.error).toContain("disabled before the run started");
      expect(settled[0]!.finishedAt).toBeInstanceOf(Date);
    });

    it("runs of a deleted task and of a disabled account end SKIPPED, whatever started them", async () => {
      const ofDeleted = await newRun({}, { trigger: "manual", enabled: true });
      await db.prisma.task.update({ where: { id: ofDeleted.taskId }, data: { enabled: false, deletedAt: new Date() } });
      const ofDisabledAccount = await newRun({}, { trigger: "retry", enabled: true });
      await db.prisma.tenant.update({ where: { id: ofDisabledAccount.tenantId }, data: { disabled: true } });
      const { settled, calls } = await fetchAll([ofDeleted, ofDisabledAccount]);
      expect(calls.size).toBe(0);
      expect(settled.map((r) => [r.status, r.errorCode])).toEqual([
        ["SKIPPED", "task_deleted"],
        ["SKIPPED", "tenant_disabled"],
      ]);
    });

    it("a run someone asked for on a disabled task goes ahead, and so does a scheduled one of an enabled task", async () => {
      const runNow = await newRun({}, { trigger: "manual", enabled: false });
      const retry = await newRun({}, { trigger: "retry", enabled: false });
      const scheduled = await newRun({}, { trigger: "schedule", enabled: true });
      const { settled, calls, transformed } = await fetchAll([runNow, retry, scheduled]);
      expect([runNow, retry, scheduled].map((r) => calls.get(r.id))).toEqual([1, 1, 1]);
      expect(transformed).toEqual([true, true, true]);
      expect(settled.map((r) => r.status)).toEqual(["FETCHING", "FETCHING", "FETCHING"]);
    });

    it("a skip whose write fails is decided again by the retry, never turned into a start", async () => {
      const run = await newRun({}, { trigger: "manual", enabled: true });
      await db.prisma.task.update({ where: { id: run.taskId }, data: { enabled: false, deletedAt: new Date() } });
      // The database drops out once, just as the skip is written.
      const blip = failStatements(db.prisma, /SET status = 'SKIPPED'/);
      try {
        const { settled, calls, transformed } = await fetchAll([run]);
        expect(calls.size).toBe(0);
        expect(transformed).toEqual([false]);
        expect(settled[0]).toMatchObject({ status: "SKIPPED", errorCode: "task_deleted", attempts: 0, fetchStartedAt: null });
      } finally {
        blip.restore();
      }
    });

    it("a run under way finishes when its task is disabled: a fetch retried after a failure goes on", async () => {
      const run = await newRun({}, { trigger: "schedule", enabled: true });
      // The first attempt began (and failed) before the task was disabled.
      await db.prisma.run.update({ where: { id: run.id }, data: { status: "FETCHING", attempts: 1, fetchStartedAt: new Date() } });
      await db.prisma.task.update({ where: { id: run.taskId }, data: { enabled: false } });
      const { settled, calls } = await fetchAll([run]);
      expect(calls.get(run.id)).toBe(1);
      expect(settled[0]).toMatchObject({ status: "FETCHING", attempts: 2 });
      expect(settled[0]!.fetchFinishedAt).toBeInstanceOf(Date);
    });
  });

  describe("a run under way whose task is deleted", () => {
    /**
     * Fails a run under way (its fetch began before the task was deleted) with a permanent error.
     * `whileHandling` runs once the handler has begun and before it throws; `beforeSettled` once
     * it has thrown, before the job is waited for.
     */
    async function failUnderWay(hooks: { whileHandling?: (run: { taskId: string; tenantId: string }) => Promise<void>; beforeSettled?: (run: { id: string }) => Promise<void> } = {}) {
      const queuePrefix = `${prefix}-deleted-${Math.random().toString(36).slice(2)}`;
      const producer = new JobProducer(redis, queuePrefix, { attempts: 2, backoffMs: 10 });
      const run = await newRun({ webhookUrl: "https://hooks.example.test/runs", on: "failure" }, { trigger: "schedule", enabled: true });
      await db.prisma.run.update({ where: { id: run.id }, data: { status: "FETCHING", attempts: 1, fetchStartedAt: new Date() } });
      const stage = createStageWorker({
        stage: "fetch", config: { ...config, REDIS_PREFIX: queuePrefix }, prisma: db.prisma, redis, producer,
        handler: async () => {
          await hooks.whileHandling?.(run);
          throw new PermanentError("bad_credentials", "the platform refused the API key (wrong secret)");
        },
      });
      await producer.enqueue("fetch", { runId: run.id, tenantId: run.tenantId });
      await hooks.beforeSettled?.(run);
      const { state } = await settledJob(producer, "fetch", run.id);
      await stage.close();
      const notified = await producer.hasJob("notify", run.id);
      await producer.queue("fetch").obliterate({ force: true });
      await producer.queue("notify").obliterate({ force: true });
      await producer.close();
      const after = await db.prisma.run.findUniqueOrThrow({ where: { id: run.id } });
      const openAlerts = await db.prisma.alert.findMany({ where: { taskId: run.taskId, resolvedAt: null } });
      return { state, after, notified, openAlerts };
    }

    it("fails with its reason and its notification, but raises no alert that nothing could ever resolve", async () => {
      const { state, after, notified, openAlerts } = await failUnderWay({
        whileHandling: async ({ taskId }) => void (await db.prisma.task.update({ where: { id: taskId }, data: { deletedAt: new Date(), enabled: false, nextRunAt: null } })),
      });
      expect(state).toBe("failed");
      expect(after).toMatchObject({ status: "FAILED", errorCode: "bad_credentials" });
      expect(after.error).toContain("wrong secret");
      expect(after.notificationDueAt).toEqual(after.finishedAt);
      expect(notified).toBe(true);
      expect(openAlerts).toEqual([]);
    });

    it("a failure meeting the delete in flight (task locked and soft-deleted, its alert resolved, not committed) waits for it and raises no alert", async () => {
      const pool = poolOf(db.prisma);
      const deleter = await pool.connect();
      try {
        const { after, openAlerts } = await failUnderWay({
          // As the gateway's delete does, in one transaction: the task's row FOR UPDATE, the soft
          // delete, its failure alert resolved (none open yet).
          whileHandling: async ({ taskId, tenantId }) => {
            await deleter.query("BEGIN");
            await deleter.query(`SELECT id FROM "Task" WHERE id = $1 FOR UPDATE`, [taskId]);
            await deleter.query(`UPDATE "Task" SET "deletedAt" = now(), enabled = false, "nextRunAt" = NULL WHERE id = $1`, [taskId]);
            await deleter.query(`UPDATE "Alert" SET "resolvedAt" = now() WHERE "tenantId" = $1 AND "dedupeKey" = $2 AND "resolvedAt" IS NULL`, [tenantId, `run.failed:${taskId}`]);
          },
          // The delete commits once the failure waits on a lock (or, were nothing to stop it, has failed the run).
          beforeSettled: async ({ id }) => {
            await waitFor(async () => {
              const { rows } = await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`);
              return rows[0]!.n > 0 || (await db.prisma.run.findUniqueOrThrow({ where: { id } })).status === "FAILED";
            });
            await deleter.query("COMMIT");
          },
        });
        expect(after).toMatchObject({ status: "FAILED", errorCode: "bad_credentials" });
        expect(openAlerts).toEqual([]);
      } finally {
        deleter.release();
      }
    });
  });

  describe("a stage finishing after the run was failed meanwhile (a stalled job the reconciler failed)", () => {
    async function failWhileRunning(stage: "fetch" | "deliver", meanwhile: "FAILED" | "SUCCEEDED" = "FAILED") {
      const queuePrefix = `${prefix}-late-${stage}`;
      const producer = new JobProducer(redis, queuePrefix, { attempts: 1, backoffMs: 10 });
      const run = await newRun({ webhookUrl: "https://hooks.example.test/runs", on: "always" });
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      let entered = false;
      const worker = createStageWorker({
        stage, config: { ...config, REDIS_PREFIX: queuePrefix }, prisma: db.prisma, redis, producer,
        handler: async ({ setRunFields }) => {
          entered = true;
          await held;
          if (stage === "deliver") {
            setRunFields({ fileName: "r.csv.pgp", destinationPath: "drop/r.csv.pgp", bytes: 10n });
            return;
          }
          return { rawKey: `tenants/${run.tenantId}/runs/${run.id}/raw/records.ndjson` };
        },
      });
      const encryptedKey = `tenants/${run.tenantId}/runs/${run.id}/encrypted/report.csv.pgp`;
      if (stage === "deliver") await db.prisma.run.update({ where: { id: run.id }, data: { status: "ENCRYPTING", encryptFinishedAt: new Date() } });
      await producer.enqueue(stage, stage === "deliver" ? { runId: run.id, tenantId: run.tenantId, encryptedKey } : { runId: run.id, tenantId: run.tenantId });
      await waitFor(async () => entered);
      await db.prisma.run.update({
        where: { id: run.id },
        data: meanwhile === "FAILED" ? { status: "FAILED", finishedAt: new Date(), error: `${stage}: the ${stage} job failed`, errorCode: "job_failed" } : { status: "SUCCEEDED", finishedAt: new Date(), deliveredAt: new Date() },
      });
      release();
      await settledJob(producer, stage === "deliver" ? "deliver" : "fetch", run.id);
      await worker.close();
      const after = await db.prisma.run.findUniqueOrThrow({ where: { id: run.id } });
      const handedOver = await producer.hasJob(stage === "deliver" ? "notify" : "transform", run.id);
      await producer.queue(stage).obliterate({ force: true });
      await producer.close();
      return { after, handedOver };
    }

    it("a delivery that lands after the run was failed leaves it FAILED, says so in its notes, and notifies no success", async () => {
      const { after, handedOver } = await failWhileRunning("deliver");
      expect(after).toMatchObject({ status: "FAILED", errorCode: "job_failed", deliveredAt: null });
      expect(after.notes).toEqual([expect.stringMatching(/delivered .*drop\/r\.csv\.pgp.* after the run had been marked failed/)]);
      expect(handedOver).toBe(false);
    });

    it("a delivery whose run another attempt completed first (its job taken over after its lock lapsed) writes no 'marked failed' note", async () => {
      const { after } = await failWhileRunning("deliver", "SUCCEEDED");
      expect(after).toMatchObject({ status: "SUCCEEDED", notes: [] });
    });

    it("a fetch that finishes after the run was failed hands nothing over", async () => {
      const { after, handedOver } = await failWhileRunning("fetch");
      expect(after).toMatchObject({ status: "FAILED", fetchFinishedAt: null });
      expect(handedOver).toBe(false);
    });
  });
});
