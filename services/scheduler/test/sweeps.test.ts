import { randomUUID } from "node:crypto";
import { testConfig } from "@transporter/config";
import { createTestDatabase, type TestDatabase } from "@transporter/db/testing";
import type { StagingStore } from "@transporter/storage";
import { createLogger } from "@transporter/telemetry";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkFileNameClashes, FILE_NAME_CLASH_ALERT_KIND } from "../src/file-name-clashes.js";
import { periodicSweeps } from "../src/sweeps.js";

describe("the scheduler's periodic retention sweeps", () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => db?.drop());

  it("go on, at the next sweep, after runs that keep failing at the front of the order", async () => {
    const now = new Date("2026-11-23T06:00:00Z");
    const tenant = await db.prisma.tenant.create({ data: { accountId: `acc-${randomUUID().slice(0, 8)}`, name: "Sweep Co", timezone: "UTC" } });
    const destination = await db.prisma.destination.create({ data: { tenantId: tenant.id, name: "Managed", kind: "managed", config: {} } });
    const task = await db.prisma.task.create({ data: { tenantId: tenant.id, description: "Daily", reportId: "messaging", format: "csv", frequency: "daily", time: "00:00", destinationId: destination.id } });
    const ids: string[] = Array.from({ length: 30 }, () => randomUUID()).sort();
    await db.prisma.run.createMany({
      data: ids.map((id, i) => ({
        id, tenantId: tenant.id, taskId: task.id, trigger: "manual" as const, status: "SUCCEEDED" as const,
        windowStart: new Date(Date.UTC(2026, 0, 1, i)), windowEnd: new Date(Date.UTC(2026, 0, 1, i + 1)), scheduledFor: now,
        destinationPath: `tenants/${tenant.id}/runs/${id}/report.csv.pgp`, fileExpiresAt: new Date(now.getTime() - 3_600_000),
      })),
    });
    // The 25 first runs' files cannot be deleted (the sweep gives up after 20 failures in a row).
    const failing = new Set(ids.slice(0, 25));
    const fails = async (key: string) => {
      if (failing.has(/\/runs\/([^/]+)\//.exec(key)?.[1] ?? "")) throw new Error("access denied");
    };
    const store: StagingStore = {
      put: () => Promise.reject(new Error("not used")),
      get: () => Promise.reject(new Error("not used")),
      stat: async () => null,
      delete: fails,
      deletePrefix: async (prefix) => (await fails(prefix), 0),
    };
    const [, managedSweep] = periodicSweeps({ prisma: db.prisma, staging: store, managed: store, config: testConfig({}), logger: createLogger({ name: "sweeps-test", level: "silent" }), now: () => now });
    await managedSweep!();
    expect(await db.prisma.run.count({ where: { fileDeletedAt: { not: null } } })).toBe(0);
    await managedSweep!();
    expect((await db.prisma.run.findMany({ where: { fileDeletedAt: { not: null } }, select: { id: true }, orderBy: { id: "asc" } })).map((r) => r.id)).toEqual(ids.slice(25));
  });

  it("keep an alert open while two live tasks (saved before the API refused it) overwrite each other's files, and resolve it once they no longer do", async () => {
    const tenant = await db.prisma.tenant.create({ data: { accountId: `acc-${randomUUID().slice(0, 8)}`, name: "Clash Co", timezone: "UTC" } });
    const sftp = await db.prisma.destination.create({ data: { tenantId: tenant.id, name: "SFTP", kind: "sftp", config: { host: "sftp.example.com", username: "u" } } });
    const managed = await db.prisma.destination.create({ data: { tenantId: tenant.id, name: "Managed", kind: "managed", config: {} } });
    const task = (description: string, destinationId: string, options: object = {}) =>
      db.prisma.task.create({ data: { tenantId: tenant.id, description, reportId: "messaging-conversations", format: "csv", frequency: "daily", time: "00:00", destinationId, options } });
    const first = await task("Daily export", sftp.id);
    const second = await task("Daily Export", sftp.id);
    // Managed storage keeps every run's files apart; a {runId} pattern names every file alone.
    await task("Daily export", managed.id);
    await task("Daily export", sftp.id, { fileNamePattern: "daily_{runId}" });
    const openAlerts = () => db.prisma.alert.findMany({ where: { tenantId: tenant.id, kind: FILE_NAME_CLASH_ALERT_KIND, resolvedAt: null } });

    expect(await checkFileNameClashes({ prisma: db.prisma })).toEqual({ clashes: 1 });
    const [alert] = await openAlerts();
    expect(alert).toMatchObject({ taskId: first.id, destinationId: sftp.id, severity: "error", occurrences: 1 });
    expect(alert!.message).toContain(first.id);
    expect(alert!.message).toContain(second.id);
    // Checked again: still one alert, not raised again.
    await checkFileNameClashes({ prisma: db.prisma });
    expect((await openAlerts()).map((a) => a.occurrences)).toEqual([1]);

    await db.prisma.task.update({ where: { id: second.id }, data: { options: { fileNamePattern: "{task}_{report}_{startDate}" } } });
    expect(await checkFileNameClashes({ prisma: db.prisma })).toEqual({ clashes: 0 });
    expect(await openAlerts()).toEqual([]);
  });
});
