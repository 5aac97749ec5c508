import type { Db } from "./client.js";

/** Models whose rows belong to one tenant (they carry `tenantId`). */
const TENANT_OWNED = new Set(["ApiKey", "EncryptionKey", "Source", "Destination", "Task", "Run", "Alert", "AuditEvent"]);
const WHERE_OPERATIONS = new Set([
  "findUnique", "findUniqueOrThrow", "findFirst", "findFirstOrThrow", "findMany", "update", "updateMany",
  "updateManyAndReturn", "delete", "deleteMany", "count", "aggregate", "groupBy", "upsert",
]);

export class TenantScopeError extends Error {
  override name = "TenantScopeError";
}

type Args = Record<string, unknown> & { where?: Record<string, unknown>; data?: unknown; create?: unknown; update?: unknown };

function withTenant(data: unknown, tenantId: string): unknown {
  if (Array.isArray(data)) return data.map((d) => withTenant(d, tenantId));
  if (data && typeof data === "object") {
    const record = { ...(data as Record<string, unknown>) };
    // Connecting a relation named `tenant` would let a caller pick another tenant: refuse it.
    if ("tenant" in record) throw new TenantScopeError("tenant relation cannot be set through a tenant-scoped client");
    record.tenantId = tenantId;
    return record;
  }
  return data;
}

function withoutTenantChange(data: unknown, tenantId: string): unknown {
  if (data && typeof data === "object" && !Array.isArray(data)) {
    const record = data as Record<string, unknown>;
    if ("tenant" in record || ("tenantId" in record && record.tenantId !== tenantId)) {
      throw new TenantScopeError("a row cannot be moved to another tenant");
    }
  }
  return data;
}

/**
 * A Prisma client that can only see and write one tenant's rows: `tenantId` is added to every
 * filter and every created row of a tenant-owned model, and the Tenant model itself is narrowed
 * to the one row. The gateway hands this client (never the raw one) to tenant routes, so a
 * cross-tenant read is impossible by construction: another tenant's id is simply "not found".
 */
export function tenantScoped(prisma: Db, tenantId: string): TenantDb {
  const scoped = prisma.$extends({
    name: "tenant-scope",
    query: {
      $allModels: {
        async $allOperations({ model, operation, args, query }) {
          const a = { ...(args as Args) };
          if (model === "Tenant") {
            if (!WHERE_OPERATIONS.has(operation)) throw new TenantScopeError(`Tenant.${operation} is not allowed in a tenant scope`);
            // AND, not a spread: a caller's own `id` filter must narrow further, never replace ours.
            const where = a.where ?? {};
            const and = where.AND === undefined ? [] : Array.isArray(where.AND) ? where.AND : [where.AND];
            a.where = { ...where, AND: [...and, { id: tenantId }] };
            return query(a);
          }
          if (!TENANT_OWNED.has(model)) return query(a);
          if (WHERE_OPERATIONS.has(operation)) a.where = { ...(a.where ?? {}), tenantId };
          if (operation === "create" || operation === "createMany" || operation === "createManyAndReturn") {
            a.data = withTenant(a.data, tenantId);
          }
          if (operation === "upsert") {
            a.create = withTenant(a.create, tenantId);
            a.update = withoutTenantChange(a.update, tenantId);
          }
          if (operation === "update" || operation === "updateMany" || operation === "updateManyAndReturn") {
            a.data = withoutTenantChange(a.data, tenantId);
          }
          return query(a);
        },
      },
    },
  });
  // The extension changes behaviour, not types: expose it with the plain client's type.
  return scoped as unknown as TenantDb;
}

/** A client that only sees one tenant's rows (same API as the plain client). */
export type TenantDb = Db & { readonly __tenantScoped?: true };
