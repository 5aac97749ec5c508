import { randomUUID } from "node:crypto";
import { z } from "zod";
import { sealJson, unsealJson } from "@transporter/crypto";
import { raiseAlert, refreshSetupAlerts, resolveAlert } from "@transporter/db";
import { Prisma } from "@transporter/db";
import type { Source, TenantDb } from "@transporter/db";
import { getReport } from "@transporter/reports";
import { isSourceApi, platformFromConfig, SOURCE_APIS, type Platform, type SourceApi, type SourceCredentials, type VerifyResult } from "@transporter/sources";
import type { GatewayApp } from "../app.js";
import { writeAudit } from "../audit.js";
import { afterCursor, newestFirst, pageQuery, pageSchema, toPage } from "../pagination.js";
import { conflict, notFound, Problem } from "../problem.js";
import { withTenantLocked, type Transaction } from "../row-locks.js";
import { idParams, nameText } from "./views.js";

const secret = z.string().trim().min(1).max(512);
const credentialsSchema = z.object({ consumerKey: secret, consumerSecret: secret, token: secret, tokenSecret: secret }).strict();
const accountIdSchema = z.string().trim().regex(/^[A-Za-z0-9_-]{1,64}$/, "must be the platform account id (letters, digits, - or _)");

const createBody = z
  .object({
    name: nameText,
    kind: z.literal("liveperson").default("liveperson"),
    /** Defaults to the tenant's platform account. */
    accountId: accountIdSchema.optional(),
    /** Write-only; never returned. */
    credentials: credentialsSchema,
  })
  .strict();

const updateBody = z
  .object({
    name: nameText.optional(),
    accountId: accountIdSchema.optional(),
    /** Replaces the stored key as a whole; verified before it is saved. */
    credentials: credentialsSchema.optional(),
  })
  .strict()
  .refine((b) => Object.keys(b).length > 0, "send at least one of name, accountId, credentials");

const apiVerdict = z.object({ ok: z.boolean(), code: z.string().optional(), message: z.string().optional() });

export const sourceView = z.object({
  id: z.string(),
  name: z.string(),
  kind: z.literal("liveperson"),
  accountId: z.string(),
  /** APIs the key may use, as found by the last verification. */
  permissions: z.array(z.string()).nullable(),
  /** Always true: credentials are stored sealed and never returned. */
  credentialsSet: z.boolean(),
  verifiedAt: z.string().nullable(),
  lastError: z.string().nullable(),
  createdAt: z.string(),
  updatedAt: z.string(),
});
type SourceView = z.infer<typeof sourceView>;

const verification = z.object({
  ok: z.boolean(),
  /** APIs the key may use. */
  allowed: z.array(z.string()),
  /** Per API: allowed, or why not (missing_permission, data_access_not_enabled, …). */
  apis: z.record(z.string(), apiVerdict),
  /** APIs this source's tasks need that the key may not use. */
  missing: z.array(z.string()),
  error: z.object({ code: z.string(), message: z.string() }).optional(),
});

export function toSourceView(s: Source): SourceView {
  return {
    id: s.id,
    name: s.name,
    kind: "liveperson",
    accountId: s.accountId,
    permissions: Array.isArray(s.permissions) ? (s.permissions as string[]) : null,
    credentialsSet: s.sealedCredentials.length > 0,
    verifiedAt: s.verifiedAt?.toISOString() ?? null,
    lastError: s.lastError,
    createdAt: s.createdAt.toISOString(),
    updatedAt: s.updatedAt.toISOString(),
  };
}

/** The sealing context of a source's credentials (the fetcher opens them with the same). */
export function sourceCredentialsContext(tenantId: string, sourceId: string): string {
  return `tenant:${tenantId}/source:${sourceId}`;
}

/**
 * Writes a change made from `read` only if the row is still that version (same `updatedAt`, not
 * deleted). Verification is a network round trip: a change based on a read that another request
 * changed meanwhile would undo that change, e.g. put a key back on a source deleted (and wiped) meanwhile.
 */
async function writeIfUnchanged(db: Transaction, read: Source, data: Prisma.SourceUpdateManyMutationInput): Promise<Source> {
  const [updated] = await db.source.updateManyAndReturn({
    where: { id: read.id, deletedAt: null, updatedAt: read.updatedAt },
    // Always a new version, even within the millisecond of the one read.
    data: { ...data, updatedAt: new Date(Math.max(Date.now(), read.updatedAt.getTime() + 1)) },
  });
  if (updated) return updated;
  if (!(await db.source.findUnique({ where: { id: read.id, deletedAt: null }, select: { id: true } }))) throw notFound("source");
  throw conflict("the source changed meanwhile; read it again and retry");
}

function unverifiable(result: VerifyResult): Problem {
  const error = result.error ?? { code: "unverifiable", message: "the source could not be verified" };
  const path = error.code === "bad_credentials" ? "credentials" : error.code === "unknown_account" ? "accountId" : "source";
  return new Problem(422, "Source could not be verified", error.message, { code: error.code, errors: [{ path, message: error.message }] });
}

function verificationView(result: VerifyResult, needed: SourceApi[]) {
  return {
    ok: result.verified,
    allowed: result.allowed,
    apis: result.apis as Record<string, z.infer<typeof apiVerdict>>,
    missing: result.verified ? needed.filter((api) => !result.allowed.includes(api)) : needed,
    ...(result.error ? { error: result.error } : {}),
  };
}

/**
 * A source may read its tenant's own platform account, or an account no other tenant has (a
 * brand's second account). Another tenant's account is refused before any call to the platform:
 * the account's data, and the request budget its fetches share, are that tenant's.
 */
async function assertAccountUsable(prisma: GatewayApp["deps"]["prisma"], tenantId: string, accountId: string): Promise<void> {
  const owner = await prisma.tenant.findUnique({ where: { accountId }, select: { id: true } });
  if (owner && owner.id !== tenantId) {
    const message = `platform account ${accountId} belongs to another Transporter account; a source may read this account's own platform account or one no other Transporter account has`;
    throw new Problem(403, "Platform account not available", message, { errors: [{ path: "accountId", message }] });
  }
}

/**
 * Sources: the platform API keys a tenant's reports read from. A key is verified (domain
 * discovery plus one cheap call per API) before it is saved; the answer lists the APIs it may
 * use. Credentials are sealed per row, never returned and never logged.
 */
export default async function sourceRoutes(app: GatewayApp) {
  const { keyring } = app.deps;
  let platform = app.deps.sourcePlatform as Platform | undefined;
  const platformOf = (): Platform => (platform ??= platformFromConfig(app.deps.config, app.deps.redis));
  const admin = { preHandler: app.requireRole("admin") };

  function openCredentials(source: Source): SourceCredentials {
    try {
      return unsealJson<SourceCredentials>(source.sealedCredentials, keyring, sourceCredentialsContext(source.tenantId, source.id));
    } catch {
      throw new Problem(422, "Stored credentials unreadable", "the stored credentials of this source cannot be opened; send them again with PATCH");
    }
  }

  /** APIs the (live) tasks reading from this source need. */
  async function neededApis(db: TenantDb, sourceId: string): Promise<SourceApi[]> {
    const tasks = await db.task.findMany({ where: { sourceId, deletedAt: null }, select: { reportId: true } });
    const apis = new Set<SourceApi>();
    for (const task of tasks) {
      try {
        const api = getReport(task.reportId).definition.source;
        if (isSourceApi(api)) apis.add(api);
      } catch {
        /* an unknown report is the task's problem, not the source's */
      }
    }
    return [...apis];
  }

  app.post(
    "/v1/sources",
    { ...admin, schema: { tags: ["sources"], body: createBody, response: { 201: sourceView.extend({ verification }) } } },
    async (req, reply) => {
      const tenantId = req.auth!.tenantId!;
      const tenant = await app.deps.prisma.tenant.findUniqueOrThrow({ where: { id: tenantId }, select: { accountId: true } });
      const accountId = req.body.accountId ?? tenant.accountId;
      await assertAccountUsable(app.deps.prisma, tenantId, accountId);
      const result = await platformOf().verifySource(req.body.credentials, accountId, SOURCE_APIS);
      if (!result.verified) throw unverifiable(result);

      // The id is chosen first: it is part of the credentials' sealing context.
      const id = randomUUID();
      // With its audit event in one transaction (the verification above stays outside it).
      const source = await req.db.$transaction(async (tx) => {
        const created = await tx.source.create({
          data: {
            id,
            name: req.body.name,
            kind: "liveperson",
            accountId,
            sealedCredentials: sealJson(req.body.credentials, keyring, sourceCredentialsContext(tenantId, id)),
            permissions: result.allowed as Prisma.InputJsonValue,
            verifiedAt: new Date(),
            lastError: null,
          } as Prisma.SourceUncheckedCreateInput,
        });
        await writeAudit(tx, req, { action: "source.create", targetType: "source", targetId: id, after: toSourceView(created) });
        return created;
      });
      const view = toSourceView(source);
      await refreshSetupAlerts(app.deps.prisma, tenantId);
      return reply.status(201).send({ ...view, verification: verificationView(result, []) });
    },
  );

  app.get("/v1/sources", { schema: { tags: ["sources"], querystring: pageQuery, response: { 200: pageSchema(sourceView) } } }, async (req) => {
    const { cursor, limit } = req.query;
    const rows = await req.db.source.findMany({ where: { deletedAt: null, ...afterCursor(cursor) }, orderBy: newestFirst, take: limit + 1 });
    return toPage(rows, limit, toSourceView);
  });

  app.get("/v1/sources/:id", { schema: { tags: ["sources"], params: idParams, response: { 200: sourceView } } }, async (req) => {
    const source = await req.db.source.findUnique({ where: { id: req.params.id, deletedAt: null } });
    if (!source) throw notFound("source");
    return toSourceView(source);
  });

  app.patch(
    "/v1/sources/:id",
    { ...admin, schema: { tags: ["sources"], params: idParams, body: updateBody, response: { 200: sourceView.extend({ verification: verification.optional() }) } } },
    async (req) => {
      const source = await req.db.source.findUnique({ where: { id: req.params.id, deletedAt: null } });
      if (!source) throw notFound("source");
      const before = toSourceView(source);
      const data: Prisma.SourceUpdateManyMutationInput = {};
      if (req.body.name !== undefined && req.body.name !== source.name) data.name = req.body.name;
      let result: VerifyResult | undefined;
      let needed: SourceApi[] = [];
      if (req.body.credentials !== undefined || (req.body.accountId !== undefined && req.body.accountId !== source.accountId)) {
        const credentials = req.body.credentials ?? openCredentials(source);
        const accountId = req.body.accountId ?? source.accountId;
        await assertAccountUsable(app.deps.prisma, source.tenantId, accountId);
        result = await platformOf().verifySource(credentials, accountId, SOURCE_APIS);
        if (!result.verified) throw unverifiable(result);
        needed = await neededApis(req.db, source.id);
        data.accountId = accountId;
        if (req.body.credentials !== undefined) data.sealedCredentials = sealJson(credentials, keyring, sourceCredentialsContext(source.tenantId, source.id));
        data.permissions = result.allowed as Prisma.InputJsonValue;
        data.verifiedAt = new Date();
        data.lastError = null;
      }
      // Nothing to change (the name and account it has): answered as it is, with no event.
      if (Object.keys(data).length === 0) return before;
      // The change and its audit event together: neither without the other.
      const view = await req.db.$transaction(async (tx) => {
        const after = toSourceView(await writeIfUnchanged(tx, source, data));
        await writeAudit(tx, req, { action: "source.update", targetType: "source", targetId: source.id, before, after });
        return after;
      });
      if (result?.verified) await resolveAlert(app.deps.prisma, source.tenantId, `source.verification:${source.id}`);
      return { ...view, ...(result ? { verification: verificationView(result, needed) } : {}) };
    },
  );

  app.delete("/v1/sources/:id", { ...admin, schema: { tags: ["sources"], params: idParams } }, async (req, reply) => {
    const source = await req.db.source.findUnique({ where: { id: req.params.id, deletedAt: null } });
    if (!source) throw notFound("source");
    // Under the tenant's row lock, which task changes hold while they check and write: a task
    // created or pointed here meanwhile is either seen here or sees the source gone.
    await withTenantLocked(req.db, source.tenantId, async (tx) => {
      const live = await tx.task.findMany({ where: { sourceId: source.id, deletedAt: null }, select: { description: true } });
      if (live.length > 0) {
        const names = live.slice(0, 5).map((t) => `"${t.description}"`).join(", ");
        throw conflict(`${live.length} task(s) read from this source (${names}); delete them or point them at another source first`);
      }
      // Soft delete: the run history of deleted tasks still references the row; the key is wiped now.
      // Of deletes at once, the first deletes (and is audited, with the row as it was under its
      // lock: a change may have gone first); the others find it gone.
      await tx.$queryRaw`SELECT id FROM "Source" WHERE id = ${source.id}::uuid AND "tenantId" = ${source.tenantId}::uuid FOR NO KEY UPDATE`;
      const before = await tx.source.findUnique({ where: { id: source.id, deletedAt: null } });
      if (!before) throw notFound("source");
      await tx.source.update({ where: { id: source.id }, data: { deletedAt: new Date(), sealedCredentials: "", permissions: Prisma.DbNull } });
      await writeAudit(tx, req, { action: "source.delete", targetType: "source", targetId: source.id, before: toSourceView(before) });
    });
    await resolveAlert(app.deps.prisma, source.tenantId, `source.verification:${source.id}`);
    await refreshSetupAlerts(app.deps.prisma, source.tenantId);
    return reply.status(204).send();
  });

  app.post(
    "/v1/sources/:id/verify",
    { ...admin, schema: { tags: ["sources"], params: idParams, response: { 200: verification.extend({ source: sourceView }) } } },
    async (req) => {
      const source = await req.db.source.findUnique({ where: { id: req.params.id, deletedAt: null } });
      if (!source) throw notFound("source");
      // The account may have been onboarded as its own tenant since the source was saved.
      await assertAccountUsable(app.deps.prisma, source.tenantId, source.accountId);
      const result = await platformOf().verifySource(openCredentials(source), source.accountId, SOURCE_APIS);
      const needed = await neededApis(req.db, source.id);
      const view = verificationView(result, needed);
      const dedupeKey = `source.verification:${source.id}`;
      const problem = result.error?.message ?? (view.missing.length > 0 ? `the API key may not use ${view.missing.join(", ")}, which this source's tasks need` : null);
      // Only onto the key verified: one replaced or deleted meanwhile keeps what its own change wrote.
      // Verification may change what the source may use (its permissions): audited with the write.
      // A problem's alert too, while the write holds the row: a delete waits for it and then
      // resolves it; raised after a delete's commit, nothing could.
      const updated = await req.db.$transaction(async (tx) => {
        const after = await writeIfUnchanged(
          tx,
          source,
          result.verified ? { permissions: result.allowed as Prisma.InputJsonValue, verifiedAt: new Date(), lastError: problem } : { lastError: problem },
        );
        await writeAudit(tx, req, { action: "source.verify", targetType: "source", targetId: source.id, before: toSourceView(source), after: toSourceView(after) });
        if (problem) {
          await raiseAlert(tx, {
            tenantId: source.tenantId,
            kind: "source.verification",
            severity: "error",
            title: `Source "${source.name}" failed verification`,
            message: problem,
            dedupeKey,
          });
        }
        return after;
      });
      if (!problem) await resolveAlert(app.deps.prisma, source.tenantId, dedupeKey);
      return { ...view, source: toSourceView(updated) };
    },
  );
}
