import { z } from "zod";
import type { Alert } from "@transporter/db";
import type { GatewayApp } from "../app.js";
import { writeAudit } from "../audit.js";
import { afterCursor, pageQuery, pageSchema, toPage } from "../pagination.js";
import { notFound } from "../problem.js";
import { idParams } from "./views.js";

const alertView = z.object({
  id: z.string(), kind: z.string(), severity: z.string(), title: z.string(), message: z.string(),
  taskId: z.string().nullable(), runId: z.string().nullable(), destinationId: z.string().nullable(),
  occurrences: z.number(), firstSeenAt: z.string(), lastSeenAt: z.string(),
  acknowledgedAt: z.string().nullable(), resolvedAt: z.string().nullable(), state: z.enum(["open", "acknowledged", "resolved"]),
});

const toAlertView = (a: Alert): z.infer<typeof alertView> => ({
  id: a.id, kind: a.kind, severity: a.severity, title: a.title, message: a.message, taskId: a.taskId, runId: a.runId,
  destinationId: a.destinationId, occurrences: a.occurrences, firstSeenAt: a.firstSeenAt.toISOString(), lastSeenAt: a.lastSeenAt.toISOString(),
  acknowledgedAt: a.acknowledgedAt?.toISOString() ?? null, resolvedAt: a.resolvedAt?.toISOString() ?? null,
  state: a.resolvedAt ? "resolved" : a.acknowledgedAt ? "acknowledged" : "open",
});

/** Setup reminders and failures, newest first; acknowledging keeps the alert in history. */
export default async function alertRoutes(app: GatewayApp) {
  app.get(
    "/v1/alerts",
    { schema: { tags: ["alerts"], querystring: pageQuery.extend({ state: z.enum(["open", "acknowledged", "resolved", "all"]).default("all"), kind: z.string().max(100).optional() }), response: { 200: pageSchema(alertView) } } },
    async (req) => {
      const { state, kind, cursor, limit } = req.query;
      const stateFilter =
        state === "open" ? { resolvedAt: null, acknowledgedAt: null } : state === "acknowledged" ? { resolvedAt: null, acknowledgedAt: { not: null } } : state === "resolved" ? { resolvedAt: { not: null } } : {};
      // Newest first by when each alert was first seen, which never changes: ordered by its latest
      // activity instead, an alert repeating while a client pages would jump over the cursor and
      // be skipped. The cursor holds firstSeenAt where other lists hold createdAt.
      const rows = await req.db.alert.findMany({ where: { ...stateFilter, ...(kind ? { kind } : {}), ...afterCursor(cursor, "firstSeenAt") }, orderBy: [{ firstSeenAt: "desc" }, { id: "desc" }], take: limit + 1 });
      return toPage(rows.map((r) => ({ ...r, createdAt: r.firstSeenAt })), limit, toAlertView);
    },
  );

  app.post("/v1/alerts/:id/ack", { schema: { tags: ["alerts"], params: idParams, response: { 200: alertView } } }, async (req) => {
    const { id } = req.params;
    const acked = await req.db.$transaction(async (tx) => {
      // Acknowledged once: only an alert not acknowledged yet is written (a second ack, even one
      // at the same moment, finds it acknowledged under the row's lock and changes nothing), and
      // only that write is audited, in its own transaction.
      const { count } = await tx.alert.updateMany({ where: { id, acknowledgedAt: null }, data: { acknowledgedAt: new Date(), acknowledgedBy: req.auth!.keyId } });
      if (count > 0) await writeAudit(tx, req, { action: "alert.ack", targetType: "alert", targetId: id });
      // The alert as stored, whoever acknowledged it.
      return tx.alert.findUnique({ where: { id } });
    });
    if (!acked) throw notFound("alert");
    return toAlertView(acked);
  });
}
