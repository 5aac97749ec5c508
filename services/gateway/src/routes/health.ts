import { z } from "zod";
import type { GatewayApp } from "../app.js";

export default async function healthRoutes(app: GatewayApp) {
  app.get("/healthz", { schema: { tags: ["health"], security: [], response: { 200: z.object({ status: z.literal("ok") }) } } }, async () => ({ status: "ok" as const }));

  app.get(
    "/readyz",
    { schema: { tags: ["health"], security: [], response: { 200: z.object({ status: z.string(), checks: z.record(z.string(), z.string()) }), 503: z.object({ status: z.string(), checks: z.record(z.string(), z.string()) }) } } },
    async (_req, reply) => {
      const checks: Record<string, string> = {};
      const probe = async (name: string, fn: () => Promise<unknown>) => {
        try {
          await Promise.race([fn(), new Promise((_, reject) => setTimeout(() => reject(new Error("timeout")), 2000))]);
          checks[name] = "ok";
        } catch (error) {
          checks[name] = `unreachable: ${(error as Error).message.slice(0, 120)}`;
        }
      };
      const { redis } = app.deps;
      // Not connected: say so at once. A PING sent now would wait in ioredis's offline queue
      // until Redis is back (our connections never give up on a command), one more per probe.
      const pingRedis = async () => {
        if (redis.status !== "ready") throw new Error(`not connected (${redis.status})`);
        return redis.ping();
      };
      await Promise.all([probe("database", () => app.deps.prisma.$queryRaw`SELECT 1`), probe("redis", pingRedis)]);
      const ready = Object.values(checks).every((c) => c === "ok");
      return reply.status(ready ? 200 : 503).send({ status: ready ? "ready" : "not ready", checks });
    },
  );
}
