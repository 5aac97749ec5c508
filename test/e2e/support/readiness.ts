import type { QueueName } from "@transporter/queue";
import type { ProcessGroup, ServiceName } from "./processes.js";
import type { QueueInspector } from "./queues.js";
import { FatalWaitError, waitFor } from "./wait.js";

/** The queues each worker service consumes (one BullMQ worker per queue and process). */
export const SERVICE_QUEUES: Record<ServiceName, QueueName[]> = {
  gateway: [],
  scheduler: [],
  fetcher: ["fetch"],
  transformer: ["transform"],
  encryptor: ["encrypt"],
  deliverer: ["deliver", "notify"],
};

/**
 * Waits until every running process of the group is serving: the gateway answers /readyz, and
 * each queue has as many registered workers as there are live processes consuming it. Fails at
 * once, with the process's output, if one of them exits on its own.
 */
export async function waitUntilReady(group: ProcessGroup, inspector: QueueInspector, gatewayUrl: string | undefined, timeoutMs: number): Promise<void> {
  const expected = new Map<QueueName, number>();
  for (const service of Object.keys(SERVICE_QUEUES) as ServiceName[]) {
    for (const queue of SERVICE_QUEUES[service]) expected.set(queue, (expected.get(queue) ?? 0) + group.live(service).length);
  }
  const checkCrash = () => {
    try {
      group.assertNoCrash();
    } catch (error) {
      throw new FatalWaitError(error as Error);
    }
  };
  if (gatewayUrl && group.live("gateway").length > 0) {
    await waitFor(
      "the gateway to be ready",
      async () => {
        checkCrash();
        const res = await fetch(`${gatewayUrl}/readyz`);
        return res.status === 200;
      },
      { timeoutMs, intervalMs: 500, context: () => group.describe() },
    );
  }
  await waitFor(
    `workers on ${[...expected].map(([q, n]) => `${q}×${n}`).join(", ")}`,
    async () => {
      checkCrash();
      for (const [queue, count] of expected) if ((await inspector.workerCount(queue)) < count) return false;
      return true;
    },
    { timeoutMs, intervalMs: 500, context: () => group.describe() },
  );
}
