import type { Db } from "@transporter/db";
import { FatalWaitError, waitFor } from "./wait.js";

const FINISHED = ["SUCCEEDED", "FAILED", "SKIPPED"] as const;

/** How many of the runs are in each status (straight from the database). */
export async function runStatusCounts(prisma: Db, runIds: string[]): Promise<Record<string, number>> {
  const groups = await prisma.run.groupBy({ by: ["status"], where: { id: { in: runIds } }, _count: { _all: true } });
  return Object.fromEntries(groups.map((g) => [g.status, g._count._all]));
}

/**
 * Waits until every run has finished (SUCCEEDED, FAILED or SKIPPED), reading the database the
 * services write. `check` runs on every probe (e.g. to stop at once when a service crashed);
 * `context` is added to the timeout error.
 */
export async function waitForRunsToFinish(
  prisma: Db,
  runIds: string[],
  options: { timeoutMs: number; check?: () => void; context?: () => string | Promise<string> },
): Promise<void> {
  await waitFor(
    `${runIds.length} runs to finish`,
    async () => {
      try {
        options.check?.();
      } catch (error) {
        throw new FatalWaitError(error as Error);
      }
      const finished = await prisma.run.count({ where: { id: { in: runIds }, status: { in: [...FINISHED] } } });
      return finished === runIds.length;
    },
    {
      timeoutMs: options.timeoutMs,
      intervalMs: 1000,
      context: async () => `statuses: ${JSON.stringify(await runStatusCounts(prisma, runIds))}\n${options.context ? await options.context() : ""}`,
    },
  );
}
