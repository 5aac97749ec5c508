import type { Db } from "./client.js";
import { raiseAlert, resolveAlert } from "./alerts.js";

/**
 * The setup reminders a tenant sees until its account can deliver anything: a time zone, an
 * active encryption key and a source. Recomputed from the data after any change that could
 * affect them, so the alerts can never disagree with the account's state.
 */
export async function refreshSetupAlerts(prisma: Db, tenantId: string): Promise<void> {
  const tenant = await prisma.tenant.findUnique({
    where: { id: tenantId },
    select: {
      timezone: true,
      _count: { select: { sources: { where: { deletedAt: null } }, encryptionKeys: { where: { active: true, deletedAt: null } } } },
    },
  });
  if (!tenant) return;
  const reminders = [
    {
      dedupeKey: "setup.timezone", missing: tenant.timezone === null,
      title: "Choose your time zone", message: "Schedules and report times use your account's time zone. Set it with PATCH /v1/account { timezone }.",
    },
    {
      dedupeKey: "setup.encryption", missing: tenant._count.encryptionKeys === 0,
      title: "Set up encryption", message: "Every delivered file is encrypted. Generate a key pair or upload your public key (POST /v1/encryption-keys); tasks cannot be enabled until a key is active.",
    },
    {
      dedupeKey: "setup.source", missing: tenant._count.sources === 0,
      title: "Connect a source", message: "Add the platform API key your reports read from (POST /v1/sources).",
    },
  ];
  for (const r of reminders) {
    if (r.missing) {
      const open = await prisma.alert.findFirst({ where: { tenantId, dedupeKey: r.dedupeKey, resolvedAt: null }, select: { id: true } });
      if (!open) await raiseAlert(prisma, { tenantId, kind: r.dedupeKey, severity: "warning", title: r.title, message: r.message, dedupeKey: r.dedupeKey });
    } else {
      await resolveAlert(prisma, tenantId, r.dedupeKey);
    }
  }
}
