import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, it } from "vitest";
import { testConfig } from "@transporter/config";
import { createTestDatabase, type TestDatabase } from "@transporter/db/testing";
import { createRedis, testRedisPrefix } from "@transporter/queue";
import { managedFileKey } from "@transporter/storage";
import { startSystem, type System } from "../../scripts/system.js";
import { deleteRedisPrefix } from "./support/infrastructure.js";

/**
 * With every service in one process (`npm start`, the demo), the scheduler runs the same periodic
 * sweeps as the scheduler service alone: staging with managed leftovers, and the key-expiry check.
 */
describe("the periodic sweeps of the one-process system", () => {
  const DAY = 86_400_000;
  const clock = new Date("2026-11-20T12:00:00Z");
  const prefix = testRedisPrefix("system-sweeps");
  let db: TestDatabase;
  let dir: string;
  let system: System;
  let tenantId: string;
  let leftoverKey: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    dir = await mkdtemp(join(tmpdir(), "system-sweeps-"));
    const config = testConfig({
      DATABASE_URL: db.url, REDIS_PREFIX: prefix, LOG_LEVEL: "silent", STAGING_DIR: join(dir, "staging"), MANAGED_DIR: join(dir, "managed"), GATEWAY_PORT: "0",
      SCHEDULER_TICK_MS: "200", RECONCILER_INTERVAL_MS: "60000", RETENTION_SWEEP_INTERVAL_MS: "300",
    });
    system = await startSystem(config, { now: () => clock });
    const { prisma } = system;
    tenantId = (await prisma.tenant.create({ data: { accountId: `acc-${randomUUID().slice(0, 8)}`, name: "Sweeps", timezone: "UTC" } })).id;
    await prisma.encryptionKey.create({ data: { tenantId, publicKey: "x", fingerprint: "ABCDEF0123456789ABCDEF0123456789ABCDEF01", algorithm: "rsa", origin: "imported", active: true, expiresAt: new Date(clock.getTime() + 3 * DAY) } });
    const destination = await prisma.destination.create({ data: { tenantId, name: "Managed", kind: "managed", config: {} } });
    const task = await prisma.task.create({ data: { tenantId, description: "D", reportId: "messaging-conversations", format: "csv", frequency: "daily", time: "00:00", destinationId: destination.id, enabled: false } });
    // A managed delivery cut off mid-write two days ago: its run FAILED, a partial file left behind.
    const runId = randomUUID();
    leftoverKey = managedFileKey({ tenantId, runId }, "report.csv.pgp.partial-1");
    await system.managed.put(leftoverKey, Readable.from([Buffer.from("partial")]));
    const twoDaysAgo = new Date(clock.getTime() - 2 * DAY);
    await prisma.run.create({ data: { id: runId, tenantId, taskId: task.id, windowStart: twoDaysAgo, windowEnd: clock, scheduledFor: twoDaysAgo, trigger: "schedule", status: "FAILED", finishedAt: twoDaysAgo, deliverStartedAt: twoDaysAgo } });
  });
  afterAll(async () => {
    await system?.stop();
    const redis = createRedis(testConfig().REDIS_URL);
    await deleteRedisPrefix(redis, prefix);
    await redis.quit();
    await db?.drop();
    await rm(dir, { recursive: true, force: true });
  });

  async function eventually(check: () => Promise<boolean>, what: string): Promise<void> {
    const until = Date.now() + 15_000;
    while (!(await check())) {
      if (Date.now() > until) throw new Error(`timed out waiting until ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  it("sweeps the finished run's staging, with what its cut-off managed delivery left", async () => {
    await eventually(async () => (await system.prisma.run.findFirstOrThrow({ where: { tenantId } })).stagingDeletedAt !== null, "staging is swept");
    await eventually(async () => (await system.managed.stat(leftoverKey)) === null, "the managed leftover is removed");
  });

  it("raises the alert for an encryption key about to expire", async () => {
    await eventually(async () => (await system.prisma.alert.count({ where: { tenantId, kind: "encryption_key.expiring" } })) === 1, "the key-expiry alert is raised");
  });
});
