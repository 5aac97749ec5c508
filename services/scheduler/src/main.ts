import { createPrisma } from "@transporter/db";
import { createManagedStore, createStagingStore } from "@transporter/storage";
import { createLogger, runServiceMain } from "@transporter/telemetry";
import { periodicSweeps, start } from "./index.js";

await runServiceMain("scheduler", async (config) => {
  // The periodic sweeps run here (see periodicSweeps).
  const prisma = createPrisma(config.DATABASE_URL, { poolSize: 2 });
  const staging = createStagingStore(config);
  const managed = createManagedStore(config);
  const logger = createLogger({ name: "scheduler", level: config.LOG_LEVEL });
  const sweeps = periodicSweeps({ prisma, staging, managed, config, logger });
  const service = await start(config, { sweeps, logger });
  return {
    async stop() {
      await service.stop();
      await prisma.$disconnect();
    },
  };
});
