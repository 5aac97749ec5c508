import { randomUUID } from "node:crypto";
import type pg from "pg";
import { RUN_IN_PROGRESS } from "@transporter/db";
import { catchUpWindowsFor, isValidTimeZone, planDueWindows, resumeAfterEnable, validateSchedule, type Schedule } from "@transporter/schedule";

/**
 * The due-task query. Its plan is one scan of the partial index "Task_due_idx" (nextRunAt
 * WHERE enabled AND deletedAt IS NULL), so a tick with nothing due costs one small index probe
 * whatever the number of tasks. SKIP LOCKED lets replicas claim disjoint batches: the database
 * decides who handles a task, never a process-local lock.
 */
export const CLAIM_DUE_TASKS_SQL = `
SELECT id, "tenantId", frequency, time, "dayOfWeek", "everyMinutes", "delayMinutes", "nextRunAt", "coveredUntil"
FROM "Task"
WHERE enabled AND "deletedAt" IS NULL AND "nextRunAt" <= $1
ORDER BY "nextRunAt"
LIMIT $2
FOR UPDATE SKIP LOCKED`;

const TENANTS_SQL = `SELECT id, timezone, disabled FROM "Tenant" WHERE id = ANY($1::uuid[])`;

/**
 * One row per window; a window already recorded for the task is left as it is (partial unique
 * index on taskId, windowStart and windowEnd: only the very same window conflicts, never a
 * different one that happens to share its start).
 */
const INSERT_RUNS_SQL = `
INSERT INTO "Run" (id, "tenantId", "taskId", "windowStart", "windowEnd", "scheduledFor", trigger, status, error, "errorCode", "finishedAt", traceparent, "createdAt", "updatedAt")
SELECT r.id, r.tenant, r.task, r.ws, r.we, r.sf, 'schedule', r.status::"RunStatus", r.error, r.code,
       CASE WHEN r.status = 'SKIPPED' THEN $10::timestamptz END, r.traceparent, $10, $10
FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::timestamptz[], $5::timestamptz[], $6::timestamptz[], $7::text[], $8::text[], $9::text[], $11::text[])
     AS r(id, tenant, task, ws, we, sf, status, error, code, traceparent)
ON CONFLICT ("taskId", "windowStart", "windowEnd") WHERE trigger = 'schedule' DO NOTHING
RETURNING id, "tenantId", status, "scheduledFor", traceparent`;

/**
 * Runs of these tasks asked for by hand (run now, a given window, a retry) that are under way.
 * The claimed tasks' rows are locked, and requests lock the task row too, so none can start
 * between this read and the insert.
 */
const HAND_RUNS_UNDER_WAY_SQL = `
SELECT id, "taskId", "windowStart", "windowEnd" FROM "Run"
WHERE "taskId" = ANY($1::uuid[]) AND trigger <> 'schedule' AND status = ANY($2::"RunStatus"[])`;

const ADVANCE_TASKS_SQL = `
UPDATE "Task" AS t SET "nextRunAt" = v.next, "coveredUntil" = v.covered
FROM unnest($1::uuid[], $2::timestamptz[], $3::timestamptz[]) AS v(id, next, covered)
WHERE t.id = v.id`;

type DueTaskRow = Schedule & { id: string; tenantId: string; nextRunAt: Date; coveredUntil: Date | null };
type TenantRow = { id: string; timezone: string | null; disabled: boolean };

/** A run written by the tick that must now be enqueued, with its own trace context. */
export type CreatedRun = { id: string; tenantId: string; scheduledFor: Date; traceparent: string | null };

export type BatchResult = {
  /** Tasks claimed (due) in this batch. */
  claimed: number;
  /** Runs to enqueue after commit, oldest due first. */
  pending: CreatedRun[];
  /** Windows recorded as SKIPPED (beyond the catch-up limit, or a hand-requested run of it under way). */
  skipped: number;
  /** Tasks that cannot be scheduled (no or unknown time zone, invalid schedule): nextRunAt cleared. */
  unschedulable: { taskId: string; reason: string }[];
};

export type BatchOptions = {
  now: Date;
  batchSize: number;
  catchUpDays: number;
  /** The `traceparent` of a new run's own trace, stored on it and carried by its jobs (null: not traced). */
  traceparentFor: (run: { id: string; tenantId: string; taskId: string }) => string | null;
};

class RunRows {
  readonly ids: string[] = [];
  readonly tenants: string[] = [];
  readonly tasks: string[] = [];
  readonly starts: Date[] = [];
  readonly ends: Date[] = [];
  readonly due: Date[] = [];
  readonly statuses: string[] = [];
  readonly errors: (string | null)[] = [];
  readonly codes: (string | null)[] = [];
  readonly traceparents: (string | null)[] = [];

  constructor(private readonly traceparentFor: BatchOptions["traceparentFor"]) {}

  add(task: DueTaskRow, start: Date, end: Date, scheduledFor: Date, skipped: { reason: string; code: string } | null): void {
    const id = randomUUID();
    this.ids.push(id);
    // Only a run that will run gets a trace; a skipped window has nothing to trace.
    this.traceparents.push(skipped ? null : this.traceparentFor({ id, tenantId: task.tenantId, taskId: task.id }));
    this.tenants.push(task.tenantId);
    this.tasks.push(task.id);
    this.starts.push(start);
    this.ends.push(end);
    this.due.push(scheduledFor);
    this.statuses.push(skipped ? "SKIPPED" : "PENDING");
    this.errors.push(skipped?.reason ?? null);
    this.codes.push(skipped?.code ?? null);
  }
}

/** The hand-requested runs under way of the claimed tasks, by task and window. */
async function handRunsUnderWay(client: pg.ClientBase, taskIds: string[]): Promise<Map<string, string>> {
  const { rows } = await client.query<{ id: string; taskId: string; windowStart: Date; windowEnd: Date }>(HAND_RUNS_UNDER_WAY_SQL, [taskIds, RUN_IN_PROGRESS]);
  return new Map(rows.map((r) => [windowKey(r.taskId, r.windowStart, r.windowEnd), r.id]));
}

function windowKey(taskId: string, start: Date, end: Date): string {
  return `${taskId}/${start.getTime()}/${end.getTime()}`;
}

function skipReason(limit: number, days: number): string {
  return `Missed while the scheduler was not running; only the latest ${limit} window(s) (${days} day(s)) are caught up.`;
}

/** A window a hand-requested run already covers: a second run would write the same file at once. */
function underWaySkip(runId: string): { reason: string; code: string } {
  return { code: "run_under_way", reason: `Run ${runId} of this window, asked for by hand, was under way; it covers the window (if it fails, retry it).` };
}

/**
 * Claims one batch of due tasks and, in the caller's transaction, writes a run per owed window
 * and moves each task's nextRunAt to its next window. Enqueueing happens after commit.
 */
export async function processDueBatch(client: pg.ClientBase, options: BatchOptions): Promise<BatchResult> {
  const { now, batchSize, catchUpDays } = options;
  const { rows: tasks } = await client.query<DueTaskRow>(CLAIM_DUE_TASKS_SQL, [now, batchSize]);
  const result: BatchResult = { claimed: tasks.length, pending: [], skipped: 0, unschedulable: [] };
  if (tasks.length === 0) return result;

  const tenantIds = [...new Set(tasks.map((t) => t.tenantId))];
  const { rows: tenantRows } = await client.query<TenantRow>(TENANTS_SQL, [tenantIds]);
  const tenants = new Map(tenantRows.map((t) => [t.id, t]));

  const handRuns = await handRunsUnderWay(client, tasks.map((t) => t.id));
  const runs = new RunRows(options.traceparentFor);
  const advanceIds: string[] = [];
  const advanceTo: (Date | null)[] = [];
  // Where each task's scheduled windows end after this batch (null: start afresh next time).
  const coveredUntil: (Date | null)[] = [];
  for (const task of tasks) {
    const tenant = tenants.get(task.tenantId);
    const zone = tenant?.timezone ?? null;
    const problems = validateSchedule(task);
    if (!zone || !isValidTimeZone(zone) || problems.length > 0) {
      const reason = problems.length > 0 ? problems.join("; ") : zone ? `unknown time zone "${zone}"` : "the account has no time zone";
      result.unschedulable.push({ taskId: task.id, reason });
      advanceIds.push(task.id);
      advanceTo.push(null);
      // Kept: where delivered windows end still bounds the windows made once it is schedulable.
      coveredUntil.push(task.coveredUntil);
      continue;
    }
    if (tenant?.disabled) {
      // A disabled account runs nothing; its tasks resume from the next window once enabled
      // (the disabled period is not covered, as for a disabled task). The coverage moves up to
      // that window's start, never back: a schedule change made meanwhile must not reach back
      // over windows already delivered.
      const resumed = resumeAfterEnable(task, zone, task.coveredUntil, now);
      advanceIds.push(task.id);
      advanceTo.push(resumed.nextRunAt);
      coveredUntil.push(resumed.coveredUntil);
      continue;
    }
    const limit = catchUpWindowsFor(task, catchUpDays);
    // Continues from where the recorded windows end: after a schedule or zone change the first
    // new window starts there (no gap, no overlap); windows already covered are not recorded.
    const plan = planDueWindows(task, zone, task.nextRunAt, now, limit, task.coveredUntil);
    const catchUp = { code: "catch_up_limit", reason: skipReason(limit, catchUpDays) };
    if (plan.skippedSpan) {
      const { start, end } = plan.skippedSpan;
      runs.add(task, start, end, new Date(end.getTime() + (task.delayMinutes ?? 0) * 60_000), { ...catchUp, reason: `${catchUp.reason} Windows from ${start.toISOString()} to ${end.toISOString()} were not run.` });
    }
    for (const w of plan.skip) runs.add(task, w.start, w.end, w.runAt, catchUp);
    for (const w of plan.run) {
      const handRun = handRuns.get(windowKey(task.id, w.start, w.end));
      runs.add(task, w.start, w.end, w.runAt, handRun ? underWaySkip(handRun) : null);
    }
    advanceIds.push(task.id);
    advanceTo.push(plan.nextRunAt);
    coveredUntil.push(plan.run.at(-1)?.end ?? plan.skip.at(-1)?.end ?? plan.skippedSpan?.end ?? task.coveredUntil);
  }

  if (runs.ids.length > 0) {
    const { rows } = await client.query<{ id: string; tenantId: string; status: string; scheduledFor: Date; traceparent: string | null }>(INSERT_RUNS_SQL, [
      runs.ids,
      runs.tenants,
      runs.tasks,
      runs.starts,
      runs.ends,
      runs.due,
      runs.statuses,
      runs.errors,
      runs.codes,
      now,
      runs.traceparents,
    ]);
    for (const row of rows) {
      if (row.status === "PENDING") result.pending.push({ id: row.id, tenantId: row.tenantId, scheduledFor: row.scheduledFor, traceparent: row.traceparent });
      else result.skipped += 1;
    }
    result.pending.sort((a, b) => a.scheduledFor.getTime() - b.scheduledFor.getTime());
  }
  await client.query(ADVANCE_TASKS_SQL, [advanceIds, advanceTo, coveredUntil]);
  return result;
}

/**
 * Enabled tasks without a nextRunAt whose account has a valid time zone (a task enabled before
 * the account chose its zone, or written by hand) get one computed from now.
 */
export async function initializeMissingNextRunAt(client: pg.ClientBase, now: Date, limit = 1000): Promise<number> {
  const { rows } = await client.query<DueTaskRow & { timezone: string }>(
    `SELECT t.id, t."tenantId", t.frequency, t.time, t."dayOfWeek", t."everyMinutes", t."delayMinutes", t."nextRunAt", t."coveredUntil", tn.timezone
     FROM "Task" t JOIN "Tenant" tn ON tn.id = t."tenantId"
     WHERE t.enabled AND t."deletedAt" IS NULL AND t."nextRunAt" IS NULL AND tn.timezone IS NOT NULL
     LIMIT $1`,
    [limit],
  );
  const ids: string[] = [];
  const next: Date[] = [];
  const covered: (Date | null)[] = [];
  for (const task of rows) {
    if (!isValidTimeZone(task.timezone) || validateSchedule(task).length > 0) continue;
    // Starting from now: nothing before it is owed, so the first window is a plain one, and it
    // never reaches back over windows recorded before (as when a task is enabled again).
    const resumed = resumeAfterEnable(task, task.timezone, task.coveredUntil, now);
    ids.push(task.id);
    next.push(resumed.nextRunAt);
    covered.push(resumed.coveredUntil);
  }
  if (ids.length === 0) return 0;
  const { rowCount } = await client.query(`${ADVANCE_TASKS_SQL} AND t."nextRunAt" IS NULL AND t.enabled`, [ids, next, covered]);
  return rowCount ?? 0;
}
