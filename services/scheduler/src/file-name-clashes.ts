import { raiseAlert, resolveAlert, type Db } from "@transporter/db";
import { fileNameShape } from "@transporter/storage";
import type { Logger } from "@transporter/telemetry";

export const FILE_NAME_CLASH_ALERT_KIND = "task.file_name_clash";

/** One open alert per group of clashing tasks, keyed by the oldest of them. */
function clashAlertKey(firstTaskId: string): string {
  return `${FILE_NAME_CLASH_ALERT_KIND}:${firstTaskId}`;
}

interface LiveTask {
  id: string;
  tenantId: string;
  description: string;
  reportId: string;
  format: string;
  options: unknown;
  destinationId: string;
}

/**
 * Live tasks that deliver files under the same names to one SFTP, S3 or GCS destination (one
 * folder for every task's files there): each overwrites the other's files. The API refuses such a
 * task since the rule was made, but pairs saved before it remain, so the scheduler looks for them
 * with its periodic sweeps and keeps an alert open per group (resolved once the names differ, or
 * a task is moved or deleted). Idempotent; safe on several replicas (alerts dedupe).
 */
export async function checkFileNameClashes(options: { prisma: Db; logger?: Pick<Logger, "info" | "warn"> }): Promise<{ clashes: number }> {
  const { prisma, logger } = options;
  const tasks: LiveTask[] = await prisma.task.findMany({
    where: { deletedAt: null, destination: { deletedAt: null, kind: { in: ["sftp", "s3", "gcs"] } } },
    select: { id: true, tenantId: true, description: true, reportId: true, format: true, options: true, destinationId: true },
    orderBy: [{ createdAt: "asc" }, { id: "asc" }],
  });
  const groups = new Map<string, LiveTask[]>();
  for (const task of tasks) {
    const shape = fileNameShape(task);
    if (shape === null) continue;
    const key = `${task.destinationId}\n${shape}`;
    const group = groups.get(key);
    if (group) group.push(task);
    else groups.set(key, [task]);
  }
  const open = new Set<string>();
  for (const group of groups.values()) {
    if (group.length < 2) continue;
    const [first] = group as [LiveTask, ...LiveTask[]];
    const dedupeKey = clashAlertKey(first.id);
    open.add(`${first.tenantId}\n${dedupeKey}`);
    const named = group.map((task) => `${task.id} ("${task.description}")`).join(", ");
    const message =
      `Tasks ${named} deliver files under the same names to the same destination, so one task's files overwrite the other's. ` +
      "Give one of them a different description, a file name pattern (options.fileNamePattern) with {report} or {task} that tells them apart, or another destination or folder.";
    const current = await prisma.alert.findFirst({ where: { tenantId: first.tenantId, dedupeKey, resolvedAt: null }, select: { message: true } });
    // Raised again only when the group changes: a periodic check must not bump `occurrences` each time.
    if (current?.message === message) continue;
    await raiseAlert(prisma, { tenantId: first.tenantId, kind: FILE_NAME_CLASH_ALERT_KIND, severity: "error", title: "Two tasks overwrite each other's files", message, dedupeKey, taskId: first.id, destinationId: first.destinationId });
    logger?.warn({ tenantId: first.tenantId, destinationId: first.destinationId, taskIds: group.map((task) => task.id) }, "tasks deliver files under the same names to one destination");
  }
  const stale = await prisma.alert.findMany({ where: { kind: FILE_NAME_CLASH_ALERT_KIND, resolvedAt: null }, select: { tenantId: true, dedupeKey: true } });
  for (const alert of stale) {
    if (!open.has(`${alert.tenantId}\n${alert.dedupeKey}`)) await resolveAlert(prisma, alert.tenantId, alert.dedupeKey);
  }
  return { clashes: open.size };
}
