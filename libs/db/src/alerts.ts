import type { Db } from "./client.js";
import type { AlertSeverity } from "./generated/client.js";

export interface AlertInput {
  tenantId: string;
  /** e.g. setup.timezone, setup.encryption, setup.source, run.failed, destination.verification */
  kind: string;
  severity: AlertSeverity;
  title: string;
  message: string;
  /** One open alert per key: a repeat bumps `occurrences` instead of adding a row. */
  dedupeKey: string;
  taskId?: string | null;
  runId?: string | null;
  destinationId?: string | null;
}

/**
 * Raise (or repeat) an alert. The open-alert partial unique index makes this safe under
 * concurrency: ON CONFLICT turns a second raise into an update of the open one.
 *
 * An alert about a task is raised only while the task lives: a deleted task's alerts went with it
 * (its delete resolves them) and nothing could resolve one raised afterwards, though its last runs
 * still finish, fail and notify. The task is read under a share lock, which the delete's FOR
 * UPDATE excludes: a delete under way is waited for and then seen, or waits for this transaction
 * and then resolves what it raised.
 */
export async function raiseAlert(prisma: Pick<Db, "$executeRaw">, alert: AlertInput): Promise<void> {
  const taskId = alert.taskId ?? null;
  await prisma.$executeRaw`
    INSERT INTO "Alert" (id, "tenantId", kind, severity, title, message, "dedupeKey", "taskId", "runId", "destinationId")
    SELECT gen_random_uuid(), ${alert.tenantId}::uuid, ${alert.kind}, ${alert.severity}::"AlertSeverity", ${alert.title},
           ${alert.message}, ${alert.dedupeKey}, ${taskId}::uuid, ${alert.runId ?? null}::uuid,
           ${alert.destinationId ?? null}::uuid
    WHERE ${taskId}::uuid IS NULL OR EXISTS (SELECT 1 FROM "Task" WHERE id = ${taskId}::uuid AND "deletedAt" IS NULL FOR SHARE)
    ON CONFLICT ("tenantId", "dedupeKey") WHERE "resolvedAt" IS NULL
    DO UPDATE SET occurrences = "Alert".occurrences + 1, "lastSeenAt" = now(), message = EXCLUDED.message,
                  title = EXCLUDED.title, "runId" = COALESCE(EXCLUDED."runId", "Alert"."runId")`;
}

/** Close the open alert with this key, if any (the condition is over). */
export async function resolveAlert(prisma: Pick<Db, "alert">, tenantId: string, dedupeKey: string): Promise<number> {
  const { count } = await resolveAlertQuery(prisma, tenantId, dedupeKey);
  return count;
}

/** The query behind `resolveAlert`, not yet run: for a `$transaction([...])` with other writes. */
export function resolveAlertQuery(prisma: Pick<Db, "alert">, tenantId: string, dedupeKey: string) {
  return prisma.alert.updateMany({ where: { tenantId, dedupeKey, resolvedAt: null }, data: { resolvedAt: new Date() } });
}
