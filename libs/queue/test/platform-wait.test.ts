/**
 * A stage that fails because the platform asked to be left alone for a while (a 429 with a long
 * Retry-After) tries again after that wait, without using up an attempt, while the run is young.
 */
import { describe, expect, it } from "vitest";
import { createStageWorker, jobIdFor, JobProducer } from "../src/index.js";
import { useStageTestEnv } from "./support/stage-env.js";

const rateLimited = (retryAfterMs: number) => Object.assign(new Error("The platform kept rate-limiting the API (HTTP 429)"), { code: "rate_limited", permanent: false, details: { retryAfterMs } });

describe("a stage the platform asked to wait", () => {
  // One attempt: BullMQ's own retry would fail the run at once.
  const env = useStageTestEnv("platform-wait", { JOB_ATTEMPTS: "1", JOB_BACKOFF_MS: "10" });
  const { prefix, config } = env;
  const newRun = (createdAt = new Date()) => env.newRun({ createdAt });

  async function fetchOnce(run: { id: string; tenantId: string }, failures: number, retryAfterMs = 1_500) {
    const producer = new JobProducer(env.redis, prefix, { attempts: 1, backoffMs: 10 });
    const calls: number[] = [];
    const worker = createStageWorker({
      stage: "fetch", config, prisma: env.db.prisma, redis: env.redis, producer,
      handler: async () => {
        calls.push(Date.now());
        if (calls.length <= failures) throw rateLimited(retryAfterMs);
        return { rawKey: `tenants/${run.tenantId}/runs/${run.id}/raw/records.ndjson` };
      },
    });
    await producer.enqueue("fetch", { runId: run.id, tenantId: run.tenantId });
    const stateOf = async () => (await producer.queue("fetch").getJob(jobIdFor("fetch", run.id)))?.getState();
    await expect.poll(async () => ["completed", "failed"].includes((await stateOf()) ?? ""), { timeout: 20_000, interval: 100 }).toBe(true);
    const state = await stateOf();
    await worker.close();
    await producer.close();
    return { calls, state, after: await env.db.prisma.run.findUniqueOrThrow({ where: { id: run.id } }) };
  }

  it("waits as asked, then goes on: the run is not failed, no attempt is used up", async () => {
    const run = await newRun();
    const { calls, state, after } = await fetchOnce(run, 1);
    expect(state).toBe("completed");
    expect(calls).toHaveLength(2);
    expect(calls[1]! - calls[0]!).toBeGreaterThanOrEqual(1_400);
    expect(after.status).not.toBe("FAILED");
    expect(after.fetchFinishedAt).toBeInstanceOf(Date);
  });

  it("a wait no longer than the job's own retries would make takes the ordinary path", async () => {
    const run = await newRun();
    const { calls, after } = await fetchOnce(run, 1, 5);
    expect(calls).toHaveLength(1);
    expect(after).toMatchObject({ status: "FAILED", errorCode: "rate_limited" });
  });

  it("a run older than the deferral limit fails as before", async () => {
    const run = await newRun(new Date(Date.now() - 7 * 3600_000));
    const { calls, after } = await fetchOnce(run, 1);
    expect(calls).toHaveLength(1);
    expect(after).toMatchObject({ status: "FAILED", errorCode: "rate_limited" });
  });
});
