import type { Config } from "@transporter/config";
import { checkKeyExpiry, type Db } from "@transporter/db";
import { sweepManagedFiles, sweepStaging, type StagingStore, type SweepPosition } from "@transporter/storage";
import type { Logger } from "@transporter/telemetry";
import { checkFileNameClashes } from "./file-name-clashes.js";

/**
 * The periodic sweeps the scheduler runs (every RETENTION_SWEEP_INTERVAL_MS), the same whether it
 * runs alone (services/scheduler/src/main.ts) or with every service in one process
 * (scripts/system.ts): staging objects of finished runs, with what a managed delivery cut off
 * mid-write left behind; managed files past their retention; and, periodic like them, alerts for
 * active encryption keys close to (or past) their expiry and for tasks that overwrite each
 * other's files.
 */
export function periodicSweeps(deps: {
  prisma: Db;
  staging: StagingStore;
  managed: StagingStore;
  config: Pick<Config, "STAGING_RETENTION_HOURS">;
  logger: Logger;
  now?: () => Date;
}): Array<() => Promise<void>> {
  const { prisma, staging, managed, config, logger } = deps;
  const now = deps.now ?? (() => new Date());
  // Where each retention sweep that gave up after too many failures goes on from next time.
  let stagingFrom: SweepPosition | null = null;
  let managedFrom: SweepPosition | null = null;
  return [
    async () => {
      stagingFrom = (await sweepStaging({ prisma, staging, managed, now: now(), retentionHours: config.STAGING_RETENTION_HOURS, logger, startAfter: stagingFrom })).resumeAfter;
    },
    async () => {
      managedFrom = (await sweepManagedFiles({ prisma, store: managed, now: now(), logger, startAfter: managedFrom })).resumeAfter;
    },
    async () => void (await checkKeyExpiry({ prisma, now: now(), logger })),
    async () => void (await checkFileNameClashes({ prisma, logger })),
  ];
}
