import { trace } from "@opentelemetry/api";
import { RUN_IN_PROGRESS, type Run, type Task, type TenantDb } from "@transporter/db";
import type { JobProducer } from "@transporter/queue";
import { wallTimeAt } from "@transporter/schedule";
import { injectTraceContext } from "@transporter/telemetry";
import { notFound, Problem } from "./problem.js";
import { lockTask, type Transaction } from "./row-locks.js";
import { assertKeyUnexpired, lookBackOf, SCHEDULING_LAG_MINUTES } from "./task-rules.js";

/** The longest window a run asked for through the API may cover (a given window or a retry), in the account's local days. */
export const MAX_REQUESTED_WINDOW_DAYS = 31;

/**
 * How many days a window spans in `timeZone`: its local calendar days (wall-clock time), so a
 * month of 31 days is 31 whatever its hours (October in London has 745, with its fall-back), or
 * its days of 24 hours when fewer (a day the zone skipped, as Samoa did on 2011-12-30, never was).
 */
export function localDaysOf(window: { start: Date; end: Date }, timeZone: string): number {
  const local = (wallTimeAt(timeZone, window.end.getTime()) - wallTimeAt(timeZone, window.start.getTime())) / 86_400_000;
  return Math.min(local, (window.end.getTime() - window.start.getTime()) / 86_400_000);
}

/** How long a run request waits for its job to reach Redis before it answers with the run as it is. */
export const ENQUEUE_WAIT_MS = 2_000;

/** Where a run request notes a job it could not queue (the request's logger). */
type RequestLog = { warn(fields: object, message: string): void };

/**
 * A run asked for through the API ("run now", a given window, a retry). It takes the same
 * path as a scheduled run: a Run row first, then the `fetch` job with jobId = run id + stage
 * (after commit). If the enqueue is lost, the scheduler's reconciler enqueues the PENDING run.
 */
const DESTINATION_DELETED = "the task's destination was deleted: point the task at another destination (PATCH /v1/tasks/:id), then ask again";

/**
 * What a run needs that can be known before it is queued: the account's zone, an active key, and
 * the task's source and destination (a disabled task's may have been deleted since). Without
 * them the run would only fail in a later stage, after fetching the data.
 */
async function assertRunnable(db: TenantDb, task: Task, now: Date): Promise<void> {
  const [tenant, activeKey, source, destination] = await Promise.all([
    db.tenant.findFirstOrThrow({ select: { timezone: true } }),
    db.encryptionKey.findFirst({ where: { active: true, deletedAt: null }, select: { fingerprint: true, expiresAt: true } }),
    task.sourceId ? db.source.findUnique({ where: { id: task.sourceId, deletedAt: null }, select: { id: true } }) : Promise.resolve(null),
    db.destination.findUnique({ where: { id: task.destinationId, deletedAt: null }, select: { id: true } }),
  ]);
  if (!tenant.timezone) throw new Problem(409, "Conflict", "choose your account's time zone (PATCH /v1/account) first");
  if (!activeKey) throw new Problem(409, "Conflict", "set up encryption first: runs need an active encryption key");
  assertKeyUnexpired(activeKey, now);
  if (!source) throw new Problem(409, "Conflict", "the task's source was deleted: point the task at another source (PATCH /v1/tasks/:id), then ask again");
  if (!destination) throw new Problem(409, "Conflict", DESTINATION_DELETED);
}

/**
 * A report whose source only looks back so far (Messaging Operations: 24 hours) cannot fetch a
 * window starting further back: the run would fail, or (before the connector refused it) deliver
 * the window short of its first interval. Measured as the task rules measure a schedule: from the
 * window's start, plus one interval (the first may start up to one before the window) and the
 * scheduling lag. A run asked for (a given window, or the latest one of a task saved before the
 * rule) is refused with 400; a retry, whose window is the failed run's, with 409 (the time that
 * has passed since is the conflict).
 */
export function assertWithinLookBack(task: Pick<Task, "reportId" | "reportVersion" | "params">, window: { start: Date }, trigger: "manual" | "retry", now: Date): void {
  const lookBack = lookBackOf(task.reportId, task.reportVersion, task.params);
  if (!lookBack) return;
  const minute = 60_000;
  const overhead = (lookBack.intervalMinutes + SCHEDULING_LAG_MINUTES) * minute;
  if (now.getTime() - window.start.getTime() + overhead <= lookBack.maxMinutes * minute) return;
  const earliest = new Date(now.getTime() - lookBack.maxMinutes * minute + overhead);
  const ago = Math.ceil((now.getTime() - window.start.getTime()) / minute);
  const message =
    `report ${task.reportId} reads an API that only looks back ${lookBack.maxMinutes} minutes (${lookBack.maxMinutes / 60} hours): this window starts ${ago} minutes ago, and with its first ` +
    `${lookBack.intervalMinutes}-minute interval and ${SCHEDULING_LAG_MINUTES} minutes allowed for the run to start, fetching it would reach back further than that; ` +
    `its data can no longer be fetched whole. Ask for a window starting at or after ${earliest.toISOString()}`;
  if (trigger === "retry") throw new Problem(409, "Conflict", message, { earliestWindowStart: earliest.toISOString() });
  throw new Problem(400, "Invalid request", message, { errors: [{ path: "body.windowStart", message }], earliestWindowStart: earliest.toISOString() });
}

export async function requestRun(
  db: TenantDb,
  queues: JobProducer,
  task: Task,
  window: { start: Date; end: Date },
  trigger: "manual" | "retry",
  now: Date,
  options: { retryOfId?: string; log?: RequestLog; audit?: (tx: Transaction, run: Run) => Promise<void> } = {},
): Promise<Run> {
  const { retryOfId, log, audit } = options;
  assertWithinLookBack(task, window, trigger, now);
  await assertRunnable(db, task, now);
  const carrier = injectTraceContext();
  // One run of a window at a time: two would deliver the same file name at once (a double
  // click, two retries of one failure), and stores like S3 cannot take two writers of one key.
  // Under the task's row lock, so two requests at the same moment cannot both pass the check.
  const run = await db.$transaction(async (tx) => {
    // The task as it is under the lock: deleted since it was read (a DELETE that went first), it runs no more.
    const locked = await lockTask(tx, task.id, task.tenantId);
    if (!locked || locked.deletedAt) {
      throw trigger === "retry" ? new Problem(409, "Conflict", "the task of this run was deleted; it cannot run again") : notFound("task");
    }
    // The destination is still there, and stays until this run is committed: a delete takes the
    // row's lock and then refuses while a run under way delivers there (FOR SHARE waits for a
    // delete under way, then sees it).
    const [destination] = await tx.$queryRaw<Array<{ id: string }>>`
      SELECT id FROM "Destination" WHERE id = ${locked.destinationId}::uuid AND "tenantId" = ${task.tenantId}::uuid AND "deletedAt" IS NULL FOR SHARE`;
    if (!destination) throw new Problem(409, "Conflict", DESTINATION_DELETED);
    const underWay = await tx.run.findFirst({
      where: { taskId: task.id, windowStart: window.start, windowEnd: window.end, status: { in: [...RUN_IN_PROGRESS] } },
      select: { id: true, status: true },
    });
    if (underWay) {
      throw new Problem(409, "Conflict", `run ${underWay.id} of this window is under way (${underWay.status}); wait for it to finish`, { runId: underWay.id });
    }
    const created = await tx.run.create({
      data: {
        taskId: task.id, windowStart: window.start, windowEnd: window.end, scheduledFor: now, trigger,
        retryOfId: retryOfId ?? null, traceparent: carrier.traceparent ?? null,
      } as never,
    });
    // The request's audit event in the same transaction: no run asked for without its event.
    await audit?.(tx, created);
    return created;
  });
  trace.getActiveSpan()?.setAttributes({ "transporter.run_id": run.id, "transporter.task_id": task.id, "transporter.tenant_id": task.tenantId, "transporter.report": task.reportId });
  const enqueued = queues.enqueue("fetch", { runId: run.id, tenantId: run.tenantId, trace: carrier }).then(() => db.run.update({ where: { id: run.id }, data: { enqueuedAt: new Date() } }));
  // The run is committed: whatever becomes of its job, the answer is the run. A job that cannot
  // reach Redis soon (Redis away: the connection holds it until Redis is back) is left to go
  // when it can, and the reconciler queues the run if it never does.
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<"late">((resolve) => (timer = setTimeout(() => resolve("late"), ENQUEUE_WAIT_MS)));
  const outcome = await Promise.race([enqueued, late]).catch((error: unknown) => error as Error);
  clearTimeout(timer);
  if (outcome !== "late" && !(outcome instanceof Error)) return outcome;
  if (outcome === "late") enqueued.catch((error: unknown) => log?.warn({ err: error, runId: run.id }, "could not queue the run; the reconciler will"));
  log?.warn({ runId: run.id, err: outcome === "late" ? undefined : outcome }, "the run's job is not confirmed queued yet; the reconciler queues it if it is missing");
  return run;
}
