import { checkKeyExpiry, createPrisma } from "@transporter/db";
import { createManagedStore, createStagingStore, sweepManagedFiles, sweepStaging } from "@transporter/storage";
import { createLogger, runServiceMain } from "@transporter/telemetry";
import { start } from "./index.js";

await runServiceMain("scheduler", async (config) => {
  // The retention sweeps run here: staging objects (and managed leftovers) of finished runs, and expired managed files.
  const prisma = createPrisma(config.DATABASE_URL, { poolSize: 2 });
  const staging = createStagingStore(config);
  const managed = createManagedStore(config);
  const logger = createLogger({ name: "scheduler", level: config.LOG_LEVEL });
  const sweeps = [
    async () => void (await sweepStaging({ prisma, staging, managed, now: new Date(), retentionHours: config.STAGING_RETENTION_HOURS, logger })),
    async () => void (await sweepManagedFiles({ prisma, store: managed, now: new Date(), logger })),
    // Not retention, but periodic like it: alerts for active encryption keys close to (or past) their expiry.
    async () => void (await checkKeyExpiry({ prisma, now: new Date(), logger })),
  ];
  const service = await start(config, { sweeps, logger });
  return {
    async stop() {
      await service.stop();
      await prisma.$disconnect();
    },
  };
});
