import { findReport, getReport, validateTaskReport } from "@transporter/reports";
import { computeNextRunAt, validateSchedule, type Schedule } from "@transporter/schedule";
import { fileNamePatternOf, fileNameShape, validateFileNamePattern } from "@transporter/storage";
import type { TenantDb } from "@transporter/db";
import type { FieldProblem } from "./problem.js";
import { Problem } from "./problem.js";
import type { Transaction } from "./row-locks.js";

export interface TaskDraft {
  description: string;
  reportId: string;
  reportVersion: "latest" | number;
  format: string;
  schedule: Schedule;
  sourceId?: string | null;
  destinationId: string;
  params: Record<string, unknown>;
  options?: Record<string, unknown>;
  enabled: boolean;
}

/**
 * Everything a task must satisfy, checked against the catalogue, the schedule rules and the
 * tenant's own sources, destinations and keys. Shape problems are 400 with the field named;
 * a task that is well-formed but cannot run yet (no key, no zone, source lacking permission)
 * is 409 with the reason.
 */
/**
 * What a change touches, for the rules that only apply to what changes: a task saved under
 * older rules (a shorter delay) or whose key has since expired can still be renamed or pointed
 * elsewhere. A new task touches everything.
 */
export interface TaskChange {
  /** The task becomes enabled (created enabled, or enabled now). */
  enabling: boolean;
  /** Its schedule or report is set or changed. */
  scheduleOrReport: boolean;
  /** The task as it was, when an existing one changes: what its files are called may stay as it is. */
  existing?: { id: string; draft: TaskDraft };
}

export async function checkTask(
  db: TenantDb | Transaction,
  draft: TaskDraft,
  now: Date = new Date(),
  change: TaskChange = { enabling: draft.enabled, scheduleOrReport: true },
): Promise<{ timezone: string | null }> {
  const tenant = await db.tenant.findFirstOrThrow({ select: { timezone: true } });
  const problems: FieldProblem[] = [];
  for (const message of validateSchedule(draft.schedule, tenant.timezone ?? undefined)) {
    problems.push({ path: `schedule.${fieldOfScheduleProblem(message)}`, message });
  }
  // The pattern's own rules were checked with the body; here, whether it suits the schedule.
  const pattern = fileNamePatternOf(draft.options);
  if (pattern) for (const message of validateFileNamePattern(pattern, draft.schedule.frequency)) problems.push({ path: "options.fileNamePattern", message });
  for (const p of validateTaskReport({ reportId: draft.reportId, reportVersion: draft.reportVersion, format: draft.format, params: draft.params })) {
    problems.push({ path: p.path, message: p.message });
  }
  const [source, destination] = await Promise.all([
    draft.sourceId ? db.source.findUnique({ where: { id: draft.sourceId, deletedAt: null } }) : Promise.resolve(null),
    db.destination.findUnique({ where: { id: draft.destinationId, deletedAt: null } }),
  ]);
  if (draft.sourceId && !source) problems.push({ path: "sourceId", message: "no source with this id in your account" });
  if (!destination) problems.push({ path: "destinationId", message: "no destination with this id in your account" });
  if (!draft.sourceId) problems.push({ path: "sourceId", message: "a task needs a source to read from" });
  const minDelay = findReport(draft.reportId)?.minDelayMinutes ?? 0;
  if (change.scheduleOrReport && (draft.schedule.delayMinutes ?? 0) < minDelay) {
    problems.push({
      path: "schedule.delayMinutes",
      message: `report ${draft.reportId} needs a delay of at least ${minDelay} minutes: the platform publishes its data for a window up to ${minDelay / 60} hours after the window ends, and a run before that would miss it`,
    });
  }
  if (problems.length > 0) {
    throw new Problem(400, "Invalid request", problems.map((p) => `${p.path}: ${p.message}`).join("; "), { errors: problems });
  }

  const { definition } = getReport(draft.reportId, draft.reportVersion);
  const permissions = source?.permissions as string[] | null | undefined;
  if (source && Array.isArray(permissions) && !permissions.includes(definition.source)) {
    throw new Problem(409, "Conflict", `source "${source.name}" may not use the ${definition.source} API that report ${definition.id} needs; grant that permission to the API key and verify the source again`);
  }
  if (destination && destination.kind !== "managed") await assertNoFileNameClash(db, draft, change.existing);
  if (draft.enabled) {
    if (!tenant.timezone) throw new Problem(409, "Conflict", "choose your account's time zone (PATCH /v1/account) before enabling a task");
    const activeKey = await db.encryptionKey.findFirst({ where: { active: true, deletedAt: null }, select: { fingerprint: true, expiresAt: true } });
    if (!activeKey) throw new Problem(409, "Conflict", "set up encryption first: a task cannot be enabled without an active encryption key");
    if (change.enabling) assertKeyUnexpired(activeKey, now);
  }
  return { timezone: tenant.timezone };
}

/**
 * An expired key cannot be encrypted to: every run would fetch and build its report, then fail
 * at encryption. Refused up front, with the way out.
 */
export function assertKeyUnexpired(key: { fingerprint: string; expiresAt: Date | null }, now: Date): void {
  if (key.expiresAt && key.expiresAt <= now) {
    throw new Problem(
      409,
      "Conflict",
      `the active encryption key (fingerprint ${key.fingerprint}) expired on ${key.expiresAt.toISOString()}: upload it again with a new expiry (same fingerprint) or activate another key`,
    );
  }
}

/**
 * SFTP, S3 and GCS destinations put every task's files in one folder (managed storage keeps each
 * run's apart): a task whose files can take the names of another live task's there would silently
 * overwrite them. Checked when the task's names or destination change (a clash saved before this
 * rule does not block unrelated edits); under the tenant's row lock, so two creates cannot both pass.
 */
async function assertNoFileNameClash(db: TenantDb | Transaction, draft: TaskDraft, existing: TaskChange["existing"]): Promise<void> {
  const shape = fileNameShape(draft);
  if (shape === null) return;
  if (existing && existing.draft.destinationId === draft.destinationId && fileNameShape(existing.draft) === shape) return;
  const others = await db.task.findMany({
    where: { destinationId: draft.destinationId, deletedAt: null, ...(existing ? { id: { not: existing.id } } : {}) },
    select: { id: true, description: true, reportId: true, format: true, options: true },
    orderBy: { createdAt: "asc" },
  });
  const other = others.find((task) => fileNameShape(task) === shape);
  if (!other) return;
  throw new Problem(
    409,
    "Conflict",
    `task ${other.id} ("${other.description}") can deliver files under the same names to the same destination, and one task's files would overwrite the other's: ` +
      "give this task a different description, a file name pattern (options.fileNamePattern) with {report} or {task} that tells the two apart, or another destination or folder",
  );
}

/** validateSchedule speaks in sentences that start with the field's name. */
function fieldOfScheduleProblem(message: string): string {
  const field = /^(frequency|time|dayOfWeek|everyMinutes|delayMinutes|time zone|timeZone)/.exec(message)?.[1];
  return field === "time zone" || field === "timeZone" ? "timezone" : field ?? "frequency";
}

export function nextRunAtFor(draft: Pick<TaskDraft, "schedule" | "enabled">, timezone: string | null, now: Date): Date | null {
  return draft.enabled && timezone ? computeNextRunAt(draft.schedule, timezone, now) : null;
}
