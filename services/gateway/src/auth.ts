import type { FastifyReply, FastifyRequest } from "fastify";
import type { ApiKeyRole } from "@transporter/db";
import { tenantScoped, type Db, type TenantDb } from "@transporter/db";
import { parseApiKey, secretMatches } from "./api-key.js";
import { Problem } from "./problem.js";

export interface AuthContext {
  keyId: string;
  role: ApiKeyRole;
  /** null for operator keys. */
  tenantId: string | null;
}

/** Writing lastUsedAt on every request would turn reads into writes; once a minute is plenty. */
const LAST_USED_RESOLUTION_MS = 60_000;

const unauthorized = (detail: string) =>
  new Problem(401, "Unauthorized", detail, { type: "https://transporter.dev/problems/unauthorized" });

/** Resolve `Authorization: Bearer tp_…` to the key's role and tenant, or throw 401/403. */
export async function authenticate(prisma: Db, header: string | undefined): Promise<AuthContext> {
  if (!header) throw unauthorized("send an API key as `Authorization: Bearer <key>`");
  const [scheme, credential] = header.split(" ", 2);
  let token = credential;
  // Browsers (the queue dashboard) send the key as the password of HTTP Basic auth.
  if (scheme?.toLowerCase() === "basic" && credential) token = Buffer.from(credential, "base64").toString("utf8").split(":").slice(1).join(":");
  else if (scheme?.toLowerCase() !== "bearer") token = undefined;
  if (!token) throw unauthorized("use the Bearer scheme: `Authorization: Bearer <key>`");
  const parsed = parseApiKey(token.trim());
  if (!parsed) throw unauthorized("the API key is malformed");
  const key = await prisma.apiKey.findUnique({ where: { prefix: parsed.prefix }, include: { tenant: true } });
  // Same answer for unknown, wrong and revoked keys: do not help anyone probe for prefixes.
  if (!key || !secretMatches(parsed.secret, key.secretHash) || key.revokedAt) {
    throw unauthorized("the API key is not valid (unknown or revoked)");
  }
  if (key.tenant?.disabled) throw new Problem(403, "Forbidden", "this account is disabled; contact your operator");
  if (!key.lastUsedAt || Date.now() - key.lastUsedAt.getTime() > LAST_USED_RESOLUTION_MS) {
    await prisma.apiKey.update({ where: { id: key.id }, data: { lastUsedAt: new Date() } });
  }
  return { keyId: key.id, role: key.role, tenantId: key.tenantId };
}

/**
 * Tenant-scoped clients, one per tenant, reused across requests. A route never sees the raw
 * client for tenant data, so it cannot read another tenant's rows by mistake.
 */
export class TenantClients {
  private readonly clients = new Map<string, TenantDb>();
  constructor(private readonly prisma: Db, private readonly max = 1000) {}

  for(tenantId: string): TenantDb {
    let client = this.clients.get(tenantId);
    if (!client) {
      if (this.clients.size >= this.max) this.clients.delete(this.clients.keys().next().value!);
      client = tenantScoped(this.prisma, tenantId);
      this.clients.set(tenantId, client);
    }
    return client;
  }
}

/** preHandler: only these roles may call the route. Tenant routes also need a tenant key. */
export function requireRole(...roles: ApiKeyRole[]) {
  return async (req: FastifyRequest, _reply: FastifyReply) => {
    const auth = req.auth;
    if (!auth) throw unauthorized("authentication required");
    if (!roles.includes(auth.role)) {
      const detail = auth.role === "viewer" ? "viewer keys may only read" : `this needs a key with role ${roles.join(" or ")}`;
      throw new Problem(403, "Forbidden", detail);
    }
  };
}
