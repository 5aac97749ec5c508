import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkKeyExpiry, keyExpiringAlertKey, refreshKeyExpiryAlerts } from "../src/key-expiry.js";
import { refreshSetupAlerts } from "../src/setup-alerts.js";
import { createTestDatabase, type TestDatabase } from "../src/testing.js";

const DAY_MS = 86_400_000;
const NOW = new Date("2026-11-24T12:00:00Z");
const inDays = (days: number) => new Date(NOW.getTime() + days * DAY_MS);

let db: TestDatabase;
let accounts = 0;

beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => db.drop());

/** A tenant with a time zone and a source, so the encryption key is the only setup reminder left. */
async function tenantWithKey(expiresAt: Date | null) {
  accounts += 1;
  const accountId = `${process.pid}${accounts}`;
  const tenant = await db.prisma.tenant.create({ data: { accountId, name: `Brand ${accountId}`, timezone: "Europe/Paris" } });
  await db.prisma.source.create({
    data: { tenantId: tenant.id, name: "LP", kind: "liveperson", accountId, sealedCredentials: "v1.k.n.c", permissions: ["messaging-interactions"] },
  });
  const key = await db.prisma.encryptionKey.create({
    data: { tenantId: tenant.id, publicKey: "k", fingerprint: `FP${accountId}`, algorithm: "rsa", bits: 2048, origin: "imported", active: true, expiresAt },
  });
  return { tenant, key };
}

const openAlerts = (tenantId: string) => db.prisma.alert.findMany({ where: { tenantId, resolvedAt: null }, orderBy: { dedupeKey: "asc" } });

describe("refreshSetupAlerts", () => {
  it("counts an active key that has expired as no usable key, saying so and how to fix it", async () => {
    const { tenant, key } = await tenantWithKey(inDays(-1));
    await refreshSetupAlerts(db.prisma, tenant.id, NOW);
    const [alert] = await openAlerts(tenant.id);
    expect(alert).toMatchObject({ dedupeKey: "setup.encryption", kind: "setup.encryption" });
    expect(alert!.message).toContain(key.fingerprint);
    expect(alert!.message).toMatch(/expired/);
    expect(alert!.message).toMatch(/gpg --quick-set-expire/);
    expect(alert!.message).toMatch(/POST \/v1\/encryption-keys/);

    // Once the key is extended, the reminder goes.
    await db.prisma.encryptionKey.update({ where: { id: key.id }, data: { expiresAt: inDays(365) } });
    await refreshSetupAlerts(db.prisma, tenant.id, NOW);
    expect(await openAlerts(tenant.id)).toEqual([]);
  });

  it("leaves a key that has not expired yet alone", async () => {
    const { tenant } = await tenantWithKey(inDays(1));
    await refreshSetupAlerts(db.prisma, tenant.id, NOW);
    expect(await openAlerts(tenant.id)).toEqual([]);
  });

  it("refreshes at once after a source is deleted and another added: the last one sees the new source, and no 'Connect a source' is left open", async () => {
    const { tenant } = await tenantWithKey(null);
    // Inserting the reminder takes 1.5 s, so that the refresh after the delete is still raising
    // it when the source is added and refreshed for.
    await db.prisma.$executeRawUnsafe(`CREATE FUNCTION test_slow_alert() RETURNS trigger AS $$ BEGIN PERFORM pg_sleep(1.5); RETURN NEW; END $$ LANGUAGE plpgsql`);
    await db.prisma.$executeRawUnsafe(`CREATE TRIGGER test_slow_alert BEFORE INSERT ON "Alert" FOR EACH ROW WHEN (NEW."dedupeKey" = 'setup.source') EXECUTE FUNCTION test_slow_alert()`);
    try {
      await db.prisma.source.updateMany({ where: { tenantId: tenant.id }, data: { deletedAt: NOW } });
      const afterDelete = refreshSetupAlerts(db.prisma, tenant.id, NOW);
      await new Promise((resolve) => setTimeout(resolve, 500));
      await db.prisma.source.create({
        data: { tenantId: tenant.id, name: "LP 2", kind: "liveperson", accountId: tenant.accountId, sealedCredentials: "v1.k.n.c", permissions: ["messaging-interactions"] },
      });
      await Promise.all([afterDelete, refreshSetupAlerts(db.prisma, tenant.id, NOW)]);
    } finally {
      await db.prisma.$executeRawUnsafe(`DROP TRIGGER test_slow_alert ON "Alert"`);
      await db.prisma.$executeRawUnsafe(`DROP FUNCTION test_slow_alert()`);
    }
    expect(await db.prisma.source.count({ where: { tenantId: tenant.id, deletedAt: null } })).toBe(1);
    expect(await openAlerts(tenant.id)).toEqual([]);
  });
});

describe("checkKeyExpiry", () => {
  it("raises one alert per active key expiring within 14 days, and repeats do not add or bump it", async () => {
    const soon = await tenantWithKey(inDays(10));
    const later = await tenantWithKey(inDays(20));
    const never = await tenantWithKey(null);
    await checkKeyExpiry({ prisma: db.prisma, now: NOW });
    await checkKeyExpiry({ prisma: db.prisma, now: new Date(NOW.getTime() + 3_600_000) });

    const [alert, ...others] = await openAlerts(soon.tenant.id);
    expect(others).toEqual([]);
    expect(alert).toMatchObject({ kind: "encryption_key.expiring", dedupeKey: keyExpiringAlertKey(soon.key.id), severity: "warning", occurrences: 1 });
    expect(alert!.message).toContain(soon.key.fingerprint);
    expect(alert!.message).toContain(inDays(10).toISOString().slice(0, 10));
    expect(alert!.message).toMatch(/gpg --quick-set-expire/);
    expect(await openAlerts(later.tenant.id)).toEqual([]);
    expect(await openAlerts(never.tenant.id)).toEqual([]);
  });

  it("resolves the alert once the key is extended, and when another key replaces it", async () => {
    const extended = await tenantWithKey(inDays(5));
    const replaced = await tenantWithKey(inDays(5));
    await checkKeyExpiry({ prisma: db.prisma, now: NOW });
    expect(await openAlerts(extended.tenant.id)).toHaveLength(1);
    expect(await openAlerts(replaced.tenant.id)).toHaveLength(1);

    await db.prisma.encryptionKey.update({ where: { id: extended.key.id }, data: { expiresAt: inDays(730) } });
    await db.prisma.encryptionKey.update({ where: { id: replaced.key.id }, data: { active: false } });
    await db.prisma.encryptionKey.create({
      data: { tenantId: replaced.tenant.id, publicKey: "k2", fingerprint: `FP2${replaced.key.fingerprint}`, algorithm: "rsa", bits: 2048, origin: "imported", active: true },
    });
    await checkKeyExpiry({ prisma: db.prisma, now: NOW });
    expect(await openAlerts(extended.tenant.id)).toEqual([]);
    expect(await openAlerts(replaced.tenant.id)).toEqual([]);
  });

  it("raises the setup alert once the active key has expired", async () => {
    const { tenant, key } = await tenantWithKey(inDays(3));
    await checkKeyExpiry({ prisma: db.prisma, now: NOW });
    expect((await openAlerts(tenant.id)).map((a) => a.dedupeKey)).toEqual([keyExpiringAlertKey(key.id)]);

    await checkKeyExpiry({ prisma: db.prisma, now: inDays(4) });
    const alerts = await openAlerts(tenant.id);
    expect(alerts.map((a) => a.dedupeKey)).toEqual([keyExpiringAlertKey(key.id), "setup.encryption"]);
    expect(alerts[0]!.message).toMatch(/expired/);
    expect(alerts[1]!.message).toMatch(/expired/);
  });

  it("refreshKeyExpiryAlerts does the same for one tenant (what the API calls after a key change)", async () => {
    const { tenant, key } = await tenantWithKey(inDays(2));
    await refreshKeyExpiryAlerts(db.prisma, tenant.id, NOW);
    expect((await openAlerts(tenant.id)).map((a) => a.dedupeKey)).toEqual([keyExpiringAlertKey(key.id)]);
    await db.prisma.encryptionKey.update({ where: { id: key.id }, data: { deletedAt: NOW, active: false } });
    await refreshKeyExpiryAlerts(db.prisma, tenant.id, NOW);
    expect(await openAlerts(tenant.id)).toEqual([]);
  });
});
