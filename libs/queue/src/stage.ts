import { metrics, trace, type Span } from "@opentelemetry/api";
import { DelayedError, UnrecoverableError, type Job, type Worker } from "bullmq";
import type { Config } from "@transporter/config";
import { addRunNote, beginStage, RunLocks, RunLockWaitAbandoned, completeRun, finishStage, owedNotificationOutcome, skipUnstartedRun, hasNotificationSettings, raiseAlert, runFailedAlert, runFailureAlertKey, stageFinished, stageStatus, type Db, type Run, type StageRunFields, type StageTask, type Task, type Tenant } from "@transporter/db";
import { createLogger, shutdownGraceOver, startSpan, withTraceContext, type Logger } from "@transporter/telemetry";
import type { Redis } from "ioredis";
import { jobCatalog, type JobInput, type JobPayload, type Stage } from "./catalog.js";
import { errorCodeOf, isPermanent, retryAfterOf } from "./errors.js";
import { handBack, JobsUnderWay, settledOrAborted } from "./hand-back.js";
import { JobProducer } from "./producer.js";
import { createWorker } from "./worker.js";
import { logWorkerErrors } from "./connection.js";

type LoadedRun = Run & { task: StageTask; tenant: Tenant };

/** What a job does once it has let go of its run: queueing the notification the run owes. */
type Later = Array<() => Promise<void>>;

/** Fields of the run a stage produces (records, bytes, file name…). */
export type RunFields = StageRunFields;

/**
 * The run as this attempt claimed it: in this stage's status, with the attempt count its claim
 * wrote. The writes of a failing attempt (the failure, its reason) are made only while it still
 * holds it: an attempt whose job was taken over (its lock lapsed), or whose stage a later one
 * has passed the run on from, writes nothing, so a stale fetch cannot fail a run being delivered.
 */
function claimedBy(stage: Stage, run: { id: string; attempts: number }) {
  return { id: run.id, status: stageStatus(stage), attempts: run.attempts };
}

export interface StageContext<S extends Stage> {
  run: Run;
  task: Task;
  tenant: Tenant;
  payload: JobPayload<S>;
  job: Job;
  logger: Logger;
  span: Span;
  /**
   * Fields the stage produced for the run, written with the stage's finish in the same update
   * (one write per stage, and nobody sees the stage finished without its figures). Merged when
   * called more than once; discarded if the stage fails.
   */
  setRunFields(fields: RunFields): void;
  /**
   * Aborted when this attempt must stop before it writes anything more: its worker is stopping
   * and hands the job back (HandedBack, see close()), or, of an exclusive stage, the run's lock
   * was lost (RunLockLost). Passed to long calls, it ends them. The job is handed back only once
   * the handler has stopped (until then no other worker runs it), and nothing it returns is
   * recorded: a handler that ignores the signal holds up its worker's stop until the force-exit.
   */
  signal: AbortSignal;
  /**
   * Of an exclusive stage (see StageWorkerOptions.exclusive): `signal` again, aborted with
   * RunLockLost as its reason if the run's lock is lost to another attempt while the handler
   * works, or HandedBack. The handler must then stop before it writes anything more.
   */
  lockLost?: AbortSignal;
}

export interface StageCloseOptions {
  /**
   * When aborted, the jobs still under way are handed back (see hand-back.ts). By default the
   * process's stop grace period (shutdownGraceOver); without one, the close waits for them.
   */
  handBack?: AbortSignal;
}

/** What a stage hands to the next one: the staging key(s) of its output. */
export type StageOutput = Record<string, string>;

export interface StageWorkerOptions<S extends Stage> {
  stage: S;
  config: Config;
  prisma: Db;
  redis: Redis;
  /** Defaults to one built from redis + config. */
  producer?: JobProducer;
  logger?: Logger;
  /**
   * One attempt at a time per run, across workers (RunLocks): for a stage whose work cannot be
   * done twice at once, as a delivery writing to the customer's storage.
   */
  exclusive?: boolean;
  handler: (ctx: StageContext<S>) => Promise<StageOutput | void>;
}

const meter = () => metrics.getMeter("transporter-pipeline");
/** How long after it was created a run may still be put off because the platform asked to wait. */
const MAX_DEFERRAL_MS = 6 * 3600_000;
/** Tries at queueing a finished run's notification before the job fails (0.25, 0.5, 1 s apart). */
const NOTIFY_ENQUEUE_ATTEMPTS = 4;

/**
 * The bookkeeping every pipeline stage shares, so a service is only its handler:
 * - skips runs that are already finished (a duplicate or late job is harmless), and ends as
 *   SKIPPED a queued run whose task was deleted or disabled, or account disabled, before it began;
 * - records the stage status, start and finish times and attempts on the run;
 * - continues the run's trace from the job payload;
 * - on success enqueues the next stage (deliver: marks the run SUCCEEDED, then notify); if that
 *   enqueue fails after the commit, the retry only hands over again (or, for a finished run,
 *   makes sure its notify job exists) and never writes an error on a finished run;
 * - on a permanent error, or the last attempt of a transient one, marks the run FAILED with a
 *   readable reason, raises one alert per task and failure streak (none once the task is
 *   deleted: its alert went with it), and enqueues notify (notify: only for tasks with
 *   notification settings);
 * - on close, hands back the jobs still under way when the stop's grace period ends: the run is
 *   left in its stage, unwritten, for the next attempt to claim (see hand-back.ts).
 */
export function createStageWorker<S extends Stage>(options: StageWorkerOptions<S>): { worker: Worker; close(options?: StageCloseOptions): Promise<void> } {
  const { stage, config, prisma, redis } = options;
  const producer = options.producer ?? new JobProducer(redis, config.REDIS_PREFIX, { attempts: config.JOB_ATTEMPTS, backoffMs: config.JOB_BACKOFF_MS });
  const ownsProducer = !options.producer;
  const logger = options.logger ?? createLogger({ name: stage, level: config.LOG_LEVEL });
  const tracer = trace.getTracer("transporter-pipeline");
  const stageDuration = meter().createHistogram("transporter.stage.duration", { unit: "s", description: "Time one pipeline stage took for one run" });
  const runsStarted = meter().createCounter("transporter.runs.started", { description: "Runs whose first stage began", unit: "{run}" });
  const runsSucceeded = meter().createCounter("transporter.runs.succeeded", { description: "Runs delivered and verified", unit: "{run}" });
  const runsSkipped = meter().createCounter("transporter.runs.skipped", { description: "Queued runs not started: their task was deleted or disabled, or the account disabled, meanwhile", unit: "{run}" });
  const runsFailed = meter().createCounter("transporter.runs.failed", { description: "Runs that ended FAILED, by stage and reason", unit: "{run}" });
  const stageRetries = meter().createCounter("transporter.stage.retries", { description: "Stage attempts that failed and will be retried (delivery retries: stage=deliver)", unit: "{attempt}" });
  const bytesDelivered = meter().createCounter("transporter.delivered.bytes", { description: "Bytes of encrypted files delivered", unit: "By" });
  const recordsProcessed = meter().createCounter("transporter.records.processed", { description: "Source records fetched into runs", unit: "{record}" });

  const labels = (run: LoadedRun) => ({ report: run.task.reportId, destination_kind: run.task.destination.kind });
  /** Set when stop() gave up waiting for the jobs under way (Redis gone): see close(). */
  let cutOff = false;
  /** Set once close() begins: a job waiting for another attempt of its run stops waiting. */
  let stopping = false;
  const underWay = new JobsUnderWay();
  const runLocks = options.exclusive
    ? RunLocks.over(prisma, stage, {
        onLost: ({ relocked, lost }, error) => {
          const err = error ? { message: error.message } : undefined;
          if (relocked.length > 0) logger.warn({ runIds: relocked, err }, "lost the database connection holding these runs' locks while working on them; took the locks again on a new one");
          if (lost.length > 0) logger.error({ runIds: lost, err }, "lost these runs' locks with the database connection holding them, and could not take them again; their attempts stop (another attempt may be working on them)");
        },
      })
    : undefined;

  /**
   * Queues a finished run's notification. The run's outcome is already committed, so a failure
   * here is retried on the spot a few times (a Redis blip) before it fails the job: on the job's
   * last attempt nothing would retry it, and the notification would be lost.
   */
  async function enqueueNotify(input: JobInput<"notify">): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await producer.enqueue("notify", input);
        return;
      } catch (error) {
        if (attempt >= NOTIFY_ENQUEUE_ATTEMPTS) throw error;
        logger.warn({ runId: input.runId, attempt, err: { message: (error as Error).message } }, "could not queue the notification; trying again");
        await new Promise((resolve) => setTimeout(resolve, 250 * 2 ** (attempt - 1)));
      }
    }
  }

  async function failRun(run: LoadedRun, error: unknown, payload: JobPayload<S>, later: Later) {
    const message = (error as Error).message || "unknown error";
    const at = new Date();
    const notify = hasNotificationSettings(run.task.notifications);
    // The FAILED status, its alert and the notification it owes are one transaction: whoever sees
    // the run failed sees its alert, and the reconciler sees the notification owed.
    const failed = await prisma.$transaction(async (tx) => {
      const updated = await tx.run.updateMany({
        where: claimedBy(stage, run),
        data: { status: "FAILED", finishedAt: at, error: `${stage}: ${message}`, errorCode: errorCodeOf(error), notificationDueAt: notify ? at : null },
      });
      if (updated.count === 0) return false;
      // None for a deleted task (a run under way finishes, and may fail, after its task is deleted): see raiseAlert.
      await raiseAlert(tx, runFailedAlert({ tenantId: run.tenantId, taskId: run.taskId, runId: run.id, description: run.task.description, windowStart: run.windowStart, windowEnd: run.windowEnd }, stage, message));
      return true;
    });
    if (!failed) {
      logger.warn({ runId: run.id, stage, err: { message } }, "this attempt failed after the run moved on (another attempt or a later stage has it, or it finished); the run is left as it is");
      return;
    }
    runsFailed.add(1, { ...labels(run), stage, reason: errorCodeOf(error) });
    if (notify) later.push(() => enqueueNotify({ runId: run.id, tenantId: run.tenantId, trace: payload.trace, outcome: "failed" }));
  }

  /**
   * A job that finds its run finished may be the retry of the attempt that finished it and then
   * failed to enqueue the notification (Redis blipped after the commit): while the run still owes
   * its notification, it makes sure the notify job exists (job ids are deterministic, so when it
   * does this is a no-op). Once the notify job has handled it, nothing is queued again.
   */
  async function ensureNotified(payload: JobPayload<S>, status: string, later: Later) {
    const outcome = owedNotificationOutcome(status);
    if (!outcome) return;
    const finished = await prisma.run.findFirst({ where: { id: payload.runId, tenantId: payload.tenantId }, select: { notificationDueAt: true } });
    if (!finished?.notificationDueAt) return;
    later.push(() => enqueueNotify({ runId: payload.runId, tenantId: payload.tenantId, trace: payload.trace, outcome }));
  }

  /**
   * One job of this stage: claims the run, runs the handler, hands over or fails the run. The
   * notification a finished run owes goes into `later`, queued once the run's lock is released.
   * Once `abandon` is aborted (see StageContext.signal), the attempt writes nothing more on the
   * run: it waits for the handler to stop, then gives up.
   */
  async function processJob(payload: JobPayload<S>, job: Job, token: string | undefined, span: Span, later: Later, abandon: AbortSignal): Promise<void> {
    // Claims the run for this stage (status, start, attempt) unless it has finished or moved on.
    const begun = await beginStage(prisma, { runId: payload.runId, tenantId: payload.tenantId, stage, at: new Date() });
    if (begun.state === "missing") {
      logger.warn({ runId: payload.runId }, "run no longer exists; job dropped");
      return;
    }
    if (begun.state === "passed") {
      logger.warn({ runId: payload.runId, status: begun.status }, "a later stage has the run already; stale job ignored");
      return;
    }
    if (begun.state === "refused") {
      // A queued run whose task was deleted or disabled, or account disabled, before it began.
      if (await skipUnstartedRun(prisma, { runId: payload.runId, refusal: begun.refusal, at: new Date() })) runsSkipped.add(1, { reason: begun.refusal.code });
      logger.info({ runId: payload.runId, tenantId: payload.tenantId, reason: begun.refusal.code }, "queued run not started");
      return;
    }
    if (begun.state === "finished") {
      logger.info({ runId: payload.runId, status: begun.status }, "run already finished; job ignored");
      await ensureNotified(payload, begun.status, later);
      return;
    }
    const run: LoadedRun = { ...begun.run, task: begun.task, tenant: begun.tenant };
    span.setAttributes({ "transporter.task_id": run.taskId, "transporter.report": run.task.reportId, "transporter.destination_kind": run.task.destination.kind });
    // attempts counts this one already: the run's very first stage attempt starts it.
    if (stage === "fetch" && run.attempts === 1) runsStarted.add(1, { ...labels(run), trigger: run.trigger });
    const started = Date.now();
    const runLogger = logger.child({ runId: run.id, tenantId: run.tenantId, taskId: run.taskId, stage });
    let fields: RunFields = {};
    const setRunFields = (more: RunFields) => void (fields = { ...fields, ...more });
    try {
      // An earlier attempt committed this stage's finish and then failed to enqueue the next
      // stage: its output is on the run, so only the hand-off is done again (the work is not).
      if (stage !== "deliver" && stageFinished(run, stage)) {
        const next = jobCatalog[stage].next as Exclude<Stage, "fetch">;
        runLogger.info({ next }, "stage already finished; handing over again");
        await producer.enqueue(next, { runId: run.id, tenantId: run.tenantId, trace: payload.trace, ...((run.staging ?? {}) as Record<string, string>) } as never);
        return;
      }
      const handled = options.handler({ run, task: run.task, tenant: run.tenant, payload, job, logger: runLogger, span, setRunFields, signal: abandon, ...(options.exclusive ? { lockLost: abandon } : {}) });
      const output = (await settledOrAborted(handled, abandon)) ?? {};
      const staging = { ...((run.staging ?? {}) as Record<string, string>), ...output };
      const seconds = (Date.now() - started) / 1000;
      const records = stage === "fetch" && typeof fields.records === "number" ? fields.records : null;
      const bytes = stage === "deliver" && (typeof fields.bytes === "bigint" || typeof fields.bytes === "number") ? Number(fields.bytes) : null;
      if (records !== null) span.setAttribute("transporter.records", records);
      if (bytes !== null) span.setAttribute("transporter.bytes", bytes);
      // Counted once the result is committed: a retry after a failed write would count it twice.
      const countOutput = () => {
        stageDuration.record(seconds, { stage, report: run.task.reportId });
        if (records !== null) recordsProcessed.add(records, labels(run));
        if (bytes !== null) bytesDelivered.add(bytes, labels(run));
      };
      if (stage === "deliver") {
        const at = new Date();
        const notify = hasNotificationSettings(run.task.notifications);
        if (!(await completeRun(prisma, { runId: run.id, fields, staging, resolveAlertKey: runFailureAlertKey(run.taskId), notify, at }))) {
          // Failed meanwhile (its job stalled and the reconciler failed it): it stays FAILED, as
          // its alert and notification said, and its history says where the file went.
          const where = typeof fields.destinationPath === "string" ? ` to ${fields.destinationPath}` : "";
          const note = `deliver: the file was delivered${where} at ${at.toISOString()}, after the run had been marked failed; a retry delivers it again`;
          if (await addRunNote(prisma, run.id, note, { status: "FAILED" })) {
            runLogger.warn({ destinationPath: fields.destinationPath }, "delivered after the run was marked failed; it stays failed");
          } else {
            // Not failed: another attempt of this stage (its job taken over after its lock
            // lapsed) completed the run first, with the same file under the same name.
            runLogger.warn({ destinationPath: fields.destinationPath }, "another attempt completed this delivery first; nothing recorded");
          }
          return;
        }
        countOutput();
        runsSucceeded.add(1, labels(run));
        if (notify) later.push(() => enqueueNotify({ runId: run.id, tenantId: run.tenantId, trace: payload.trace, outcome: "succeeded" }));
        return;
      }
      if (!(await finishStage(prisma, { runId: run.id, stage: stage as Exclude<S, "deliver">, fields, staging, at: new Date() }))) {
        runLogger.warn("the run was finished meanwhile (failed while this stage worked); nothing handed over");
        return;
      }
      countOutput();
      const next = jobCatalog[stage].next as Exclude<Stage, "fetch">;
      await producer.enqueue(next, { runId: run.id, tenantId: run.tenantId, trace: payload.trace, ...output } as never);
    } catch (error) {
      // Cut off by a shutdown that stopped waiting for it, Redis being gone: not the run's
      // failure. The job keeps its lock until it lapses; then another worker retries it.
      // Or its run's lock was lost to another attempt, which carries the run on, or its worker
      // hands the job back: this attempt writes nothing on the run, which stays in this stage
      // for the next attempt to claim (its job, taken over or handed back, is not this one's).
      if (cutOff || abandon.aborted) throw error;
      // The platform asked to be left alone for longer than any of BullMQ's retries would wait (a
      // 429's Retry-After): the job waits that long and tries again, without using up an attempt,
      // for as long as the run is young enough. BullMQ's backoff would retry sooner, be refused
      // each time, and fail the run. Shorter asks take the ordinary retries.
      const wait = isPermanent(error) ? undefined : retryAfterOf(error);
      const longestBackoff = config.JOB_BACKOFF_MS * 2 ** Math.max(0, (job.opts.attempts ?? 1) - 1);
      if (wait !== undefined && wait > longestBackoff && token && Date.now() + wait - run.createdAt.getTime() <= MAX_DEFERRAL_MS) {
        runLogger.warn({ err: { message: (error as Error).message, code: errorCodeOf(error) }, waitMs: wait }, "the platform asked to wait; trying again then");
        await prisma.run.updateMany({
          where: claimedBy(stage, run),
          data: { error: `${stage}: waiting ${Math.ceil(wait / 1000)} s as the platform asked: ${(error as Error).message}` },
        });
        await job.moveToDelayed(Date.now() + wait, token);
        throw new DelayedError();
      }
      const attempts = job.opts.attempts ?? 1;
      const last = job.attemptsMade + 1 >= attempts;
      runLogger.warn({ err: { message: (error as Error).message, code: errorCodeOf(error) }, attempt: job.attemptsMade + 1, attempts, permanent: isPermanent(error) }, "stage failed");
      if (isPermanent(error) || last) {
        await failRun(run, error, payload, later);
        if (isPermanent(error)) throw new UnrecoverableError((error as Error).message);
      } else {
        stageRetries.add(1, { stage, reason: errorCodeOf(error), destination_kind: run.task.destination.kind });
        // Guarded: the failure may come after the run was finished (deliver's notify enqueue), or
        // moved on from this attempt.
        await prisma.run.updateMany({
          where: claimedBy(stage, run),
          data: { error: `${stage} attempt ${job.attemptsMade + 1} of ${attempts}: ${(error as Error).message}` },
        });
      }
      throw error;
    }
  }

  const worker = createWorker(
    stage,
    async (payload, job, token) => {
      // Taken as the worker paused (BullMQ's pause ends its wait for a job by taking one): no job
      // begins once stopping has, so it goes back to its queue untouched.
      if (stopping && token) {
        logger.info({ runId: payload.runId, stage }, "stopping: handed a job taken meanwhile back to its queue");
        await handBack(job, token, { begun: false });
      }
      return withTraceContext(payload.trace, () =>
        startSpan(tracer, `${stage} run`, { "transporter.stage": stage, "transporter.run_id": payload.runId, "transporter.tenant_id": payload.tenantId, "transporter.attempt": job.attemptsMade + 1 }, async (span) => {
          const later: Later = [];
          const attempt = underWay.begin();
          try {
            if (!runLocks) return await processJob(payload, job, token, span, later, attempt.signal);
            // One attempt at a time per run (see RunLocks): a job taken over while its first worker
            // still works on it waits for that attempt to end, then finds the run finished.
            return await runLocks.hold(payload.runId, (lockLost) => processJob(payload, job, token, span, later, AbortSignal.any([lockLost, attempt.signal])), {
              stopping: () => stopping,
              onWait: () => logger.warn({ runId: payload.runId }, "another attempt is working on this run; waiting for it to end"),
            });
          } catch (error) {
            // Stopped by this worker's stop (its work aborted, or its wait for the run's lock given
            // up): back to its queue, once the run's lock is let go, for another worker at once.
            // (Not one moved to wait for the platform meanwhile: it is no longer this worker's.)
            if (token && !(error instanceof DelayedError) && (attempt.signal.aborted || error instanceof RunLockWaitAbandoned)) {
              logger.warn({ runId: payload.runId, stage }, "stopping: handed the job back to its queue; another worker takes it up");
              await handBack(job, token, { begun: true });
            }
            throw error;
          } finally {
            attempt.end();
            // Outside the run's lock: a notification waits on Redis, however long it is away, and
            // a run whose outcome is committed has nothing left to keep apart.
            for (const send of later) await send();
          }
        }),
      );
    },
    { connection: redis, prefix: config.REDIS_PREFIX, concurrency: config[jobCatalog[stage].concurrencyKey], lockDurationMs: config.JOB_LOCK_MS },
  );
  logWorkerErrors(worker, logger, "worker error");
  return {
    worker,
    /**
     * Waits for the jobs under way, unless Redis is gone (see closeWorker); those still running
     * when `handBack` is aborted are handed back.
     */
    async close(closeOptions: StageCloseOptions = {}) {
      stopping = true;
      const handBackSignal = closeOptions.handBack ?? shutdownGraceOver();
      const handBackAll = () => underWay.handBackAll();
      if (handBackSignal.aborted) handBackAll();
      handBackSignal.addEventListener("abort", handBackAll, { once: true });
      try {
        await worker.close();
      } finally {
        handBackSignal.removeEventListener("abort", handBackAll);
      }
      // At once: a job that gave up meanwhile must not fail its run (see the stage's catch).
      if (worker.closeOutcome !== "closed") cutOff = true;
      // Jobs cut off still run: their runs stay locked until they end (see RunLocks.close).
      await runLocks?.close();
      if (ownsProducer) await producer.close();
    },
  };
}
