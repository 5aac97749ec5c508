import { z } from "zod";
import type { GatewayApp } from "../app.js";
import { afterCursor, newestFirst, pageQuery, pageSchema, toPage } from "../pagination.js";

const auditView = z.object({
  id: z.string(), actorKeyId: z.string().nullable(), actorRole: z.string(), action: z.string(), targetType: z.string(),
  targetId: z.string().nullable(), before: z.unknown(), after: z.unknown(), requestId: z.string().nullable(), createdAt: z.string(),
});

/** Who changed what, when, newest first. */
export default async function auditEventRoutes(app: GatewayApp) {
  app.get(
    "/v1/audit-events",
    {
      schema: {
        tags: ["audit"],
        querystring: pageQuery.extend({ action: z.string().max(100).optional(), targetType: z.string().max(100).optional(), targetId: z.string().max(100).optional() }),
        response: { 200: pageSchema(auditView) },
      },
    },
    async (req) => {
      const { action, targetType, targetId, cursor, limit } = req.query;
      const rows = await req.db.auditEvent.findMany({
        where: { ...afterCursor(cursor), ...(action ? { action } : {}), ...(targetType ? { targetType } : {}), ...(targetId ? { targetId } : {}) },
        orderBy: newestFirst,
        take: limit + 1,
      });
      return toPage(rows, limit, (e) => ({
        id: e.id, actorKeyId: e.actorKeyId, actorRole: e.actorRole, action: e.action, targetType: e.targetType, targetId: e.targetId,
        before: e.before ?? null, after: e.after ?? null, requestId: e.requestId, createdAt: e.createdAt.toISOString(),
      }));
    },
  );
}
