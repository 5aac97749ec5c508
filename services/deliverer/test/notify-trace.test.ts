import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testConfig } from "@transporter/config";
import { createTestDatabase, type TestDatabase } from "@transporter/db/testing";
import { createRedis, JobProducer, testRedisPrefix, type Redis } from "@transporter/queue";
import { createLogger } from "@transporter/telemetry";
import { installTestTelemetry } from "@transporter/telemetry/testing";
import { start } from "../src/index.js";

/** A notify job continues the trace its payload carries, whoever queued it (a stage, the reconciler). */
describe("the notify job's trace", () => {
  const telemetry = installTestTelemetry();
  let db: TestDatabase;
  let redis: Redis;
  let producer: JobProducer;
  let service: { stop(): Promise<void> };
  beforeAll(async () => {
    db = await createTestDatabase();
    const prefix = testRedisPrefix("notify-trace");
    const config = testConfig({ DATABASE_URL: db.url, REDIS_PREFIX: prefix });
    redis = createRedis(config.REDIS_URL);
    producer = new JobProducer(redis, prefix, { attempts: 1, backoffMs: 10 });
    service = await start(config, { prisma: db.prisma, redis, producer, logger: createLogger({ name: "t", level: "silent" }) });
  });
  afterAll(async () => {
    await service?.stop();
    await producer?.close();
    await redis?.quit();
    await db?.drop();
    await telemetry.shutdown();
  });

  it("a notify job queued outside any span runs in the run's trace", async () => {
    const { prisma } = db;
    const tenant = await prisma.tenant.create({ data: { accountId: `acc-${randomUUID().slice(0, 8)}`, name: "N", timezone: "UTC" } });
    const destination = await prisma.destination.create({ data: { tenantId: tenant.id, name: "M", kind: "managed", config: {} } });
    const task = await prisma.task.create({ data: { tenantId: tenant.id, description: "D", reportId: "messaging-conversations", format: "csv", frequency: "daily", time: "00:00", destinationId: destination.id } });
    const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
    const traceparent = `00-${traceId}-00f067aa0ba902b7-01`;
    const run = await prisma.run.create({
      data: { tenantId: tenant.id, taskId: task.id, windowStart: new Date(0), windowEnd: new Date(86_400_000), scheduledFor: new Date(0), trigger: "schedule", status: "SUCCEEDED", finishedAt: new Date(), notificationDueAt: new Date(), traceparent },
    });
    await producer.enqueue("notify", { runId: run.id, tenantId: tenant.id, trace: { traceparent }, outcome: "succeeded" });
    const until = Date.now() + 15_000;
    const span = () => telemetry.spans.getFinishedSpans().find((s) => s.name === "notify run" && s.attributes["transporter.run_id"] === run.id);
    while (!span() && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(span()?.spanContext().traceId).toBe(traceId);
    expect(span()?.parentSpanContext?.spanId).toBe("00f067aa0ba902b7");
  });
});
