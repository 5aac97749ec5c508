import { z } from "zod";
import type { GatewayApp } from "../app.js";
import { generateApiKey } from "../api-key.js";
import { writeAudit } from "../audit.js";
import { withTenantLocked } from "../row-locks.js";
import { afterCursor, newestFirst, pageQuery, pageSchema, toPage } from "../pagination.js";
import { conflict, notFound } from "../problem.js";
import { apiKeyView, idParams, nameText, toApiKeyView } from "./views.js";

/** A tenant's API keys: created (secret shown once), listed without secrets, revoked. */
export default async function apiKeyRoutes(app: GatewayApp) {
  app.post(
    "/v1/api-keys",
    { schema: { tags: ["api-keys"], body: z.object({ name: nameText, role: z.enum(["admin", "viewer"]) }).strict(), response: { 201: apiKeyView.extend({ key: z.string() }) } } },
    async (req, reply) => {
      const issued = generateApiKey();
      // With its audit event in one transaction: no working key that was never audited.
      const key = await req.db.$transaction(async (tx) => {
        const created = await tx.apiKey.create({ data: { name: req.body.name, role: req.body.role, prefix: issued.prefix, secretHash: issued.secretHash } as never });
        await writeAudit(tx, req, { action: "api_key.create", targetType: "api_key", targetId: created.id, after: toApiKeyView(created) });
        return created;
      });
      return reply.status(201).send({ ...toApiKeyView(key), key: issued.key });
    },
  );

  app.get("/v1/api-keys", { schema: { tags: ["api-keys"], querystring: pageQuery, response: { 200: pageSchema(apiKeyView) } } }, async (req) => {
    const rows = await req.db.apiKey.findMany({ where: afterCursor(req.query.cursor), orderBy: newestFirst, take: req.query.limit + 1 });
    return toPage(rows, req.query.limit, toApiKeyView);
  });

  app.delete("/v1/api-keys/:id", { schema: { tags: ["api-keys"], params: idParams, response: { 200: apiKeyView } } }, async (req) => {
    const tenantId = req.auth!.tenantId!;
    // Under the tenant's row lock, so two admins revoking each other's keys cannot both succeed,
    // and audited in the same transaction. A key already revoked is answered as it is, unaudited:
    // of revokes at once, one revokes and is audited.
    const revoked = await withTenantLocked(req.db, tenantId, async (tx) => {
      const key = await tx.apiKey.findUnique({ where: { id: req.params.id } });
      if (!key) throw notFound("API key");
      if (key.revokedAt) return key;
      if (key.role === "admin" && (await tx.apiKey.count({ where: { role: "admin", revokedAt: null, id: { not: key.id } } })) === 0) {
        // No operator route makes a key for an existing tenant: the account would be locked out for good.
        throw conflict("this is the account's last admin key: create another admin key before revoking it");
      }
      const after = await tx.apiKey.update({ where: { id: key.id }, data: { revokedAt: new Date() } });
      await writeAudit(tx, req, { action: "api_key.revoke", targetType: "api_key", targetId: key.id, before: toApiKeyView(key), after: toApiKeyView(after) });
      return after;
    });
    return toApiKeyView(revoked);
  });
}
