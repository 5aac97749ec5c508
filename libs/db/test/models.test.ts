import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { raiseAlert, resolveAlert } from "../src/alerts.js";
import { createTestDatabase, type TestDatabase } from "../src/testing.js";
import { tenantScoped, TenantScopeError } from "../src/tenant-scope.js";

// Exercises every model through the generated client against a migrated database, so the
// schema and the migrations cannot drift apart unseen.
describe("data model", () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => db.drop());

  async function seedTenant(accountId: string) {
    const { prisma } = db;
    const tenant = await prisma.tenant.create({ data: { accountId, name: `Brand ${accountId}`, timezone: "Europe/Paris" } });
    const apiKey = await prisma.apiKey.create({
      data: { tenantId: tenant.id, name: "admin", prefix: `p${accountId}`, secretHash: "0".repeat(64), role: "admin" },
    });
    const key = await prisma.encryptionKey.create({
      data: { tenantId: tenant.id, publicKey: "-----BEGIN PGP PUBLIC KEY BLOCK-----", fingerprint: `FP${accountId}`, algorithm: "rsa", bits: 2048, origin: "generated", active: true },
    });
    const source = await prisma.source.create({
      data: { tenantId: tenant.id, name: "LP", kind: "liveperson", accountId, sealedCredentials: "v1.k.n.c", permissions: ["messaging-interactions"] },
    });
    const destination = await prisma.destination.create({
      data: { tenantId: tenant.id, name: "Managed", kind: "managed", config: {} },
    });
    const task = await prisma.task.create({
      data: {
        tenantId: tenant.id, description: "Daily messaging", reportId: "messaging-conversations", format: "csv",
        frequency: "daily", time: "00:00", delayMinutes: 360, sourceId: source.id, destinationId: destination.id,
        enabled: true, nextRunAt: new Date("2026-11-24T05:00:00Z"),
      },
    });
    return { tenant, apiKey, key, source, destination, task };
  }

  it("creates and reads every model with its relations", async () => {
    const { prisma } = db;
    const { tenant, task } = await seedTenant("1001");
    const run = await prisma.run.create({
      data: {
        tenantId: tenant.id, taskId: task.id, windowStart: new Date("2026-11-22T23:00:00Z"),
        windowEnd: new Date("2026-11-23T23:00:00Z"), scheduledFor: new Date("2026-11-24T05:00:00Z"),
        trigger: "schedule", bytes: 5_000_000_000n, staging: { raw: "tenants/x/raw.ndjson" },
      },
    });
    await prisma.auditEvent.create({ data: { tenantId: tenant.id, actorRole: "admin", action: "task.create", targetType: "task", targetId: task.id, after: { description: "Daily messaging" } } });
    await raiseAlert(prisma, { tenantId: tenant.id, kind: "run.failed", severity: "error", title: "Run failed", message: "first", dedupeKey: `run.failed:${task.id}`, taskId: task.id, runId: run.id });

    const loaded = await prisma.tenant.findUniqueOrThrow({
      where: { id: tenant.id },
      include: { apiKeys: true, encryptionKeys: true, sources: true, destinations: true, tasks: { include: { runs: true } }, alerts: true, auditEvents: true },
    });
    expect(loaded.apiKeys).toHaveLength(1);
    expect(loaded.encryptionKeys[0]!.active).toBe(true);
    expect(loaded.sources[0]!.permissions).toEqual(["messaging-interactions"]);
    expect(loaded.destinations[0]!.kind).toBe("managed");
    expect(loaded.tasks[0]!.runs[0]!.bytes).toBe(5_000_000_000n);
    expect(loaded.tasks[0]!.runs[0]!.status).toBe("PENDING");
    expect(loaded.alerts[0]!.occurrences).toBe(1);
    expect(loaded.auditEvents[0]!.action).toBe("task.create");
  });

  it("a scheduled window is inserted once per task; manual runs may repeat it", async () => {
    const { prisma } = db;
    const { tenant, task } = await seedTenant("1002");
    const window = { tenantId: tenant.id, taskId: task.id, windowStart: new Date("2026-11-01T00:00:00Z"), windowEnd: new Date("2026-11-02T00:00:00Z"), scheduledFor: new Date() };
    await prisma.run.create({ data: { ...window, trigger: "schedule" } });
    await expect(prisma.run.create({ data: { ...window, trigger: "schedule" } })).rejects.toMatchObject({ code: "P2002" });
    await prisma.run.create({ data: { ...window, trigger: "manual" } });
    await prisma.run.create({ data: { ...window, trigger: "manual" } });
    expect(await prisma.run.count({ where: { taskId: task.id } })).toBe(3);
  });

  it("keeps one active encryption key per tenant", async () => {
    const { prisma } = db;
    const { tenant } = await seedTenant("1003");
    await expect(
      prisma.encryptionKey.create({ data: { tenantId: tenant.id, publicKey: "k", fingerprint: "OTHER", algorithm: "rsa", origin: "imported", active: true } }),
    ).rejects.toMatchObject({ code: "P2002" });
  });

  it("repeats of an open alert bump occurrences; after resolve a new alert opens", async () => {
    const { prisma } = db;
    const { tenant } = await seedTenant("1004");
    const alert = { tenantId: tenant.id, kind: "setup.encryption", severity: "warning" as const, title: "Set up encryption", message: "m", dedupeKey: "setup.encryption" };
    await raiseAlert(prisma, alert);
    await raiseAlert(prisma, alert);
    expect((await prisma.alert.findMany({ where: { tenantId: tenant.id } })).map((a) => a.occurrences)).toEqual([2]);
    expect(await resolveAlert(prisma, tenant.id, "setup.encryption")).toBe(1);
    await raiseAlert(prisma, alert);
    expect(await prisma.alert.count({ where: { tenantId: tenant.id } })).toBe(2);
  });

  it("a tenant-scoped client cannot see or change another tenant's rows", async () => {
    const a = await seedTenant("2001");
    const b = await seedTenant("2002");
    const scopedA = tenantScoped(db.prisma, a.tenant.id);
    expect(await scopedA.task.findUnique({ where: { id: b.task.id } })).toBeNull();
    expect(await scopedA.task.findUnique({ where: { id: a.task.id } })).not.toBeNull();
    expect((await scopedA.source.findMany()).map((s) => s.id)).toEqual([a.source.id]);
    expect(await scopedA.tenant.findFirst({ where: { id: b.tenant.id } })).toBeNull();
    const { count } = await scopedA.task.updateMany({ where: { id: b.task.id }, data: { description: "hijacked" } });
    expect(count).toBe(0);
    await expect(scopedA.task.update({ where: { id: b.task.id }, data: { description: "hijacked" } })).rejects.toThrow();
    await expect(scopedA.task.delete({ where: { id: b.task.id } })).rejects.toThrow();
    const created = await scopedA.destination.create({ data: { name: "x", kind: "managed", config: {}, tenantId: b.tenant.id } as never });
    expect(created.tenantId).toBe(a.tenant.id);
    await expect(scopedA.task.update({ where: { id: a.task.id }, data: { tenantId: b.tenant.id } })).rejects.toThrow(TenantScopeError);
    expect((await db.prisma.task.findUniqueOrThrow({ where: { id: b.task.id } })).description).toBe("Daily messaging");
  });
});
