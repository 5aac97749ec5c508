import type pg from "pg";
import { failStuckRun, hasNotificationSettings, SKIP_REFUSED_RUN_SQL, skipRefusedRunParams, startRefusal, type RunStatus, type StartRefusal } from "@transporter/db";
import { jobCatalog, jobIdFor, type JobProducer, type Redis, type Stage } from "@transporter/queue";
import { traceCarrierOf, type Logger } from "@transporter/telemetry";
import type { SchedulerMetrics } from "./metrics.js";
import { execPipeline } from "./pipeline-replies.js";

export type StrandedRun = { id: string; tenantId: string; traceparent: string | null; createdAt: Date };

/**
 * PENDING runs created before `olderThan`, oldest first, one page after the (createdAt, id)
 * cursor. Such a run should have a fetch job; whether it does is asked of Redis.
 */
export async function pendingRunsOlderThan(db: pg.Pool | pg.ClientBase, olderThan: Date, after: { createdAt: Date; id: string } | null, limit: number): Promise<StrandedRun[]> {
  const { rows } = await db.query<StrandedRun>(
    `SELECT id, "tenantId", traceparent, "createdAt" FROM "Run"
     WHERE status = 'PENDING' AND "createdAt" <= $1
       AND ($2::timestamptz IS NULL OR ("createdAt", id) > ($2::timestamptz, $3::uuid))
     ORDER BY "createdAt", id
     LIMIT $4`,
    [olderThan, after?.createdAt ?? null, after?.id ?? null, limit],
  );
  return rows;
}

/** Which of these runs have no fetch job in Redis in any state (one pipelined round trip). */
export async function runsWithoutFetchJob(redis: Redis, producer: JobProducer, runs: StrandedRun[]): Promise<StrandedRun[]> {
  if (runs.length === 0) return [];
  const queue = producer.queue("fetch");
  const pipeline = redis.pipeline();
  for (const run of runs) pipeline.exists(queue.toKey(jobIdFor("fetch", run.id)));
  const reply = await execPipeline(pipeline);
  return runs.filter((_, i) => reply(i) === 0);
}

/**
 * The statuses of a run some stage is working on (or the next stage's job is waiting for).
 * PENDING is here for one case only: its fetch job failed without the fetch stage ever claiming
 * the run (the database was unreachable on every attempt); a missing fetch job is the PENDING
 * pass's (`runsWithoutFetchJob`).
 */
const IN_PROGRESS = ["PENDING", "FETCHING", "TRANSFORMING", "ENCRYPTING", "DELIVERING"] as const satisfies readonly RunStatus[];

/** BullMQ's reason for a job it failed because its workers kept dying on it (maxStalledCount). */
const STALLED_REASON = "job stalled more than allowable limit";

export type StuckRun = {
  id: string;
  tenantId: string;
  status: (typeof IN_PROGRESS)[number];
  updatedAt: Date;
  traceparent: string | null;
  staging: Record<string, unknown> | null;
  /**
   * The stage whose job the run waits for: the stage of its status, or the next one once that
   * stage has recorded its finish (the status changes only when the next stage claims the run;
   * a stage that finds its finish recorded only hands over again, so the next job is what counts).
   */
  stage: Stage;
  notifications: unknown;
  reportId: string;
  destinationKind: string | null;
  /** For a PENDING run: whether it may still start (see startRefusal). */
  trigger: "schedule" | "manual" | "retry";
  taskEnabled: boolean;
  taskDeletedAt: Date | null;
  tenantDisabled: boolean;
};

/**
 * Runs in a stage status whose last change is older than `olderThan`, oldest change first, one
 * page after the (updatedAt, id) cursor. Each should have a live job for `stage`.
 */
export async function stuckRunsOlderThan(db: pg.Pool | pg.ClientBase, olderThan: Date, after: { updatedAt: Date; id: string } | null, limit: number): Promise<StuckRun[]> {
  const { rows } = await db.query<StuckRun>(
    `SELECT r.id, r."tenantId", r.status, r."updatedAt", r.traceparent, r.staging,
       CASE r.status
         WHEN 'PENDING' THEN 'fetch'
         WHEN 'FETCHING' THEN CASE WHEN r."fetchFinishedAt" IS NOT NULL THEN 'transform' ELSE 'fetch' END
         WHEN 'TRANSFORMING' THEN CASE WHEN r."transformFinishedAt" IS NOT NULL THEN 'encrypt' ELSE 'transform' END
         WHEN 'ENCRYPTING' THEN CASE WHEN r."encryptFinishedAt" IS NOT NULL THEN 'deliver' ELSE 'encrypt' END
         ELSE 'deliver'
       END AS stage,
       t.notifications, t."reportId", d.kind AS "destinationKind",
       r.trigger, t.enabled AS "taskEnabled", t."deletedAt" AS "taskDeletedAt", tn.disabled AS "tenantDisabled"
     FROM "Run" r
     JOIN "Task" t ON t.id = r."taskId"
     JOIN "Tenant" tn ON tn.id = r."tenantId"
     LEFT JOIN "Destination" d ON d.id = t."destinationId"
     WHERE r.status = ANY($1::"RunStatus"[]) AND r."updatedAt" <= $2
       AND ($3::timestamptz IS NULL OR (r."updatedAt", r.id) > ($3::timestamptz, $4::uuid))
     ORDER BY r."updatedAt", r.id
     LIMIT $5`,
    [IN_PROGRESS, olderThan, after?.updatedAt ?? null, after?.id ?? null, limit],
  );
  return rows;
}

/**
 * What became of a run's stage job: `missing` (Redis lost it), `failed` (BullMQ gave up on it:
 * attempts exhausted, or stalled too often), `completed`, or `queued` (waiting, delayed, active:
 * someone will run it).
 */
export type StageJobState =
  | { state: "missing" | "completed" | "queued" }
  | { state: "failed"; failedReason: string | null; attemptsMade: number; stalledCount: number };

/** The state of each run's stage job, in one pipelined round trip. */
export async function stageJobStates(redis: Redis, producer: JobProducer, runs: StuckRun[]): Promise<StageJobState[]> {
  if (runs.length === 0) return [];
  const pipeline = redis.pipeline();
  for (const run of runs) {
    const queue = producer.queue(run.stage);
    const jobId = jobIdFor(run.stage, run.id);
    pipeline.exists(queue.toKey(jobId));
    pipeline.zscore(queue.toKey("failed"), jobId);
    pipeline.zscore(queue.toKey("completed"), jobId);
    pipeline.hmget(queue.toKey(jobId), "failedReason", "atm", "stc");
  }
  const reply = await execPipeline(pipeline);
  return runs.map((_, n): StageJobState => {
    const at = n * 4;
    if (reply(at) === 0) return { state: "missing" };
    if (reply(at + 1) !== null) {
      const [failedReason, attemptsMade, stalledCount] = reply(at + 3) as (string | null)[];
      return { state: "failed", failedReason: failedReason || null, attemptsMade: Number(attemptsMade ?? 0), stalledCount: Number(stalledCount ?? 0) };
    }
    if (reply(at + 2) !== null) return { state: "completed" };
    return { state: "queued" };
  });
}

/** Why a run whose stage job failed outside the stage's bookkeeping failed, in words a tenant can read. */
export function stuckFailure(stage: Stage, job: Extract<StageJobState, { state: "failed" }>): { message: string; errorCode: string } {
  if (job.failedReason === STALLED_REASON) {
    return {
      errorCode: "job_stalled",
      message: `the ${stage} job failed without recording why: its worker died (or lost the job's lock) in the middle of it ${job.stalledCount} times, so it was given up (this file may need more memory than a worker has)`,
    };
  }
  const attempts = job.attemptsMade === 1 ? "1 attempt" : `${job.attemptsMade} attempts`;
  return {
    errorCode: "job_failed",
    message: `the ${stage} job failed after ${attempts} without the run being marked failed: ${job.failedReason ?? "no reason recorded"}`,
  };
}

export interface StuckRecoveryDeps {
  pool: pg.Pool;
  redis: Redis;
  producer: JobProducer;
  logger: Logger;
  metrics: SchedulerMetrics;
  now: () => Date;
}

export type StuckRecoveryResult = { checked: number; reenqueued: number; failed: number; skipped: number };

/**
 * Recovers runs stuck in a stage status (FETCHING … DELIVERING) whose last change is older than
 * `olderThan`, at most `maxRuns` per pass, `pageSize` at a time:
 * - the stage job is missing (Redis lost it): enqueued again under the same job id (stages
 *   claim a run that has not finished, so the job simply runs the stage again);
 * - the stage job failed without the stage failing the run (the failure could not be written,
 *   or BullMQ failed a job that stalled too often without running the handler): the run is
 *   FAILED with the reason and the task's failure alert is raised, as a stage does;
 * - the job is waiting, delayed or active: left alone.
 * Every write is conditional on the run being as it was read (status and `updatedAt`), so a
 * worker that moves the run on meanwhile wins.
 */
export async function recoverStuckRuns(deps: StuckRecoveryDeps, olderThan: Date, options: { pageSize: number; maxRuns: number }): Promise<StuckRecoveryResult> {
  const { pool, producer, logger, metrics, now } = deps;
  const result: StuckRecoveryResult = { checked: 0, reenqueued: 0, failed: 0, skipped: 0 };
  let cursor: { updatedAt: Date; id: string } | null = null;
  while (result.checked < options.maxRuns) {
    const runs = await stuckRunsOlderThan(pool, olderThan, cursor, Math.min(options.pageSize, options.maxRuns - result.checked));
    result.checked += runs.length;
    const states = await stageJobStates(deps.redis, producer, runs);
    const lost: { run: StuckRun; payload: Record<string, unknown> }[] = [];
    const failing: { run: StuckRun; message: string; errorCode: string }[] = [];
    const skipping: { run: StuckRun; refusal: StartRefusal }[] = [];
    const odd: StuckRun[] = [];
    for (const [i, run] of runs.entries()) {
      const job = states[i]!;
      // A queued run that never began, and may no longer (its task deleted or disabled, its
      // account disabled), ends SKIPPED as the fetch stage would have ended it: no failure, no alert.
      const refusal = run.status === "PENDING" ? startRefusal({ trigger: run.trigger }, { enabled: run.taskEnabled, deletedAt: run.taskDeletedAt }, { disabled: run.tenantDisabled }) : null;
      if (job.state === "failed" && refusal) skipping.push({ run, refusal });
      else if (job.state === "failed") failing.push({ run, ...stuckFailure(run.stage, job) });
      else if (job.state === "completed") odd.push(run);
      else if (job.state === "missing" && run.status !== "PENDING") {
        // A later stage's input is the staging key the stage before it recorded on the run.
        const parsed = jobCatalog[run.stage].payload.safeParse({ ...(run.staging ?? {}), runId: run.id, tenantId: run.tenantId, trace: traceCarrierOf(run.traceparent) });
        if (parsed.success) lost.push({ run, payload: parsed.data });
        else failing.push({ run, errorCode: "job_lost", message: `the ${run.stage} job was lost from the queue and the run does not record its input, so it cannot be enqueued again` });
      }
    }
    if (lost.length > 0) {
      // Claim the re-enqueue: only runs still as read (a worker that moved one on wins), and
      // the new updatedAt gives the job a full grace period before the next look.
      const { rows } = await pool.query<{ id: string }>(
        `UPDATE "Run" r SET "updatedAt" = $4
         FROM unnest($1::uuid[], $2::"RunStatus"[], $3::timestamptz[]) AS s(id, status, seen)
         WHERE r.id = s.id AND r.status = s.status AND r."updatedAt" = s.seen
         RETURNING r.id`,
        [lost.map((l) => l.run.id), lost.map((l) => l.run.status), lost.map((l) => l.run.updatedAt), now()],
      );
      const claimed = new Set(rows.map((r) => r.id));
      const byStage = new Map<Stage, Record<string, unknown>[]>();
      for (const { run, payload } of lost) if (claimed.has(run.id)) byStage.set(run.stage, [...(byStage.get(run.stage) ?? []), payload]);
      for (const [stage, payloads] of byStage) {
        // Same job id as the original: if another replica enqueued it meanwhile, BullMQ keeps one job.
        await producer.enqueueBulk(stage, payloads as never[]);
        metrics.stuckRuns.add(payloads.length, { stage, action: "reenqueued" });
      }
      const reenqueued = lost.filter((l) => claimed.has(l.run.id));
      result.reenqueued += reenqueued.length;
      if (reenqueued.length > 0) {
        logger.warn(
          { runs: reenqueued.slice(0, 20).map((l) => ({ runId: l.run.id, status: l.run.status, stage: l.run.stage })), count: reenqueued.length },
          "reconciler enqueued again runs whose stage job was missing",
        );
      }
    }
    for (const { run, refusal } of skipping) {
      const { rowCount } = await pool.query(SKIP_REFUSED_RUN_SQL, skipRefusedRunParams(run.id, refusal, now()));
      if (!rowCount) continue;
      result.skipped += 1;
      metrics.stuckRuns.add(1, { stage: run.stage, action: "skipped" });
      metrics.runsSkipped.add(1, { reason: refusal.code });
      logger.info({ runId: run.id, tenantId: run.tenantId, reason: refusal.code }, "reconciler skipped a queued run that may no longer start");
    }
    for (const { run, message, errorCode } of failing) {
      const notify = hasNotificationSettings(run.notifications);
      const failed = await failStuckRun(pool, { runId: run.id, status: run.status, updatedAt: run.updatedAt, stage: run.stage, message, errorCode, notify, at: now() });
      if (!failed) continue;
      result.failed += 1;
      metrics.stuckRuns.add(1, { stage: run.stage, action: "failed" });
      metrics.runsFailed.add(1, { report: run.reportId, destination_kind: run.destinationKind ?? "unknown", stage: run.stage, reason: errorCode });
      logger.warn({ runId: run.id, tenantId: run.tenantId, status: run.status, stage: run.stage, errorCode, reason: message }, "reconciler failed a run whose stage job had failed without failing it");
      if (notify) {
        await producer
          .enqueue("notify", { runId: run.id, tenantId: run.tenantId, trace: traceCarrierOf(run.traceparent), outcome: "failed" })
          .catch((error: unknown) => logger.warn({ err: error, runId: run.id }, "could not enqueue the failure notification"));
      }
    }
    if (odd.length > 0) {
      logger.warn({ runs: odd.slice(0, 20).map((r) => ({ runId: r.id, status: r.status, stage: r.stage })), count: odd.length }, "runs in progress whose stage job completed without the stage recording its finish; left as they are");
    }
    const last = runs.at(-1);
    if (runs.length < options.pageSize || !last) break;
    cursor = { updatedAt: last.updatedAt, id: last.id };
  }
  if (result.checked >= options.maxRuns) logger.warn({ maxRuns: options.maxRuns }, "reconciler checked its most stuck-run candidates for one pass; the rest wait for the next");
  return result;
}
