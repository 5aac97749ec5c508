import type { Db } from "./client.js";
import type { Destination, EncryptionKey, Source } from "./generated/client.js";
import { sqlRows } from "./pipeline-sql.js";

/**
 * The rows the pipeline stages look up for every run, in plain SQL for the same reason as
 * `run-stages.ts`. Each is scoped to the tenant and ignores deleted rows, as the model
 * queries they replace did.
 */

/**
 * The task's source, unless deleted, and whether its platform account is now another tenant's
 * (an account no tenant had when the source was saved, onboarded since as its own tenant).
 */
export async function liveSource(db: Db, tenantId: string, sourceId: string): Promise<(Source & { accountOfAnotherTenant: boolean }) | null> {
  const [source] = await sqlRows<Source & { accountOfAnotherTenant: boolean }>(
    db,
    `SELECT s.*, EXISTS (SELECT 1 FROM "Tenant" t WHERE t."accountId" = s."accountId" AND t.id <> s."tenantId") AS "accountOfAnotherTenant"
     FROM "Source" s WHERE s.id = $1::uuid AND s."tenantId" = $2::uuid AND s."deletedAt" IS NULL`,
    [sourceId, tenantId],
  );
  return source ?? null;
}

/** The task's destination, unless deleted. */
export async function liveDestination(db: Db, tenantId: string, destinationId: string): Promise<Destination | null> {
  const [destination] = await sqlRows<Destination>(db, `SELECT * FROM "Destination" WHERE id = $1::uuid AND "tenantId" = $2::uuid AND "deletedAt" IS NULL`, [destinationId, tenantId]);
  return destination ?? null;
}

/** The tenant's active encryption key (at most one is active: a partial unique index). */
export async function activeEncryptionKey(db: Db, tenantId: string): Promise<EncryptionKey | null> {
  const [key] = await sqlRows<EncryptionKey>(db, `SELECT * FROM "EncryptionKey" WHERE "tenantId" = $1::uuid AND active AND "deletedAt" IS NULL LIMIT 1`, [tenantId]);
  return key ?? null;
}

/** Whether the key still exists (not deleted). */
export async function encryptionKeyExists(db: Db, keyId: string): Promise<boolean> {
  const rows = await sqlRows(db, `SELECT 1 FROM "EncryptionKey" WHERE id = $1::uuid AND "deletedAt" IS NULL`, [keyId]);
  return rows.length > 0;
}
