import { createBullBoard } from "@bull-board/api";
import { BullMQAdapter } from "@bull-board/api/bullMQAdapter";
import { FastifyAdapter } from "@bull-board/fastify";
import { QUEUE_NAMES } from "@transporter/queue";
import type { GatewayApp } from "./app.js";
import { Problem } from "./problem.js";

export const ADMIN_QUEUES_PATH = "/admin/queues";

/**
 * The operators' queue dashboard (bull-board). Behind the same authentication as the API with
 * an operator key; browsers can send it as the password of HTTP Basic auth.
 */
export async function registerQueueDashboard(app: GatewayApp): Promise<void> {
  const adapter = new FastifyAdapter();
  adapter.setBasePath(ADMIN_QUEUES_PATH);
  createBullBoard({
    queues: QUEUE_NAMES.map((name) => new BullMQAdapter(app.deps.queues.queue(name), { readOnlyMode: false })),
    serverAdapter: adapter,
    options: { uiConfig: { boardTitle: "Transporter queues" } },
  });
  // bull-board answers errors inside its own plugin scope: keep them problem+json there too.
  adapter.setErrorHandler((error: Error) => {
    const problem = error instanceof Problem ? error : new Problem(500, "Internal error", "the queue dashboard failed");
    return { status: problem.status as 200, body: problem.toJSON() as Record<string, unknown> };
  });
  await app.register(adapter.registerPlugin() as never, { prefix: ADMIN_QUEUES_PATH });
}
