import type { Db, Prisma } from "@transporter/db";
import { stagingRunPrefix } from "./staging/keys.js";
import type { StagingStore } from "./staging/types.js";

/** The subset of a pino-style logger the sweeps use. */
export interface SweepLogger {
  info(details: object, message: string): void;
  warn(details: object, message: string): void;
}

export interface SweepFailure {
  runId: string;
  tenantId: string;
  error: string;
}

/**
 * A sweep's position in its order of due runs: the time and id of the last run it looked at. A
 * sweep that gave up after too many failures returns it (`resumeAfter`), and the next sweep given
 * it (`startAfter`) goes on from there: runs that keep failing at the front of the order must not
 * hold up every run behind them for ever. The sweep after that starts from the front again.
 */
export interface SweepPosition {
  at: Date;
  id: string;
}

export interface ManagedSweepResult {
  removed: Array<{ runId: string; tenantId: string; path: string }>;
  failed: SweepFailure[];
  /** Where the next sweep should go on from: set when this one gave up after too many failures. */
  resumeAfter: SweepPosition | null;
}

const HOUR_MS = 60 * 60 * 1000;
const BATCH = 200;
/**
 * A sweep gives up after this many failures in a row (the store is most likely down: every
 * further attempt would only wait for its own timeout)…
 */
const MAX_FAILURES_IN_A_ROW = 20;
/** …or this many in all, so that one sweep's work and report stay bounded. */
const MAX_FAILURES = 200;

/** Counts a sweep's failures and says when it should give up; the runs left wait for the next sweep. */
class FailureLimit {
  private inARow = 0;
  private total = 0;
  reached = false;

  succeeded(): void {
    this.inARow = 0;
  }

  /** Records a failure; true when the sweep should stop. */
  failed(): boolean {
    this.inARow += 1;
    this.total += 1;
    this.reached = this.inARow >= MAX_FAILURES_IN_A_ROW || this.total >= MAX_FAILURES;
    return this.reached;
  }
}

/**
 * Runs whose `column` is at most `upTo`, after `cursor` in (column, id) order. Paging from the
 * last run seen steps over the runs that failed without listing them (a growing NOT IN list once
 * exceeded the database's parameter limit). gte bounds the index range scan; the OR then only
 * sorts out the runs sharing the cursor's time.
 */
function dueAfter(column: "fileExpiresAt" | "finishedAt", upTo: Date, cursor: SweepPosition | null): Prisma.RunWhereInput {
  if (!cursor) return { [column]: { lte: upTo } };
  return { [column]: { lte: upTo, gte: cursor.at }, OR: [{ [column]: { gt: cursor.at } }, { [column]: cursor.at, id: { gt: cursor.id } }] };
}

function failureOf(run: { id: string; tenantId: string }, error: unknown): SweepFailure {
  return { runId: run.id, tenantId: run.tenantId, error: error instanceof Error ? error.message : String(error) };
}

/**
 * Removes managed files whose retention has run out and marks their runs (fileDeletedAt).
 * A run is due when fileExpiresAt ≤ now: the deliverer sets it on managed deliveries only, at
 * delivery time, so a run delivered elsewhere is never touched, whatever its task's destination
 * is today. Idempotent: a file already gone
 * still marks the run, a marked run is never looked at again. A failing delete leaves the run
 * unmarked for the next sweep.
 *
 * Safe to run from several scheduler replicas at once: a run is reported (and logged) only by the
 * sweep whose update marked it, so each removal is reported once (deleting a file twice is harmless).
 */
export async function sweepManagedFiles(options: {
  prisma: Db;
  store: StagingStore;
  now: Date;
  logger?: SweepLogger;
  /** Go on after this position (the last sweep's resumeAfter); from the front if absent. */
  startAfter?: SweepPosition | null;
}): Promise<ManagedSweepResult> {
  const { prisma, store, now, logger } = options;
  const result: ManagedSweepResult = { removed: [], failed: [], resumeAfter: null };
  const limit = new FailureLimit();
  // Pages by (fileExpiresAt, id), served by the partial index "Run_fileExpiresAt_id_idx"
  // (unmarked runs with an expiry): each batch reads only due runs, not the whole table.
  const batchAfter = (cursor: SweepPosition | null) =>
    prisma.run.findMany({
      where: { fileDeletedAt: null, destinationPath: { not: null }, ...dueAfter("fileExpiresAt", now, cursor) },
      select: { id: true, tenantId: true, destinationPath: true, fileExpiresAt: true },
      orderBy: [{ fileExpiresAt: "asc" }, { id: "asc" }],
      take: BATCH,
    });
  let cursor: SweepPosition | null = options.startAfter ?? null;
  for (;;) {
    const runs = await batchAfter(cursor);
    for (const run of runs) {
      cursor = { at: run.fileExpiresAt as Date, id: run.id };
      const path = run.destinationPath as string;
      try {
        await store.delete(path);
        // The run's folder too: a delivery cut mid-write can leave a partial object beside the file.
        await store.deletePrefix(stagingRunPrefix(run.tenantId, run.id));
        const { count } = await prisma.run.updateMany({ where: { id: run.id, fileDeletedAt: null }, data: { fileDeletedAt: now } });
        // 0: another sweep marked it first, and reports it.
        if (count === 1) {
          const removed = { runId: run.id, tenantId: run.tenantId, path };
          result.removed.push(removed);
          // Logged at once: a sweep cut short later must not lose the record of what it removed.
          logger?.info(removed, "managed file removed by retention");
        }
        limit.succeeded();
      } catch (error) {
        const failure = failureOf(run, error);
        result.failed.push(failure);
        logger?.warn(failure, "managed file could not be removed; retrying at the next sweep");
        if (limit.failed()) break;
      }
    }
    if (limit.reached || runs.length < BATCH) break;
  }
  if (limit.reached) {
    result.resumeAfter = cursor;
    logger?.warn({ failed: result.failed.length }, "managed retention sweep stopped after too many failures; the runs left wait for the next sweep, which goes on after the last run tried");
  }
  logger?.info({ removed: result.removed.length, failed: result.failed.length }, "managed retention sweep done");
  return result;
}

export interface StagingSweepResult {
  runs: Array<{ runId: string; tenantId: string; objects: number }>;
  failed: SweepFailure[];
  /** Where the next sweep should go on from: set when this one gave up after too many failures. */
  resumeAfter: SweepPosition | null;
}

/**
 * Removes the staging objects of runs that finished (SUCCEEDED, FAILED, SKIPPED) more than
 * retentionHours ago and marks them (stagingDeletedAt). Everything under the run's staging prefix
 * goes, plus any key recorded in Run.staging outside it. Idempotent, bounded in failures and safe
 * from several replicas like sweepManagedFiles.
 *
 * With `managed`, the run's folder in the managed store goes too when the run reached delivery
 * but keeps no managed file there (it failed, or delivered elsewhere): a managed delivery cut off
 * mid-write (the process killed) leaves its temporary object behind, which nothing else removes.
 */
export async function sweepStaging(options: {
  prisma: Db;
  staging: StagingStore;
  /** The managed destination's store (see above). */
  managed?: StagingStore;
  now: Date;
  retentionHours: number;
  logger?: SweepLogger;
  /** Go on after this position (the last sweep's resumeAfter); from the front if absent. */
  startAfter?: SweepPosition | null;
}): Promise<StagingSweepResult> {
  const { prisma, staging, managed, now, logger } = options;
  const finishedBefore = new Date(now.getTime() - options.retentionHours * HOUR_MS);
  const result: StagingSweepResult = { runs: [], failed: [], resumeAfter: null };
  const limit = new FailureLimit();
  // Pages by (finishedAt, id), served by the partial index "Run_finishedAt_id_idx" (finished
  // runs not yet swept).
  const batchAfter = (cursor: SweepPosition | null) =>
    prisma.run.findMany({
      where: { status: { in: ["SUCCEEDED", "FAILED", "SKIPPED"] }, stagingDeletedAt: null, ...dueAfter("finishedAt", finishedBefore, cursor) },
      select: { id: true, tenantId: true, staging: true, finishedAt: true, deliverStartedAt: true, fileExpiresAt: true, fileDeletedAt: true },
      orderBy: [{ finishedAt: "asc" }, { id: "asc" }],
      take: BATCH,
    });
  let cursor: SweepPosition | null = options.startAfter ?? null;
  for (;;) {
    const runs = await batchAfter(cursor);
    let batchRuns = 0;
    let batchObjects = 0;
    for (const run of runs) {
      cursor = { at: run.finishedAt as Date, id: run.id };
      try {
        const prefix = stagingRunPrefix(run.tenantId, run.id);
        let objects = await staging.deletePrefix(prefix);
        for (const key of recordedKeys(run.staging)) {
          if (key.startsWith(prefix)) continue;
          if (await staging.stat(key)) objects += 1;
          await staging.delete(key);
        }
        const keepsManagedFile = run.fileExpiresAt !== null && run.fileDeletedAt === null;
        if (managed && run.deliverStartedAt !== null && !keepsManagedFile) await managed.deletePrefix(prefix);
        const { count } = await prisma.run.updateMany({ where: { id: run.id, stagingDeletedAt: null }, data: { stagingDeletedAt: now } });
        // 0: another sweep marked it first, and reports it.
        if (count === 1) {
          result.runs.push({ runId: run.id, tenantId: run.tenantId, objects });
          batchRuns += 1;
          batchObjects += objects;
        }
        limit.succeeded();
      } catch (error) {
        const failure = failureOf(run, error);
        result.failed.push(failure);
        logger?.warn(failure, "staging objects could not be removed; retrying at the next sweep");
        if (limit.failed()) break;
      }
    }
    // Logged per batch: a sweep cut short later must not lose the record of what it removed.
    if (batchRuns > 0) logger?.info({ runs: batchRuns, objects: batchObjects }, "staging objects removed by retention");
    if (limit.reached || runs.length < BATCH) break;
  }
  const objects = result.runs.reduce((sum, run) => sum + run.objects, 0);
  if (limit.reached) {
    result.resumeAfter = cursor;
    logger?.warn({ failed: result.failed.length }, "staging retention sweep stopped after too many failures; the runs left wait for the next sweep, which goes on after the last run tried");
  }
  logger?.info({ runs: result.runs.length, objects, failed: result.failed.length }, "staging retention sweep done");
  return result;
}

/** The string values of Run.staging ({ raw, report, encrypted }); anything else is ignored. */
function recordedKeys(staging: unknown): string[] {
  if (typeof staging !== "object" || staging === null || Array.isArray(staging)) return [];
  return Object.values(staging).filter((value): value is string => typeof value === "string" && value.length > 0);
}
