import type { FastifyRequest } from "fastify";
import type { Db, Prisma } from "@transporter/db";

export interface AuditEntry {
  action: string;
  targetType: string;
  targetId?: string | null;
  /** Snapshots without secrets: callers pass the API view of the object, never the row. */
  before?: unknown;
  after?: unknown;
  /** For operator actions on a tenant. */
  tenantId?: string | null;
}

/** Who changed what, when. Callers pass API views (credentials are never part of them). */
export async function writeAudit(prisma: Pick<Db, "auditEvent">, req: FastifyRequest, entry: AuditEntry): Promise<void> {
  const json = (value: unknown) => (value === undefined ? undefined : (JSON.parse(JSON.stringify(value)) as Prisma.InputJsonValue));
  await prisma.auditEvent.create({
    data: {
      tenantId: entry.tenantId ?? req.auth?.tenantId ?? null,
      actorKeyId: req.auth?.keyId ?? null,
      actorRole: req.auth?.role ?? "system",
      action: entry.action,
      targetType: entry.targetType,
      targetId: entry.targetId ?? null,
      before: json(entry.before),
      after: json(entry.after),
      requestId: req.id,
    },
  });
}
