import { z } from "zod";
import { isUniqueViolation, refreshSetupAlerts } from "@transporter/db";
import type { GatewayApp } from "../app.js";
import { generateApiKey } from "../api-key.js";
import { writeAudit } from "../audit.js";
import { afterCursor, newestFirst, pageQuery, pageSchema, toPage } from "../pagination.js";
import { conflict, notFound } from "../problem.js";
import { apiKeyView, idParams, nameText, tenantView, timezoneField, toApiKeyView, toTenantView } from "./views.js";

const createTenantBody = z.object({
  name: nameText,
  accountId: z.string().trim().regex(/^[0-9A-Za-z_-]{1,40}$/, "must be the platform account number"),
  timezone: timezoneField.optional(),
  taskLimit: z.number().int().min(0).max(100_000).optional(),
}).strict();
const patchTenantBody = z
  .object({ name: nameText, taskLimit: z.number().int().min(0).max(100_000), disabled: z.boolean() })
  .partial()
  .strict()
  .refine((b) => Object.keys(b).length > 0, "send at least one of name, taskLimit, disabled");

/** Operators: create and manage tenants (brands). */
export default async function tenantRoutes(app: GatewayApp) {
  const { prisma } = app.deps;
  // These routes use the unscoped client: besides the gateway-wide rule, operators only.
  app.addHook("preHandler", app.requireRole("operator"));

  app.post(
    "/v1/tenants",
    { schema: { tags: ["tenants"], summary: "Create a tenant and its first admin key", body: createTenantBody, response: { 201: z.object({ tenant: tenantView, adminApiKey: apiKeyView.extend({ key: z.string() }) }) } } },
    async (req, reply) => {
      const issued = generateApiKey();
      try {
        const { tenant, key } = await prisma.$transaction(async (tx) => {
          const tenant = await tx.tenant.create({ data: { name: req.body.name, accountId: req.body.accountId, timezone: req.body.timezone ?? null, taskLimit: req.body.taskLimit ?? 50 } });
          const key = await tx.apiKey.create({ data: { tenantId: tenant.id, name: "admin (created with the account)", prefix: issued.prefix, secretHash: issued.secretHash, role: "admin" } });
          // In the same transaction: once it commits, nothing may stop the one-time admin key from
          // being returned (without it the tenant is locked out, and a retry is a 409).
          await writeAudit(tx, req, { tenantId: tenant.id, action: "tenant.create", targetType: "tenant", targetId: tenant.id, after: toTenantView(tenant) });
          return { tenant, key };
        });
        // Setup reminders can be refreshed by any later change; a failure here must not lose the key.
        await refreshSetupAlerts(prisma, tenant.id).catch((error: unknown) => req.log.warn({ err: error, tenantId: tenant.id }, "setup alerts not refreshed for the new tenant"));
        return reply.status(201).send({ tenant: toTenantView(tenant), adminApiKey: { ...toApiKeyView(key), key: issued.key } });
      } catch (error) {
        if (isUniqueViolation(error)) throw conflict(`a tenant for account ${req.body.accountId} already exists`);
        throw error;
      }
    },
  );

  app.get("/v1/tenants", { schema: { tags: ["tenants"], querystring: pageQuery, response: { 200: pageSchema(tenantView) } } }, async (req) => {
    const rows = await prisma.tenant.findMany({ where: afterCursor(req.query.cursor), orderBy: newestFirst, take: req.query.limit + 1 });
    return toPage(rows, req.query.limit, toTenantView);
  });

  app.get("/v1/tenants/:id", { schema: { tags: ["tenants"], params: idParams, response: { 200: tenantView } } }, async (req) => {
    const tenant = await prisma.tenant.findUnique({ where: { id: req.params.id } });
    if (!tenant) throw notFound("tenant");
    return toTenantView(tenant);
  });

  app.patch("/v1/tenants/:id", { schema: { tags: ["tenants"], params: idParams, body: patchTenantBody, response: { 200: tenantView } } }, async (req) => {
    const tenant = await prisma.$transaction(async (tx) => {
      // Read under the row's lock (as withTenantLocked takes it) and audited in the same
      // transaction: with changes at once, each event's "before" is the previous one's "after".
      await tx.$queryRaw`SELECT id FROM "Tenant" WHERE id = ${req.params.id}::uuid FOR NO KEY UPDATE`;
      const before = await tx.tenant.findUnique({ where: { id: req.params.id } });
      if (!before) throw notFound("tenant");
      // Nothing to change: answered as it is, with no event.
      if (Object.entries(req.body).every(([field, value]) => before[field as keyof typeof req.body] === value)) return before;
      const after = await tx.tenant.update({ where: { id: before.id }, data: req.body });
      await writeAudit(tx, req, { tenantId: after.id, action: "tenant.update", targetType: "tenant", targetId: after.id, before: toTenantView(before), after: toTenantView(after) });
      return after;
    });
    return toTenantView(tenant);
  });
}
