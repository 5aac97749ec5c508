import type { Db } from "@transporter/db";
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

export interface ManagedSweepResult {
  removed: Array<{ runId: string; tenantId: string; path: string }>;
  failed: SweepFailure[];
}

const HOUR_MS = 60 * 60 * 1000;
const BATCH = 200;

/**
 * Removes managed files whose retention has run out and marks their runs (fileDeletedAt).
 * A run is due when fileExpiresAt ≤ now: the deliverer sets it on managed deliveries only, at
 * delivery time, so a run delivered elsewhere is never touched, whatever its task's destination
 * is today. Idempotent: a file already gone
 * still marks the run, a marked run is never looked at again. A failing delete leaves the run
 * unmarked for the next sweep.
 */
export async function sweepManagedFiles(options: {
  prisma: Db;
  store: StagingStore;
  now: Date;
  logger?: SweepLogger;
}): Promise<ManagedSweepResult> {
  const { prisma, store, now, logger } = options;
  const result: ManagedSweepResult = { removed: [], failed: [] };
  const failedIds: string[] = [];
  for (;;) {
    const runs = await prisma.run.findMany({
      where: {
        fileDeletedAt: null,
        destinationPath: { not: null },
        id: { notIn: failedIds },
        fileExpiresAt: { lte: now },
      },
      select: { id: true, tenantId: true, destinationPath: true },
      orderBy: { id: "asc" },
      take: BATCH,
    });
    if (runs.length === 0) break;
    for (const run of runs) {
      const path = run.destinationPath as string;
      try {
        await store.delete(path);
        // The run's folder too: a delivery cut mid-write can leave a partial object beside the file.
        await store.deletePrefix(stagingRunPrefix(run.tenantId, run.id));
        await prisma.run.updateMany({ where: { id: run.id, fileDeletedAt: null }, data: { fileDeletedAt: now } });
        result.removed.push({ runId: run.id, tenantId: run.tenantId, path });
      } catch (error) {
        failedIds.push(run.id);
        result.failed.push({ runId: run.id, tenantId: run.tenantId, error: error instanceof Error ? error.message : String(error) });
      }
    }
  }
  for (const item of result.removed) logger?.info(item, "managed file removed by retention");
  for (const item of result.failed) logger?.warn(item, "managed file could not be removed; retrying at the next sweep");
  logger?.info({ removed: result.removed.length, failed: result.failed.length }, "managed retention sweep done");
  return result;
}

export interface StagingSweepResult {
  runs: Array<{ runId: string; tenantId: string; objects: number }>;
  failed: SweepFailure[];
}

/**
 * Removes the staging objects of runs that finished (SUCCEEDED, FAILED, SKIPPED) more than
 * retentionHours ago and marks them (stagingDeletedAt). Everything under the run's staging prefix
 * goes, plus any key recorded in Run.staging outside it. Idempotent like sweepManagedFiles.
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
}): Promise<StagingSweepResult> {
  const { prisma, staging, managed, now, logger } = options;
  const finishedBefore = new Date(now.getTime() - options.retentionHours * HOUR_MS);
  const result: StagingSweepResult = { runs: [], failed: [] };
  const failedIds: string[] = [];
  for (;;) {
    const runs = await prisma.run.findMany({
      where: {
        status: { in: ["SUCCEEDED", "FAILED", "SKIPPED"] },
        finishedAt: { lte: finishedBefore },
        stagingDeletedAt: null,
        id: { notIn: failedIds },
      },
      select: { id: true, tenantId: true, staging: true, deliverStartedAt: true, fileExpiresAt: true, fileDeletedAt: true },
      orderBy: { id: "asc" },
      take: BATCH,
    });
    if (runs.length === 0) break;
    for (const run of runs) {
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
        await prisma.run.updateMany({ where: { id: run.id, stagingDeletedAt: null }, data: { stagingDeletedAt: now } });
        result.runs.push({ runId: run.id, tenantId: run.tenantId, objects });
      } catch (error) {
        failedIds.push(run.id);
        result.failed.push({ runId: run.id, tenantId: run.tenantId, error: error instanceof Error ? error.message : String(error) });
      }
    }
  }
  const objects = result.runs.reduce((sum, run) => sum + run.objects, 0);
  for (const item of result.failed) logger?.warn(item, "staging objects could not be removed; retrying at the next sweep");
  logger?.info({ runs: result.runs.length, objects, failed: result.failed.length }, "staging retention sweep done");
  return result;
}

/** The string values of Run.staging ({ raw, report, encrypted }); anything else is ignored. */
function recordedKeys(staging: unknown): string[] {
  if (typeof staging !== "object" || staging === null || Array.isArray(staging)) return [];
  return Object.values(staging).filter((value): value is string => typeof value === "string" && value.length > 0);
}
