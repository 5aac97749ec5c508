import type pg from "pg";
import { raiseAlert, type AlertInput } from "./alerts.js";
import type { Db } from "./client.js";
import type { DestinationKind, Run, RunStatus, Task, Tenant } from "./generated/client.js";
import { SqlParams, sqlExecute, sqlRows } from "./pipeline-sql.js";

/**
 * The pipeline's per-run bookkeeping (stage start, stage finish, success) in plain SQL: a
 * dozen statements per run, where the model API's per-call cost adds up (see pipeline-sql.ts).
 */

export type PipelineStage = "fetch" | "transform" | "encrypt" | "deliver";

const STAGE_STATUS: Record<PipelineStage, RunStatus> = { fetch: "FETCHING", transform: "TRANSFORMING", encrypt: "ENCRYPTING", deliver: "DELIVERING" };
const STARTED_COLUMN: Record<PipelineStage, string> = { fetch: "fetchStartedAt", transform: "transformStartedAt", encrypt: "encryptStartedAt", deliver: "deliverStartedAt" };
const FINISHED_COLUMN: Record<PipelineStage, string> = { fetch: "fetchFinishedAt", transform: "transformFinishedAt", encrypt: "encryptFinishedAt", deliver: "deliveredAt" };

/** Whether the run records this stage's finish (for deliver: its delivery). */
export function stageFinished(run: Run, stage: PipelineStage): boolean {
  return run[FINISHED_COLUMN[stage] as keyof Run] !== null;
}

/** The status a run has while this stage works on it. */
export function stageStatus(stage: PipelineStage): RunStatus {
  return STAGE_STATUS[stage];
}

/** The run fields a stage may produce, written with the stage's finish. */
export interface StageRunFields {
  records?: number;
  sourceCalls?: number;
  /** The report the run fetched and renders, pinned by the fetch stage (the task's may change). */
  reportId?: string;
  reportVersion?: number;
  /** The report params the run fetched with, pinned with the report. */
  params?: Record<string, unknown>;
  /** The file format the transform stage wrote. */
  format?: string;
  rows?: number;
  skippedRecords?: number;
  notes?: string[];
  keyFingerprint?: string;
  fileName?: string;
  destinationPath?: string;
  bytes?: bigint;
  checksum?: string;
  fileExpiresAt?: Date | null;
  fileDeletedAt?: Date | null;
}

/** Each field's column and the cast that makes its parameter the column's type. */
const FIELD_COLUMNS: { [K in keyof Required<StageRunFields>]: { column: string; cast: string; encode?: (value: StageRunFields[K]) => unknown } } = {
  records: { column: "records", cast: "int" },
  sourceCalls: { column: "sourceCalls", cast: "int" },
  reportId: { column: "reportId", cast: "text" },
  reportVersion: { column: "reportVersion", cast: "int" },
  params: { column: "params", cast: "jsonb", encode: (v) => JSON.stringify(v ?? {}) },
  format: { column: "format", cast: "text" },
  rows: { column: "rows", cast: "int" },
  skippedRecords: { column: "skippedRecords", cast: "int" },
  notes: { column: "notes", cast: "jsonb", encode: (v) => JSON.stringify(v ?? []) },
  keyFingerprint: { column: "keyFingerprint", cast: "text" },
  fileName: { column: "fileName", cast: "text" },
  destinationPath: { column: "destinationPath", cast: "text" },
  bytes: { column: "bytes", cast: "bigint", encode: (v) => (v === undefined ? null : v.toString()) },
  checksum: { column: "checksum", cast: "text" },
  fileExpiresAt: { column: "fileExpiresAt", cast: "timestamptz", encode: (v) => v?.toISOString() ?? null },
  fileDeletedAt: { column: "fileDeletedAt", cast: "timestamptz", encode: (v) => v?.toISOString() ?? null },
};

/** `"column" = $n::type` for each field given (names come from the map above, never from input). */
function fieldAssignments(fields: StageRunFields, params: SqlParams): string[] {
  return Object.entries(fields)
    .filter(([, value]) => value !== undefined)
    .map(([name, value]) => {
      if (!Object.hasOwn(FIELD_COLUMNS, name)) throw new TypeError(`"${name}" is not a field a pipeline stage writes`);
      const { column, cast, encode } = FIELD_COLUMNS[name as keyof StageRunFields] as { column: string; cast: string; encode?: (v: unknown) => unknown };
      return `"${column}" = ${params.add(encode ? encode(value) : value)}::${cast}`;
    });
}

export type StageTask = Task & { destination: { kind: DestinationKind } };

export type BegunStage =
  | { state: "started"; run: Run; task: StageTask; tenant: Tenant }
  | { state: "missing" }
  | { state: "finished"; status: RunStatus }
  /** A later stage has the run already: this job is a stale duplicate (a hand-off done twice). */
  | { state: "passed"; status: RunStatus }
  /** (fetch) A queued run that may no longer start (see startRefusal): it was not claimed. */
  | { state: "refused"; refusal: StartRefusal };

/** The statuses of a run that has not finished, in pipeline order: a run only ever moves forward through them. */
export const RUN_IN_PROGRESS: readonly RunStatus[] = ["PENDING", "FETCHING", "TRANSFORMING", "ENCRYPTING", "DELIVERING"];

/** The statuses from which a stage may claim a run: any not past its own. */
function claimableBy(stage: PipelineStage): RunStatus[] {
  return RUN_IN_PROGRESS.slice(0, RUN_IN_PROGRESS.indexOf(STAGE_STATUS[stage]) + 1);
}

/**
 * Claims the run for a stage in one statement: status, start time and one more attempt, unless
 * the run has already finished or a later stage has it (a duplicate or late job then changes
 * nothing: a run never moves back). The same statement returns the updated run with its task
 * (and destination kind) and tenant.
 */
export async function beginStage(db: Db, input: { runId: string; tenantId: string; stage: PipelineStage; at: Date }): Promise<BegunStage> {
  const { runId, tenantId, stage, at } = input;
  // The fetch stage never claims a queued run that may no longer start (startRefusal, in SQL):
  // such a run stays unclaimed, so the decision to skip it is made again until it is written.
  const mayStart = stage === "fetch" ? `AND NOT (status = 'PENDING' AND EXISTS (${REFUSED_SQL}))` : "";
  // Delivery pins the task's destination on the run when it first begins: every later attempt
  // delivers to the same place, whatever the task was pointed at since.
  const pinDestination = stage === "deliver" ? `, "destinationId" = COALESCE("destinationId", (SELECT t."destinationId" FROM "Task" t WHERE t.id = "Run"."taskId"))` : "";
  const [row] = await sqlRows<Run & { taskRow: Record<string, unknown> | null; destinationKind: DestinationKind | null; tenantRow: Record<string, unknown> | null }>(
    db,
    `WITH claimed AS (
       UPDATE "Run" SET status = $3::"RunStatus", "${STARTED_COLUMN[stage]}" = $4::timestamptz, attempts = attempts + 1, "updatedAt" = $4::timestamptz${pinDestination}
       WHERE id = $1::uuid AND "tenantId" = $2::uuid AND status = ANY($5::"RunStatus"[]) ${mayStart}
       RETURNING *)
     SELECT c.*, to_jsonb(t) AS "taskRow", d.kind AS "destinationKind", to_jsonb(tn) AS "tenantRow"
     FROM claimed c
     LEFT JOIN "Task" t ON t.id = c."taskId" AND t."tenantId" = c."tenantId"
     LEFT JOIN "Destination" d ON d.id = COALESCE(c."destinationId", t."destinationId")
     LEFT JOIN "Tenant" tn ON tn.id = c."tenantId"`,
    [runId, tenantId, STAGE_STATUS[stage], at.toISOString(), claimableBy(stage)],
  );
  if (!row) {
    const [existing] = await sqlRows<{ status: RunStatus; trigger: Run["trigger"]; enabled: boolean; deletedAt: Date | null; disabled: boolean }>(
      db,
      `SELECT r.status, r.trigger, t.enabled, t."deletedAt", tn.disabled
       FROM "Run" r JOIN "Task" t ON t.id = r."taskId" JOIN "Tenant" tn ON tn.id = r."tenantId"
       WHERE r.id = $1::uuid AND r."tenantId" = $2::uuid`,
      [runId, tenantId],
    );
    if (!existing) return { state: "missing" };
    if (stage === "fetch" && existing.status === "PENDING") {
      const refusal = startRefusal({ trigger: existing.trigger }, existing, existing);
      // Refused a moment ago and allowed now (the task enabled again meanwhile): the job's retry claims it.
      if (!refusal) throw new Error(`run ${runId} could not be claimed and may start after all; trying again`);
      return { state: "refused", refusal };
    }
    return RUN_IN_PROGRESS.includes(existing.status) ? { state: "passed", status: existing.status } : { state: "finished", status: existing.status };
  }
  const { taskRow, destinationKind, tenantRow, ...run } = row;
  // All three are required relations of the run (deleting one deletes the run).
  if (!taskRow || !destinationKind || !tenantRow) return { state: "missing" };
  return { state: "started", run, task: { ...taskFromJson(taskRow), destination: { kind: destinationKind } }, tenant: tenantFromJson(tenantRow) };
}

/** Why a run that has not started must not start, with its stable code. */
export interface StartRefusal {
  code: "tenant_disabled" | "task_deleted" | "task_disabled";
  message: string;
}

/**
 * Whether a run waiting for its first stage may still start. A run is under way once it has
 * started (and then finishes whatever happens to its task); one only queued is not: a task
 * deleted, or an account disabled, since it was queued runs nothing more. A disabled task's
 * scheduled runs stop too, but a run someone asked for on a disabled task ("run now", a retry)
 * goes ahead: that is what they asked for.
 */
export function startRefusal(run: Pick<Run, "trigger">, task: Pick<Task, "enabled" | "deletedAt">, tenant: Pick<Tenant, "disabled">): StartRefusal | null {
  if (tenant.disabled) return { code: "tenant_disabled", message: "Not run: the account was disabled before the run started." };
  if (task.deletedAt) return { code: "task_deleted", message: "Not run: the task was deleted before the run started." };
  if (!task.enabled && run.trigger === "schedule") return { code: "task_disabled", message: "Not run: the task was disabled before the run started." };
  return null;
}

/**
 * startRefusal's rule in SQL, for the fetch stage's claim (correlated with the "Run" row being
 * claimed): the two must say the same (run-stages.test.ts checks every case against both).
 */
const REFUSED_SQL = `SELECT 1 FROM "Task" t JOIN "Tenant" tn ON tn.id = t."tenantId"
  WHERE t.id = "Run"."taskId" AND (tn.disabled OR t."deletedAt" IS NOT NULL OR (NOT t.enabled AND "Run".trigger = 'schedule'))`;

/**
 * Whether the "Run" row of the query (unaliased) is a queued run that will never start (see
 * startRefusal): it is skipped, not run, so it holds nothing (such as its destination) in use.
 */
export const QUEUED_RUN_REFUSED_SQL = `("Run".status = 'PENDING' AND EXISTS (${REFUSED_SQL}))`;

/**
 * Ends a queued run that may no longer start as SKIPPED with the reason, re-checking the refusal
 * in the write ($1 run id, $2 time, $3 message, $4 code; see skipRefusedRunParams). Shared by the
 * fetch stage (skipUnstartedRun) and the reconciler (a queued run whose fetch job failed).
 */
export const SKIP_REFUSED_RUN_SQL = `UPDATE "Run" SET status = 'SKIPPED', "finishedAt" = $2::timestamptz, error = $3, "errorCode" = $4, "updatedAt" = $2::timestamptz
  WHERE id = $1::uuid AND status = 'PENDING' AND EXISTS (${REFUSED_SQL})`;

/** The parameters of SKIP_REFUSED_RUN_SQL. */
export function skipRefusedRunParams(runId: string, refusal: StartRefusal, at: Date): unknown[] {
  return [runId, at.toISOString(), refusal.message, refusal.code];
}

/**
 * Ends a queued run the fetch stage refused to start (see `startRefusal`): SKIPPED with the
 * reason; never started, it has no start time and no attempt. The refusal is checked again in the
 * write: a run its task was enabled for again meanwhile is not skipped, and the job's retry claims
 * it (this throws). Returns whether it changed the run (false: someone else finished it).
 */
export async function skipUnstartedRun(db: Db, input: { runId: string; refusal: StartRefusal; at: Date }): Promise<boolean> {
  const { runId, refusal, at } = input;
  const changed = await sqlExecute(db, SKIP_REFUSED_RUN_SQL, skipRefusedRunParams(runId, refusal, at));
  if (changed > 0) return true;
  const [still] = await sqlRows<{ status: RunStatus }>(db, `SELECT status FROM "Run" WHERE id = $1::uuid`, [runId]);
  if (still?.status === "PENDING") throw new Error(`run ${runId} may start after all (its task or account changed again); trying again`);
  return false;
}

/** A timestamp as `to_jsonb` renders it, as a Date (as the model API returns it). */
function dateOf(value: unknown): Date {
  return new Date(value as string);
}

/** The task row as `to_jsonb` renders it, with its timestamps as Dates again. */
function taskFromJson(row: Record<string, unknown>): Task {
  return {
    ...(row as unknown as Task),
    nextRunAt: row.nextRunAt == null ? null : dateOf(row.nextRunAt),
    coveredUntil: row.coveredUntil == null ? null : dateOf(row.coveredUntil),
    deletedAt: row.deletedAt == null ? null : dateOf(row.deletedAt),
    createdAt: dateOf(row.createdAt),
    updatedAt: dateOf(row.updatedAt),
  };
}

/** The tenant row as `to_jsonb` renders it, with its timestamps as Dates again. */
function tenantFromJson(row: Record<string, unknown>): Tenant {
  return { ...(row as unknown as Tenant), createdAt: dateOf(row.createdAt), updatedAt: dateOf(row.updatedAt) };
}

/**
 * Records a stage's finish, the fields it produced and the run's staging keys, in one update;
 * only while the stage still has the run. False when it no longer does (the run was failed
 * meanwhile, e.g. by the reconciler after the job stalled): the caller then hands nothing over.
 */
export async function finishStage(db: Db, input: { runId: string; stage: Exclude<PipelineStage, "deliver">; fields: StageRunFields; staging: Record<string, string>; at: Date }): Promise<boolean> {
  const { runId, stage, fields, staging, at } = input;
  const params = new SqlParams();
  const assignments = [
    ...fieldAssignments(fields, params),
    `"${FINISHED_COLUMN[stage]}" = ${params.add(at.toISOString())}::timestamptz`,
    `staging = ${params.add(JSON.stringify(staging))}::jsonb`,
    `"updatedAt" = ${params.add(at.toISOString())}::timestamptz`,
  ];
  const changed = await sqlExecute(
    db,
    `UPDATE "Run" SET ${assignments.join(", ")} WHERE id = ${params.add(runId)}::uuid AND status = ${params.add(STAGE_STATUS[stage])}::"RunStatus"`,
    params.values,
  );
  return changed > 0;
}

/**
 * Marks a delivered run SUCCEEDED with the delivery's fields and, in the same statement (so
 * atomically), resolves the task's open failure alert: whoever sees the run succeeded no
 * longer sees the alert its failures raised. Only while the run is DELIVERING: false when it was
 * failed meanwhile (a FAILED run, its alert and its notification are never contradicted).
 * `notify`: the task has notification settings, so the run owes a notification from now on
 * (`notificationDueAt`, cleared by the notify job), committed with the outcome it reports.
 */
export async function completeRun(db: Db, input: { runId: string; fields: StageRunFields; staging: Record<string, string>; resolveAlertKey: string; notify: boolean; at: Date }): Promise<boolean> {
  const { runId, fields, staging, resolveAlertKey, notify, at } = input;
  const params = new SqlParams();
  const now = params.add(at.toISOString());
  const assignments = [
    ...fieldAssignments(fields, params),
    `status = 'SUCCEEDED'::"RunStatus"`,
    `"${FINISHED_COLUMN.deliver}" = ${now}::timestamptz`,
    `"finishedAt" = ${now}::timestamptz`,
    `staging = ${params.add(JSON.stringify(staging))}::jsonb`,
    `error = NULL`,
    `"errorCode" = NULL`,
    `"notificationDueAt" = ${notify ? `${now}::timestamptz` : "NULL"}`,
    `"updatedAt" = ${now}::timestamptz`,
  ];
  const [result] = await sqlRows<{ completed: number }>(
    db,
    `WITH done AS (UPDATE "Run" SET ${assignments.join(", ")} WHERE id = ${params.add(runId)}::uuid AND status = 'DELIVERING' RETURNING "tenantId"),
     resolved AS (UPDATE "Alert" a SET "resolvedAt" = ${now}::timestamptz FROM done
       WHERE a."tenantId" = done."tenantId" AND a."dedupeKey" = ${params.add(resolveAlertKey)} AND a."resolvedAt" IS NULL)
     SELECT count(*)::int AS completed FROM done`,
    params.values,
  );
  return (result?.completed ?? 0) > 0;
}

/**
 * Adds a note to a run's history (notes are shown with the run): only while the run has `status`
 * when one is given. True when it was added.
 */
export async function addRunNote(db: Db, runId: string, note: string, options: { status?: RunStatus } = {}): Promise<boolean> {
  const changed = await sqlExecute(
    db,
    `UPDATE "Run" SET notes = notes || jsonb_build_array($2::text) WHERE id = $1::uuid AND ($3::"RunStatus" IS NULL OR status = $3::"RunStatus")`,
    [runId, note, options.status ?? null],
  );
  return changed > 0;
}

/**
 * The dedupe key of a task's run-failure alert: one open alert per task and failure streak
 * (the stage worker raises it on a run's failure, `completeRun` resolves it).
 */
export function runFailureAlertKey(taskId: string): string {
  return `run.failed:${taskId}`;
}

/** The dedupe key of a task's alert for a notification that failed on `channel` (resolved by the next one sent). */
export function notificationAlertKey(channel: "webhook" | "email", taskId: string): string {
  return `notification.${channel}:${taskId}`;
}

/** The task's run-failure alert for one failed run (the same from a stage and from the reconciler). */
export function runFailedAlert(run: { tenantId: string; taskId: string; runId: string; description: string; windowStart: Date; windowEnd: Date }, stage: PipelineStage, message: string): AlertInput {
  return {
    tenantId: run.tenantId, kind: "run.failed", severity: "error", title: `Task "${run.description}" failed`,
    message: `The run for ${run.windowStart.toISOString()} – ${run.windowEnd.toISOString()} failed while it was ${stageStatus(stage).toLowerCase()}: ${message}`,
    dedupeKey: runFailureAlertKey(run.taskId), taskId: run.taskId, runId: run.runId,
  };
}

/** `raiseAlert`'s statement on a pg client (inside its transaction), so the alert SQL stays in one place. */
function executeRawOn(client: pg.ClientBase): Pick<Db, "$executeRaw"> {
  const executeRaw = async (strings: TemplateStringsArray, ...values: unknown[]): Promise<number> => {
    const text = strings.reduce((sql, part, i) => `${sql}$${i}${part}`);
    return (await client.query(text, values)).rowCount ?? 0;
  };
  return { $executeRaw: executeRaw } as unknown as Pick<Db, "$executeRaw">;
}

export type FailedStuckRun = { tenantId: string; taskId: string };

/**
 * Fails a run whose stage job ended without the stage recording it (the scheduler's
 * reconciler: attempts exhausted while the database was unreachable, a job that stalled too
 * often): status FAILED with the reason, and the task's failure alert (the same one, under the
 * same key, as a stage raises; none once the task is deleted), in one transaction. Only if the
 * run is still as the caller saw it (same status, same `updatedAt`): a run a worker moved on
 * meanwhile is left as it is. Returns null when nothing changed.
 */
export async function failStuckRun(
  pool: pg.Pool,
  input: { runId: string; status: RunStatus; updatedAt: Date; stage: PipelineStage; message: string; errorCode: string; notify: boolean; at: Date },
): Promise<FailedStuckRun | null> {
  const { runId, status, updatedAt, stage, message, errorCode, notify, at } = input;
  const client = await pool.connect();
  try {
    await client.query("BEGIN");
    const { rows } = await client.query<FailedStuckRun & { windowStart: Date; windowEnd: Date; description: string }>(
      `UPDATE "Run" r SET status = 'FAILED', "finishedAt" = $4, error = $5, "errorCode" = $6, "updatedAt" = $4,
         "notificationDueAt" = CASE WHEN $7::boolean THEN $4::timestamptz END
       FROM "Task" t
       WHERE r.id = $1::uuid AND r.status = $2::"RunStatus" AND r."updatedAt" = $3 AND t.id = r."taskId"
       RETURNING r."tenantId", r."taskId", r."windowStart", r."windowEnd", t.description`,
      [runId, status, updatedAt, at, `${stage}: ${message}`, errorCode, notify],
    );
    const run = rows[0];
    // A run of a deleted task still fails (with its reason and notification), but raises no alert (see raiseAlert).
    if (run) {
      await raiseAlert(executeRawOn(client), runFailedAlert({ ...run, runId }, stage, message));
    }
    await client.query("COMMIT");
    return run ? { tenantId: run.tenantId, taskId: run.taskId } : null;
  } catch (error) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}
