/**
 * A stage worker that stops while a job still runs when the stop's grace period ends hands the
 * job back: its handler's signal is aborted, the job goes back to its queue (no stall, no attempt
 * used), the run stays in its stage with nothing written, and another worker carries it on at
 * once. Cut off by the force-exit instead, the job kept its lock until it lapsed, and BullMQ
 * counted a stall each time (the fourth failed the run, blaming memory).
 */
import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { createStageWorker, HandedBack, jobIdFor, JobProducer, MAX_HAND_BACKS, type StageContext } from "../src/index.js";
import { useStageTestEnv } from "./support/stage-env.js";

describe("a stage worker handing its jobs back when it stops", () => {
  // One attempt: a hand-back that used one up, or failed the attempt, would fail the run.
  const env = useStageTestEnv("hand-back", { JOB_ATTEMPTS: "1", JOB_BACKOFF_MS: "10" });
  const { prefix, config } = env;

  const stalledEvents = async (queue: string) => {
    const entries = await env.redis.xrange(`${prefix}:${queue}:events`, "-", "+");
    return entries.filter(([, fields]) => fields.includes("stalled")).length;
  };

  it("a job still running when the grace period ends goes back to its queue, unwritten, and another worker completes it", async () => {
    const run = await env.newRun();
    const producer = new JobProducer(env.redis, prefix, { attempts: 1, backoffMs: 10 });
    const seen: { started: boolean; signal?: AbortSignal } = { started: false };
    // A source call that hangs until the signal cuts it, as the fetcher's does.
    const first = createStageWorker({
      stage: "fetch", config, prisma: env.db.prisma, redis: env.redis, producer,
      handler: (ctx) => {
        seen.started = true;
        seen.signal = ctx.signal;
        return new Promise((_, reject) => ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason as Error)));
      },
    });
    await producer.enqueue("fetch", { runId: run.id, tenantId: run.tenantId });
    await expect.poll(() => seen.started, { timeout: 10_000 }).toBe(true);

    const graceOver = new AbortController();
    let closed = false;
    const closing = first.close({ handBack: graceOver.signal }).then(() => void (closed = true));
    // Within the grace period the close waits for the job.
    await sleep(300);
    expect(closed).toBe(false);
    graceOver.abort();
    await closing;

    expect(seen.signal?.reason).toBeInstanceOf(HandedBack);
    const job = await producer.queue("fetch").getJob(jobIdFor("fetch", run.id));
    expect(await job?.getState()).toBe("waiting");
    expect(job?.attemptsMade).toBe(0);
    expect(await stalledEvents("fetch")).toBe(0);
    // Still in its stage, claimable by the next attempt; no failure, no error written.
    expect(await env.db.prisma.run.findUniqueOrThrow({ where: { id: run.id } })).toMatchObject({ status: "FETCHING", error: null, errorCode: null, finishedAt: null, attempts: 1 });

    const second = createStageWorker({
      stage: "fetch", config, prisma: env.db.prisma, redis: env.redis, producer,
      handler: async () => ({ rawKey: `tenants/${run.tenantId}/runs/${run.id}/raw/records.ndjson` }),
    });
    await expect.poll(async () => (await producer.queue("fetch").getJob(jobIdFor("fetch", run.id)))?.getState(), { timeout: 10_000 }).toBe("completed");
    await second.close();
    expect(await env.db.prisma.run.findUniqueOrThrow({ where: { id: run.id } })).toMatchObject({ status: "FETCHING", error: null, attempts: 2, fetchFinishedAt: expect.any(Date) });
    expect(await producer.queue("transform").getJob(jobIdFor("transform", run.id))).toBeDefined();
    expect(await stalledEvents("fetch")).toBe(0);
    await producer.close();
  });

  it("a delivery still finishing after the abort keeps its job and run lock until it stops; only then does another worker take it", async () => {
    const run = await env.newRun({ status: "ENCRYPTING" });
    const producer = new JobProducer(env.redis, prefix, { attempts: 3, backoffMs: 10 });
    const encryptedKey = `tenants/${run.tenantId}/runs/${run.id}/encrypted/report.csv.pgp`;
    const events: string[] = [];
    let inFlight = 0;
    let maxInFlight = 0;
    // The upload has read its whole file: cutting the body stops nothing, its last step takes 1.5 s.
    const upload = async (who: string, ms: number) => {
      maxInFlight = Math.max(maxInFlight, ++inFlight);
      events.push(`${who} start`);
      await sleep(ms);
      events.push(`${who} in place`);
      inFlight--;
    };
    const first = createStageWorker({
      stage: "deliver", config, prisma: env.db.prisma, redis: env.redis, producer, exclusive: true,
      handler: () => upload("A", 1_500),
    });
    await producer.enqueue("deliver", { runId: run.id, tenantId: run.tenantId, encryptedKey });
    await expect.poll(() => events.includes("A start"), { timeout: 10_000 }).toBe(true);
    const graceOver = new AbortController();
    graceOver.abort();
    const closing = first.close({ handBack: graceOver.signal });
    const second = createStageWorker({
      stage: "deliver", config, prisma: env.db.prisma, redis: env.redis, producer, exclusive: true,
      handler: async ({ setRunFields }) => {
        await upload("B", 300);
        setRunFields({ fileName: "r.csv.pgp", destinationPath: "drop/r.csv.pgp", bytes: 10n });
      },
    });
    await closing;
    await expect.poll(async () => (await producer.queue("deliver").getJob(jobIdFor("deliver", run.id)))?.getState(), { timeout: 15_000 }).toBe("completed");
    await second.close();
    expect(maxInFlight).toBe(1);
    expect(events).toEqual(["A start", "A in place", "B start", "B in place"]);
    expect(await env.db.prisma.run.findUniqueOrThrow({ where: { id: run.id } })).toMatchObject({ status: "SUCCEEDED", error: null });
    await producer.close();
  });

  it(`a job handed back ${MAX_HAND_BACKS} times fails at the next, with the reason, instead of going round for ever`, async () => {
    const run = await env.newRun();
    const producer = new JobProducer(env.redis, prefix, { attempts: 2, backoffMs: 10 });
    await producer.enqueue("fetch", { runId: run.id, tenantId: run.tenantId });
    const graceOver = new AbortController();
    graceOver.abort();
    for (let stop = 0; stop <= MAX_HAND_BACKS; stop++) {
      let started = false;
      const worker = createStageWorker({
        stage: "fetch", config, prisma: env.db.prisma, redis: env.redis, producer,
        handler: (ctx) => {
          started = true;
          return new Promise((_, reject) => ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason as Error)));
        },
      });
      await expect.poll(() => started, { timeout: 10_000 }).toBe(true);
      await worker.close({ handBack: graceOver.signal });
    }
    const job = await producer.queue("fetch").getJob(jobIdFor("fetch", run.id));
    expect(await job?.getState()).toBe("failed");
    expect(job?.failedReason).toMatch(new RegExp(`handed back ${MAX_HAND_BACKS} times.*SHUTDOWN_GRACE_MS`));
    await producer.close();
  }, 60_000);

  it("a job that finishes within the grace period finishes normally", async () => {
    const run = await env.newRun();
    const producer = new JobProducer(env.redis, prefix, { attempts: 1, backoffMs: 10 });
    let started = false;
    const worker = createStageWorker({
      stage: "fetch", config, prisma: env.db.prisma, redis: env.redis, producer,
      handler: async () => {
        started = true;
        await sleep(500);
        return { rawKey: `tenants/${run.tenantId}/runs/${run.id}/raw/records.ndjson` };
      },
    });
    await producer.enqueue("fetch", { runId: run.id, tenantId: run.tenantId });
    await expect.poll(() => started, { timeout: 10_000 }).toBe(true);
    await worker.close({ handBack: new AbortController().signal });
    expect(await (await producer.queue("fetch").getJob(jobIdFor("fetch", run.id)))?.getState()).toBe("completed");
    expect(await env.db.prisma.run.findUniqueOrThrow({ where: { id: run.id } })).toMatchObject({ fetchFinishedAt: expect.any(Date), error: null });
    await producer.close();
  });

  it("an exclusive stage's handler sees lockLost aborted; the run's lock is let go for the next attempt", async () => {
    const run = await env.newRun({ status: "ENCRYPTING" });
    const producer = new JobProducer(env.redis, prefix, { attempts: 1, backoffMs: 10 });
    const encryptedKey = `tenants/${run.tenantId}/runs/${run.id}/encrypted/report.csv.pgp`;
    const seen: { started: boolean; lockLost?: AbortSignal } = { started: false };
    // As the deliverer does: its body destroyed on lockLost, the adapter fails with the reason.
    const first = createStageWorker({
      stage: "deliver", config, prisma: env.db.prisma, redis: env.redis, producer, exclusive: true,
      handler: ({ lockLost }: StageContext<"deliver">) => {
        seen.started = true;
        seen.lockLost = lockLost;
        return new Promise((_, reject) => lockLost?.addEventListener("abort", () => reject(lockLost.reason as Error)));
      },
    });
    await producer.enqueue("deliver", { runId: run.id, tenantId: run.tenantId, encryptedKey });
    await expect.poll(() => seen.started, { timeout: 10_000 }).toBe(true);
    const graceOver = new AbortController();
    graceOver.abort();
    await first.close({ handBack: graceOver.signal });
    expect(seen.lockLost?.reason).toBeInstanceOf(HandedBack);

    const second = createStageWorker({
      stage: "deliver", config, prisma: env.db.prisma, redis: env.redis, producer, exclusive: true,
      handler: async ({ setRunFields }) => setRunFields({ fileName: "r.csv.pgp", destinationPath: "drop/r.csv.pgp", bytes: 10n }),
    });
    await expect.poll(async () => (await producer.queue("deliver").getJob(jobIdFor("deliver", run.id)))?.getState(), { timeout: 10_000 }).toBe("completed");
    await second.close();
    expect(await env.db.prisma.run.findUniqueOrThrow({ where: { id: run.id } })).toMatchObject({ status: "SUCCEEDED", error: null });
    expect(await stalledEvents("deliver")).toBe(0);
    await producer.close();
  });
});
