import type { Db } from "@transporter/db";
import { generateApiKey, hashSecret, parseApiKey } from "./api-key.js";

/**
 * Make sure the operator key named in OPERATOR_API_KEY exists (first start of a fresh
 * deployment). Only its hash is stored; a revoked bootstrap key stays revoked.
 */
export async function ensureOperatorKey(prisma: Db, key: string): Promise<void> {
  const parsed = parseApiKey(key);
  if (!parsed) throw new Error("OPERATOR_API_KEY is not a key of the form tp_<prefix>_<secret>");
  await prisma.apiKey.upsert({
    where: { prefix: parsed.prefix },
    create: { prefix: parsed.prefix, secretHash: hashSecret(parsed.secret), role: "operator", name: "bootstrap operator key" },
    update: {},
  });
}

/** A new operator key (the `operator:create-key` command). */
export async function createOperatorKey(prisma: Db, name: string): Promise<{ id: string; key: string }> {
  const issued = generateApiKey();
  const row = await prisma.apiKey.create({ data: { prefix: issued.prefix, secretHash: issued.secretHash, role: "operator", name } });
  return { id: row.id, key: issued.key };
}
