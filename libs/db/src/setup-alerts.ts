import type { Db } from "./client.js";
import { raiseAlert, resolveAlert } from "./alerts.js";

type Transaction = Parameters<Parameters<Db["$transaction"]>[0]>[0];

/**
 * The setup reminders a tenant sees until its account can deliver anything: a time zone, an
 * active encryption key that has not expired, and a source. Recomputed from the data after any
 * change that could affect them (and by the scheduler's key-expiry check, since time alone expires
 * a key), so the alerts can never disagree with the account's state.
 */
export async function refreshSetupAlerts(prisma: Db, tenantId: string, now: Date = new Date()): Promise<void> {
  // Read and written under the tenant's row lock (FOR NO KEY UPDATE, as the gateway's
  // withTenantLocked takes it), in one transaction: refreshes after changes made at once queue up,
  // and the last sees the final state. Unlocked, one that read "no source" could raise the
  // reminder after another that saw the new source had resolved it.
  await prisma.$transaction(async (tx) => {
    await tx.$queryRaw`SELECT id FROM "Tenant" WHERE id = ${tenantId}::uuid FOR NO KEY UPDATE`;
    await refreshLocked(tx, tenantId, now);
  });
}

async function refreshLocked(prisma: Transaction, tenantId: string, now: Date): Promise<void> {
  const tenant = await prisma.tenant.findUnique({
    where: { id: tenantId },
    select: {
      timezone: true,
      encryptionKeys: { where: { active: true, deletedAt: null }, select: { fingerprint: true, expiresAt: true }, take: 1 },
      _count: { select: { sources: { where: { deletedAt: null } } } },
    },
  });
  if (!tenant) return;
  const [activeKey] = tenant.encryptionKeys;
  const expiredKey = activeKey?.expiresAt && activeKey.expiresAt.getTime() <= now.getTime() ? { ...activeKey, expiresAt: activeKey.expiresAt } : null;
  const reminders = [
    {
      dedupeKey: "setup.timezone", missing: tenant.timezone === null,
      title: "Choose your time zone", message: "Schedules and report times use your account's time zone. Set it with PATCH /v1/account { timezone }.",
    },
    {
      dedupeKey: "setup.encryption", missing: !activeKey || expiredKey !== null,
      title: "Set up encryption",
      message: expiredKey
        ? `Your active encryption key ${expiredKey.fingerprint} expired on ${expiredKey.expiresAt.toISOString()}, so no file can be encrypted. ` +
          `Extend it (gpg --quick-set-expire ${expiredKey.fingerprint} 2y '*'), export it (gpg --armor --export ${expiredKey.fingerprint}) and upload it again ` +
          "(POST /v1/encryption-keys updates the key on the account), or activate another key."
        : "Every delivered file is encrypted. Generate a key pair or upload your public key (POST /v1/encryption-keys); tasks cannot be enabled until a key is active.",
    },
    {
      dedupeKey: "setup.source", missing: tenant._count.sources === 0,
      title: "Connect a source", message: "Add the platform API key your reports read from (POST /v1/sources).",
    },
  ];
  for (const r of reminders) {
    if (r.missing) {
      const open = await prisma.alert.findFirst({ where: { tenantId, dedupeKey: r.dedupeKey, resolvedAt: null }, select: { message: true } });
      // Raised again only when the reason changes (no key → the key expired), never on every refresh.
      if (open?.message !== r.message) await raiseAlert(prisma, { tenantId, kind: r.dedupeKey, severity: "warning", title: r.title, message: r.message, dedupeKey: r.dedupeKey });
    } else {
      await resolveAlert(prisma, tenantId, r.dedupeKey);
    }
  }
}
