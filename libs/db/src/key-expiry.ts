import type { Db } from "./client.js";
import { raiseAlert, resolveAlert } from "./alerts.js";
import { refreshSetupAlerts } from "./setup-alerts.js";

/** A tenant is warned this long before its active encryption key expires. */
export const KEY_EXPIRY_WARNING_DAYS = 14;
export const KEY_EXPIRING_ALERT_KIND = "encryption_key.expiring";

const DAY_MS = 86_400_000;

/** One open expiry alert per key: a repeat updates it instead of adding another. */
export function keyExpiringAlertKey(keyId: string): string {
  return `${KEY_EXPIRING_ALERT_KIND}:${keyId}`;
}

function expiringMessage(fingerprint: string, expiresAt: Date, now: Date): string {
  const when = expiresAt.getTime() <= now.getTime() ? `expired on ${expiresAt.toISOString()}` : `expires on ${expiresAt.toISOString()}`;
  return (
    `Your active encryption key ${fingerprint} ${when}; files cannot be encrypted to an expired key. ` +
    `Extend it (gpg --quick-set-expire ${fingerprint} 2y '*'), export it (gpg --armor --export ${fingerprint}) and upload it again ` +
    "(POST /v1/encryption-keys updates the key on the account), or activate another key."
  );
}

/**
 * The tenant's key-expiry alert, recomputed from its active key: raised while that key expires
 * within `warningDays` (one alert per key), resolved once the key is extended, replaced or removed.
 * When the key has expired the setup reminder is refreshed too (an expired key counts as none).
 * Returns what it found of the active key.
 */
export async function refreshKeyExpiryAlerts(
  prisma: Db,
  tenantId: string,
  now: Date = new Date(),
  warningDays = KEY_EXPIRY_WARNING_DAYS,
): Promise<"expiring" | "expired" | null> {
  const key = await prisma.encryptionKey.findFirst({
    where: { tenantId, active: true, deletedAt: null },
    select: { id: true, fingerprint: true, expiresAt: true },
  });
  const expiring = key?.expiresAt && key.expiresAt.getTime() <= now.getTime() + warningDays * DAY_MS ? { ...key, expiresAt: key.expiresAt } : null;
  const open = await prisma.alert.findMany({ where: { tenantId, kind: KEY_EXPIRING_ALERT_KIND, resolvedAt: null }, select: { dedupeKey: true, message: true } });
  const keep = expiring ? keyExpiringAlertKey(expiring.id) : null;
  for (const alert of open) {
    if (alert.dedupeKey !== keep) await resolveAlert(prisma, tenantId, alert.dedupeKey);
  }
  if (!expiring) return null;

  const message = expiringMessage(expiring.fingerprint, expiring.expiresAt, now);
  // Raised again only when the message changes (the key expired, or a new expiry): a periodic
  // check must not bump `occurrences` every hour.
  if (!open.some((alert) => alert.dedupeKey === keep && alert.message === message)) {
    await raiseAlert(prisma, {
      tenantId,
      kind: KEY_EXPIRING_ALERT_KIND,
      severity: "warning",
      title: "Your encryption key expires soon",
      message,
      dedupeKey: keyExpiringAlertKey(expiring.id),
    });
  }
  if (expiring.expiresAt.getTime() > now.getTime()) return "expiring";
  await refreshSetupAlerts(prisma, tenantId, now);
  return "expired";
}

export interface KeyExpiryCheckResult {
  /** Tenants whose active key expires within the warning period. */
  expiring: number;
  /** Tenants whose active key has expired. */
  expired: number;
  failed: Array<{ tenantId: string; error: string }>;
}

/** The subset of a pino-style logger the check uses. */
export interface KeyExpiryLogger {
  info(details: object, message: string): void;
  warn(details: object, message: string): void;
}

/**
 * The periodic key-expiry check (run by the scheduler with the retention sweeps): refreshes the
 * expiry alerts of every tenant whose active key expires within `warningDays` or that still has an
 * expiry alert open, so alerts are raised as keys approach expiry and resolved once they are
 * extended or replaced. Idempotent; safe to run on several replicas at once (alerts dedupe).
 */
export async function checkKeyExpiry(options: {
  prisma: Db;
  now: Date;
  warningDays?: number;
  logger?: KeyExpiryLogger;
}): Promise<KeyExpiryCheckResult> {
  const { prisma, now, logger } = options;
  const warningDays = options.warningDays ?? KEY_EXPIRY_WARNING_DAYS;
  const [keys, alerts] = await Promise.all([
    prisma.encryptionKey.findMany({
      where: { active: true, deletedAt: null, expiresAt: { lte: new Date(now.getTime() + warningDays * DAY_MS) } },
      select: { tenantId: true },
    }),
    prisma.alert.findMany({ where: { kind: KEY_EXPIRING_ALERT_KIND, resolvedAt: null }, select: { tenantId: true } }),
  ]);
  const tenants = new Set([...keys, ...alerts].map((row) => row.tenantId));
  const result: KeyExpiryCheckResult = { expiring: 0, expired: 0, failed: [] };
  for (const tenantId of tenants) {
    try {
      const state = await refreshKeyExpiryAlerts(prisma, tenantId, now, warningDays);
      if (state) result[state] += 1;
    } catch (error) {
      result.failed.push({ tenantId, error: error instanceof Error ? error.message : String(error) });
    }
  }
  for (const item of result.failed) logger?.warn(item, "key expiry alerts could not be refreshed; retrying at the next check");
  logger?.info({ expiring: result.expiring, expired: result.expired, failed: result.failed.length }, "encryption key expiry check done");
  return result;
}
