/** The stage harness's metrics count what was committed: a finish write that fails is not a stage done. */
import { failStatements } from "@transporter/db/testing";
import { installTestTelemetry } from "@transporter/telemetry/testing";
import { afterAll, describe, expect, it } from "vitest";
import { createRedis, createStageWorker, JobProducer } from "../src/index.js";
import { useStageTestEnv } from "./support/stage-env.js";

const telemetry = installTestTelemetry();
afterAll(async () => telemetry.shutdown());

describe("stage metrics", () => {
  const env = useStageTestEnv("stage-metrics", { JOB_ATTEMPTS: "3", JOB_BACKOFF_MS: "50" });

  it("a stage whose finish write fails once and is retried records one duration and its records once", async () => {
    const run = await env.newRun();
    // The database drops the first write of the fetch stage's finish (a blip); the retry's goes through.
    const blip = failStatements(env.db.prisma, /"fetchFinishedAt" =/);
    let handled = 0;
    const connection = createRedis(env.config.REDIS_URL);
    const worker = createStageWorker({
      stage: "fetch", config: env.config, prisma: env.db.prisma, redis: connection,
      handler: async (ctx) => {
        handled += 1;
        ctx.setRunFields({ records: 7 });
        return { rawKey: "raw/x.ndjson" };
      },
    });
    const producer = new JobProducer(env.redis, env.prefix, { attempts: 3, backoffMs: 50 });
    try {
      await producer.enqueue("fetch", { runId: run.id, tenantId: run.tenantId });
      await expect.poll(async () => (await env.db.prisma.run.findUniqueOrThrow({ where: { id: run.id } })).fetchFinishedAt, { timeout: 15_000 }).not.toBeNull();
    } finally {
      await worker.close();
      await producer.close();
      connection.disconnect();
      blip.restore();
    }
    expect({ failedWrites: blip.failed(), handled }).toEqual({ failedWrites: 1, handled: 2 });
    const metrics = await telemetry.collectMetrics();
    const durations = (metrics.get("transporter.stage.duration") ?? []).filter((p) => p.attributes.stage === "fetch");
    expect(durations.map((p) => (p.value as { count: number }).count)).toEqual([1]);
    expect((metrics.get("transporter.records.processed") ?? []).map((p) => p.value)).toEqual([7]);
  });
});
