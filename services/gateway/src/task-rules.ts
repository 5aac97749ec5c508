import { findReport, getReport, validateTaskReport } from "@transporter/reports";
import { computeNextRunAt, longestWindowMinutes, validateSchedule, windowLengthMinutesNominal, type Schedule } from "@transporter/schedule";
import { fileNamePatternOf, fileNameShape, validateFileNamePattern } from "@transporter/storage";
import type { TenantDb } from "@transporter/db";
import type { FieldProblem } from "./problem.js";
import { Problem } from "./problem.js";
import type { Transaction } from "./row-locks.js";
import { scheduleOf } from "./task-schemas.js";

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
  // Paths as the body schema names them ("body.schedule.everyMinutes"): one field, one path, whichever check found it.
  const problems: FieldProblem[] = [];
  const scheduleProblems = validateSchedule(draft.schedule, tenant.timezone ?? undefined);
  for (const message of scheduleProblems) {
    problems.push({ path: `body.schedule.${fieldOfScheduleProblem(message)}`, message });
  }
  // The pattern's own rules were checked with the body; here, whether it suits the schedule.
  const pattern = fileNamePatternOf(draft.options);
  if (pattern) for (const message of validateFileNamePattern(pattern, draft.schedule.frequency)) problems.push({ path: "body.options.fileNamePattern", message });
  for (const p of validateTaskReport({ reportId: draft.reportId, reportVersion: draft.reportVersion, format: draft.format, params: draft.params })) {
    problems.push({ path: `body.${p.path}`, message: p.message });
  }
  const [source, destination] = await Promise.all([
    draft.sourceId ? db.source.findUnique({ where: { id: draft.sourceId, deletedAt: null } }) : Promise.resolve(null),
    db.destination.findUnique({ where: { id: draft.destinationId, deletedAt: null } }),
  ]);
  if (draft.sourceId && !source) problems.push({ path: "body.sourceId", message: "no source with this id in your account" });
  if (!destination) problems.push({ path: "body.destinationId", message: "no destination with this id in your account" });
  if (!draft.sourceId) problems.push({ path: "body.sourceId", message: "a task needs a source to read from" });
  const minDelay = findReport(draft.reportId)?.minDelayMinutes ?? 0;
  if (change.scheduleOrReport && (draft.schedule.delayMinutes ?? 0) < minDelay) {
    problems.push({
      path: "body.schedule.delayMinutes",
      message: `report ${draft.reportId} needs a delay of at least ${minDelay} minutes: the platform publishes its data for a window up to ${minDelay / 60} hours after the window ends, and a run before that would miss it`,
    });
  }
  const lookBack = lookBackOf(draft.reportId, draft.reportVersion, draft.params);
  // Checked when what it depends on changes (schedule, report, or the interval in the params), like the delay.
  const intervalChanged = change.existing !== undefined && lookBack !== null && lookBackOf(change.existing.draft.reportId, change.existing.draft.reportVersion, change.existing.draft.params)?.intervalMinutes !== lookBack.intervalMinutes;
  if (lookBack && (change.scheduleOrReport || intervalChanged) && scheduleProblems.length === 0) {
    const message = lookBackProblem(draft.reportId, draft.schedule, lookBack, tenant.timezone, now);
    if (message) problems.push({ path: "body.schedule", message });
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
 * Minutes allowed between the moment a window's run is due and the moment it fetches (the
 * scheduler's tick, a queue): a run reaches back that much further than its window and delay.
 */
export const SCHEDULING_LAG_MINUTES = 5;

/** How far back a report's source serves data, and the interval its records come in (0: none). */
export interface LookBack {
  maxMinutes: number;
  intervalMinutes: number;
}

/**
 * The look-back limit of a report's source (Messaging Operations: 1440 minutes), with the
 * interval the task's params ask for (or the report's default), or null when the source has no
 * such limit. A window's first interval may start up to one interval before the window, so a run
 * reaches back over its window, its delay and one interval.
 */
export function lookBackOf(reportId: string, reportVersion: "latest" | number | string, params: unknown): LookBack | null {
  const maxMinutes = findReport(reportId)?.maxLookBackMinutes;
  if (maxMinutes === undefined) return null;
  let intervalMinutes = 0;
  try {
    const parsed = getReport(reportId, reportVersion).version.params.safeParse(params ?? {});
    const value = parsed.success ? (parsed.data as Record<string, unknown> | undefined)?.intervalMinutes : undefined;
    if (typeof value === "number") intervalMinutes = value;
  } catch {
    // An unknown version or bad params are reported with the report's own checks.
  }
  return { maxMinutes, intervalMinutes };
}

/** How far ahead the look-back rule looks for a zone's fall-backs: ten years of its known rules. */
const ZONE_CHANGES_AHEAD_MS = 10 * 365 * 24 * 3600_000;

/**
 * Why a (valid) schedule's runs would reach back further than the report's source serves, with
 * the way out, or null when they fit: longest window + delay + one interval + scheduling lag.
 * Windows are aligned to local time, so the longest is the one across the zone's largest
 * fall-back in the coming years (in New York 780 minutes for a 720-minute interval); without a
 * zone (no task can be enabled yet, and enabling checks again) or in a zone that never goes back,
 * the nominal one.
 */
export function lookBackProblem(reportId: string, schedule: Schedule, lookBack: LookBack, timeZone: string | null, now: Date): string | null {
  const nominal = windowLengthMinutesNominal(schedule);
  const window = timeZone ? longestWindowMinutes(schedule, timeZone, now, new Date(now.getTime() + ZONE_CHANGES_AHEAD_MS)) : nominal;
  const stretch = window - nominal;
  const delay = schedule.delayMinutes ?? 0;
  const { maxMinutes, intervalMinutes } = lookBack;
  const overhead = intervalMinutes + SCHEDULING_LAG_MINUTES;
  const reach = window + delay + overhead;
  if (reach <= maxMinutes) return null;
  const kind = schedule.frequency === "interval" ? "" : ` (${schedule.frequency})`;
  // everyMinutes is 15 to 1440 and divides a day: the longest window that fits with this delay
  // (a fall-back stretches any window of the zone by the same minutes).
  let longest = 0;
  for (let n = 15; n <= 1440; n++) if (1440 % n === 0 && n + stretch + delay + overhead <= maxMinutes) longest = n;
  const wayOut =
    longest > 0
      ? `use an interval schedule of at most ${longest} minutes (everyMinutes) with this delay, or a shorter delay`
      : `lower delayMinutes to at most ${maxMinutes - 15 - stretch - overhead} and use an interval schedule with everyMinutes such that everyMinutes + delayMinutes + ${stretch + overhead} ≤ ${maxMinutes}`;
  const stretched = stretch > 0 ? ` + ${stretch} minutes when ${timeZone}'s clocks go back` : "";
  return (
    `report ${reportId} reads an API that only looks back ${maxMinutes} minutes (${maxMinutes / 60} hours) from when a run fetches, and a run must reach back over its whole window: ` +
    `a ${nominal}-minute window${kind}${stretched} + ${delay} minutes of delay + one ${intervalMinutes}-minute interval (a window's first interval may start up to one interval before it) + ${SCHEDULING_LAG_MINUTES} minutes allowed for scheduling lag = ${reach} minutes, more than ${maxMinutes}; ` +
    `${wayOut}`
  );
}

/**
 * The enabled tasks a change of the account's zone would break: runs that fit the look-back in
 * the old zone but not across a fall-back of the new one (in UTC a 720-minute window with 700
 * minutes of delay fits; in New York it does not). Disabled ones are checked when enabled, and
 * one that did not fit before (saved under older rules) is not the change's doing.
 */
export async function tasksBrokenByZone(db: TenantDb | Transaction, previous: string | null, next: string, now: Date): Promise<Array<{ id: string; description: string; problem: string }>> {
  const tasks = await db.task.findMany({
    where: { enabled: true, deletedAt: null },
    select: { id: true, description: true, reportId: true, reportVersion: true, params: true, frequency: true, time: true, dayOfWeek: true, everyMinutes: true, delayMinutes: true },
    orderBy: { createdAt: "asc" },
  });
  const broken: Array<{ id: string; description: string; problem: string }> = [];
  for (const task of tasks) {
    const lookBack = lookBackOf(task.reportId, task.reportVersion, task.params);
    const schedule = scheduleOf(task);
    if (!lookBack || validateSchedule(schedule).length > 0) continue;
    const problem = lookBackProblem(task.reportId, schedule, lookBack, next, now);
    if (problem && !lookBackProblem(task.reportId, schedule, lookBack, previous, now)) broken.push({ id: task.id, description: task.description, problem });
  }
  return broken;
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
