/**
 * Stopping the one-process system (`npm start`, the demo, these tests): once the stop begins, no
 * run is scheduled and no job begins, and the job under way finishes. Stopped one service at a
 * time (the scheduler last), the scheduler kept creating runs and the workers not yet stopping
 * took their jobs while the others were waited for.
 */
import type http from "node:http";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Queue } from "bullmq";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testConfig } from "@transporter/config";
import { createTestDatabase, type TestDatabase } from "@transporter/db/testing";
import { createOperatorKey } from "@transporter/gateway";
import { createRedis, jobIdFor, testRedisPrefix, type Redis } from "@transporter/queue";
import { startSimulator, type Simulator } from "@transporter/simulator";
import { startSystem, type System } from "../../scripts/system.js";
import { apiClient, pastWindows, provisionTenant, requestRun } from "./support/api.js";
import { deleteRedisPrefix } from "./support/infrastructure.js";
import { waitFor } from "./support/wait.js";

describe("stopping the one-process system", () => {
  const prefix = testRedisPrefix("system-stop");
  let db: TestDatabase;
  let simulator: Simulator;
  let dir: string;
  let redis: Redis;
  let system: System | undefined;
  let clock = new Date("2026-11-20T12:00:30Z");

  beforeAll(async () => {
    db = await createTestDatabase();
    simulator = await startSimulator({ port: 0, host: "127.0.0.1" });
    dir = await mkdtemp(join(tmpdir(), "system-stop-"));
    redis = createRedis(testConfig().REDIS_URL);
  });

  afterAll(async () => {
    await system?.stop();
    await simulator?.stop();
    await deleteRedisPrefix(redis, prefix).finally(() => redis.quit());
    await db?.drop();
    await rm(dir, { recursive: true, force: true });
  });

  it("schedules no run and starts no job once stopping has begun; the job under way finishes", async () => {
    const config = testConfig({
      DATABASE_URL: db.url, REDIS_PREFIX: prefix, LOG_LEVEL: "silent", STAGING_DIR: join(dir, "staging"), MANAGED_DIR: join(dir, "managed"), GATEWAY_PORT: "0",
      PLATFORM_CSDS_URL: simulator.url, PLATFORM_DATA_ACCESS_URL: simulator.url, SCHEDULER_TICK_MS: "100", RECONCILER_INTERVAL_MS: "60000",
    });
    const running = await startSystem(config, { now: () => clock });
    system = running;
    const call = apiClient(running.gateway.url);
    const operator = await createOperatorKey(running.prisma, "system-stop operator");
    const tenant = await provisionTenant(call, operator.key, simulator);
    const task = (enabled: boolean) =>
      call<{ id: string }>(tenant.adminKey, "POST", "/v1/tasks", {
        description: enabled ? "Hourly" : "On request", reportId: "messaging-conversations", reportVersion: "latest", format: "csv",
        schedule: { frequency: "interval", everyMinutes: 60, delayMinutes: 0 }, sourceId: tenant.sourceId, destinationId: tenant.managedDestinationId, enabled,
      });
    const onRequest = await task(false);
    // Due at 13:00 on the test's clock, which moves there once the stop has begun.
    const hourly = await task(true);

    // A fetch under way when the stop begins: its source call answers after 3 s.
    simulator.control.setFaults(tenant.accountId, { slowMs: 3_000 });
    let sourceCalled = false;
    const onSourceCall = (req: http.IncomingMessage) => void (sourceCalled ||= Boolean(req.url?.includes(`/${tenant.accountId}/`) && !req.url.includes("baseURI")));
    simulator.app.server.on("request", onSourceCall);
    const [window] = pastWindows(1, 60, 120, clock.getTime());
    const underWay = await requestRun(call, tenant.adminKey, onRequest.id, window!);
    await waitFor("the run's source call to begin", () => sourceCalled, { timeoutMs: 20_000 });
    simulator.app.server.off("request", onSourceCall);
    // A run whose job is queued just after the stop begins.
    const queued = await running.prisma.run.create({
      data: { tenantId: tenant.tenantId, taskId: onRequest.id, windowStart: new Date(window!.start), windowEnd: new Date(window!.end), scheduledFor: clock, trigger: "manual", status: "PENDING" },
    });
    expect(await running.prisma.run.count({ where: { taskId: hourly.id } })).toBe(0);

    const stopping = running.stop();
    await running.queues.enqueue("fetch", { runId: queued.id, tenantId: tenant.tenantId });
    clock = new Date("2026-11-20T13:00:30Z");
    // Several scheduler ticks' worth, well within the fetch's 3 s.
    await sleep(1_000);
    await stopping;
    system = undefined;

    expect(await db.prisma.run.count({ where: { taskId: hourly.id } })).toBe(0);
    expect(await db.prisma.run.findUniqueOrThrow({ where: { id: queued.id } })).toMatchObject({ status: "PENDING", attempts: 0 });
    const fetchQueue = new Queue("fetch", { connection: redis, prefix });
    try {
      expect(await (await fetchQueue.getJob(jobIdFor("fetch", queued.id)))?.getState()).toBe("waiting");
    } finally {
      await fetchQueue.close();
    }
    // The job under way was waited for, and finished.
    expect(await db.prisma.run.findUniqueOrThrow({ where: { id: underWay.id } })).toMatchObject({ fetchFinishedAt: expect.any(Date), error: null });
  }, 120_000);
});
