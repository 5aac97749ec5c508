import { randomUUID } from "node:crypto";
import { isDeepStrictEqual } from "node:util";
import { z } from "zod";
import { sealJson, unsealJson } from "@transporter/crypto";
import { QUEUED_RUN_REFUSED_SQL, raiseAlert, resolveAlert, RUN_IN_PROGRESS } from "@transporter/db";
import type { Destination, Prisma } from "@transporter/db";
import { BlockedEndpointError, createDestinationRegistry, createManagedStore, DESTINATION_KINDS } from "@transporter/storage";
import type { AnyDestinationAdapter, DestinationError, DestinationKind, DestinationRegistry, StagingStore } from "@transporter/storage";
import type { GatewayApp } from "../app.js";
import { writeAudit } from "../audit.js";
import { afterCursor, newestFirst, pageQuery, pageSchema, toPage } from "../pagination.js";
import { badRequest, conflict, notFound, Problem } from "../problem.js";
import type { FieldProblem } from "../problem.js";
import { withTenantLocked, type Transaction } from "../row-locks.js";
import { idParams, nameText } from "./views.js";

const settings = z.record(z.string(), z.unknown());

const createBody = z
  .object({
    name: nameText,
    kind: z.enum(DESTINATION_KINDS as [DestinationKind, ...DestinationKind[]]),
    config: settings.default({}),
    /** Write-only; never returned. Managed destinations take none. */
    credentials: settings.nullable().optional(),
  })
  .strict();

const updateBody = z
  .object({
    name: nameText.optional(),
    /** Merged into the stored settings; a key set to null is removed. */
    config: z.record(z.string(), z.unknown().nullable()).optional(),
    /** Replaces the stored credentials as a whole. */
    credentials: settings.nullable().optional(),
  })
  .strict()
  .refine((b) => Object.keys(b).length > 0, "send at least one of name, config, credentials");

export const destinationView = z.object({
  id: z.string(),
  name: z.string(),
  kind: z.enum(DESTINATION_KINDS as [DestinationKind, ...DestinationKind[]]),
  config: z.record(z.string(), z.unknown()),
  /** Whether credentials are stored; they are never returned. */
  credentialsSet: z.boolean(),
  verifiedAt: z.string().nullable(),
  lastError: z.string().nullable(),
  createdAt: z.string(),
  updatedAt: z.string(),
});
type DestinationView = z.infer<typeof destinationView>;

const verification = z.object({ ok: z.boolean(), details: z.string().optional(), error: z.object({ code: z.string(), message: z.string() }).optional() });

export function toDestinationView(d: Destination): DestinationView {
  return {
    id: d.id,
    name: d.name,
    kind: d.kind,
    config: (d.config ?? {}) as Record<string, unknown>,
    credentialsSet: d.sealedCredentials !== null,
    verifiedAt: d.verifiedAt?.toISOString() ?? null,
    lastError: d.lastError,
    createdAt: d.createdAt.toISOString(),
    updatedAt: d.updatedAt.toISOString(),
  };
}

/** The sealing context of a destination's credentials (the deliverer opens them with the same). */
function credentialsContext(tenantId: string, destinationId: string): string {
  return `tenant:${tenantId}/destination:${destinationId}`;
}

/** Settings whose change means "another server": a pinned host key no longer applies. */
const SERVER_IDENTITY = ["host", "port"];
/**
 * Settings that say where the stored credentials are sent. Credentials are write-only: an admin
 * moving a destination elsewhere sends them again, so a stored password or token never goes to
 * a server it was not given for.
 */
const CREDENTIALS_RECIPIENT = ["host", "port", "endpoint", "apiEndpoint"];

/**
 * The fields an adapter's settings or credentials schema knows: its object's shape (refinements
 * keep it; a transform's is its input's), or null when it is not one object (managed credentials,
 * which refuse any field themselves).
 */
function fieldsOf(schema: z.ZodType): string[] | null {
  const { shape, in: input } = schema as { shape?: unknown; in?: z.ZodType };
  if (shape && typeof shape === "object") return Object.keys(shape);
  return input ? fieldsOf(input) : null;
}

/**
 * Problems for the fields of a request's `config` or `credentials` the adapter does not know: its
 * schema would drop them, and a misspelt `foldr` would be saved as if it had done something.
 * Checked on the request only (the top level: a GCS service account key keeps its own rule), not
 * on stored settings, so a row saved with a field since retired still parses. `keep` lets a PATCH
 * remove such a stored field by setting it to null.
 */
function unknownFields(schema: z.ZodType, value: unknown, field: "config" | "credentials", kind: DestinationKind, keep: (key: string, value: unknown) => boolean = () => false): FieldProblem[] {
  const known = fieldsOf(schema);
  if (!known || typeof value !== "object" || value === null) return [];
  const message = `unknown field; ${kind} ${field === "config" ? "settings" : "credentials"} take ${known.length > 0 ? known.join(", ") : "no fields"}`;
  return Object.entries(value)
    .filter(([key, given]) => !known.includes(key) && !keep(key, given))
    .map(([key]) => ({ path: `${field}.${key}`, message }));
}

function refuseUnknownFields(problems: FieldProblem[]): void {
  if (problems.length > 0) throw badRequest(problems.map((e) => `${e.path}: ${e.message}`).join("; "), problems);
}

function parseWith(schema: z.ZodType, value: unknown, field: "config" | "credentials"): unknown {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  // Zod messages describe the expected shape, never the submitted value, so secrets stay out.
  const errors: FieldProblem[] = result.error.issues.map((issue) => ({
    path: [field, ...issue.path.map(String)].join("."),
    message: issue.message,
  }));
  throw badRequest(errors.map((e) => `${e.path}: ${e.message}`).join("; "), errors);
}

/**
 * The destination as it is under its row lock in `tx`, or 404 when it was deleted meanwhile: what
 * a change's audit event records as "before". FOR NO KEY UPDATE, as withTenantLocked explains:
 * tasks and runs referencing the row can still be inserted.
 */
async function lockLiveDestination(tx: Transaction, read: Destination): Promise<Destination> {
  await tx.$queryRaw`SELECT id FROM "Destination" WHERE id = ${read.id}::uuid AND "tenantId" = ${read.tenantId}::uuid FOR NO KEY UPDATE`;
  const locked = await tx.destination.findUnique({ where: { id: read.id, deletedAt: null } });
  if (!locked) throw notFound("destination");
  return locked;
}

/**
 * Writes a change made from `read` only if the row still has what was read (same name, config
 * and credentials, not deleted), under the row's lock, and returns the row as it was just before
 * (the audit event's "before") and after. Verification is a network round trip: a change merged
 * into a read that another request changed meanwhile would undo that change, e.g. move a
 * destination back to its old host while keeping the credentials just given for the new one, put
 * credentials back on a deleted row, or audit a rename made meanwhile as never having happened.
 * Not `updatedAt`: the deliverer records a failed delivery's error on the row, and a destination
 * being fixed is the one failing.
 */
async function writeIfUnchanged(tx: Transaction, read: Destination, data: Prisma.DestinationUpdateManyMutationInput): Promise<{ before: Destination; after: Destination }> {
  const before = await lockLiveDestination(tx, read);
  const unchanged = before.name === read.name && before.sealedCredentials === read.sealedCredentials && isDeepStrictEqual(before.config, read.config);
  if (!unchanged) throw conflict("the destination changed meanwhile; read it again and retry");
  return { before, after: await tx.destination.update({ where: { id: read.id }, data }) };
}

function unverifiable(error: DestinationError): Problem {
  // An endpoint refused as internal names its setting ("config.endpoint", "credentials.serviceAccountKey.token_uri").
  const path = error instanceof BlockedEndpointError ? error.field : error.code === "auth" ? "credentials" : "config";
  return new Problem(422, "Destination could not be verified", error.message, { code: error.code, errors: [{ path, message: error.message }] });
}

/**
 * Destinations: where a tenant's encrypted files land. Every create and every change of settings
 * is verified against the real destination first (a probe file is written, checked and removed);
 * what cannot be verified is not saved. Credentials are sealed per row and never returned.
 */
export default async function destinationRoutes(app: GatewayApp) {
  const { keyring } = app.deps;
  const registry: DestinationRegistry =
    (app.deps.destinations as DestinationRegistry | undefined) ??
    createDestinationRegistry({
      managedStore: (app.deps.managedStore as StagingStore | undefined) ?? createManagedStore(app.deps.config),
      // Production refuses endpoints in this service's own network (see the adapters' schemas).
      allowInsecureEndpoints: app.deps.config.ALLOW_INSECURE_ENDPOINTS,
    });
  const admin = { preHandler: app.requireRole("admin") };

  function openCredentials(destination: Destination): unknown {
    if (destination.sealedCredentials === null) return undefined;
    try {
      return unsealJson(destination.sealedCredentials, keyring, credentialsContext(destination.tenantId, destination.id));
    } catch {
      throw new Problem(422, "Stored credentials unreadable", "the stored credentials of this destination cannot be opened; send them again with PATCH");
    }
  }

  app.post(
    "/v1/destinations",
    { ...admin, schema: { tags: ["destinations"], body: createBody, response: { 201: destinationView.extend({ verification }) } } },
    async (req, reply) => {
      const tenantId = req.auth!.tenantId!;
      const adapter = registry.adapterFor(req.body.kind);
      refuseUnknownFields([
        ...unknownFields(adapter.configSchema, req.body.config, "config", req.body.kind),
        ...unknownFields(adapter.credentialsSchema, req.body.credentials, "credentials", req.body.kind),
      ]);
      const config = parseWith(adapter.configSchema, req.body.config, "config");
      const credentials = parseWith(adapter.credentialsSchema, req.body.credentials ?? undefined, "credentials");
      const result = await adapter.verify(config, credentials);
      if (!result.ok) throw unverifiable(result.error);

      // The id is chosen first: it is part of the credentials' sealing context.
      const id = randomUUID();
      const hasSecrets = req.body.credentials !== undefined && req.body.credentials !== null && Object.keys(req.body.credentials).length > 0;
      // With its audit event in one transaction (the verification above stays outside it).
      const destination = await req.db.$transaction(async (tx) => {
        const created = await tx.destination.create({
          data: {
            id,
            name: req.body.name,
            kind: req.body.kind,
            config: { ...(config as object), ...(result.configUpdates ?? {}) } as Prisma.InputJsonValue,
            sealedCredentials: hasSecrets ? sealJson(credentials, keyring, credentialsContext(tenantId, id)) : null,
            verifiedAt: new Date(),
            lastError: null,
          } as Prisma.DestinationUncheckedCreateInput,
        });
        await writeAudit(tx, req, { action: "destination.create", targetType: "destination", targetId: id, after: toDestinationView(created) });
        return created;
      });
      const view = toDestinationView(destination);
      return reply.status(201).send({ ...view, verification: { ok: true, details: result.details } });
    },
  );

  app.get(
    "/v1/destinations",
    {
      schema: {
        tags: ["destinations"],
        querystring: pageQuery.extend({ kind: z.enum(DESTINATION_KINDS as [DestinationKind, ...DestinationKind[]]).optional() }),
        response: { 200: pageSchema(destinationView) },
      },
    },
    async (req) => {
      const { cursor, limit, kind } = req.query;
      const rows = await req.db.destination.findMany({
        where: { deletedAt: null, ...afterCursor(cursor), ...(kind ? { kind } : {}) },
        orderBy: newestFirst,
        take: limit + 1,
      });
      return toPage(rows, limit, toDestinationView);
    },
  );

  app.get("/v1/destinations/:id", { schema: { tags: ["destinations"], params: idParams, response: { 200: destinationView } } }, async (req) => {
    const destination = await req.db.destination.findUnique({ where: { id: req.params.id, deletedAt: null } });
    if (!destination) throw notFound("destination");
    return toDestinationView(destination);
  });

  app.patch(
    "/v1/destinations/:id",
    { ...admin, schema: { tags: ["destinations"], params: idParams, body: updateBody, response: { 200: destinationView.extend({ verification: verification.optional() }) } } },
    async (req) => {
      const destination = await req.db.destination.findUnique({ where: { id: req.params.id, deletedAt: null } });
      if (!destination) throw notFound("destination");
      const before = toDestinationView(destination);
      const data: Prisma.DestinationUpdateManyMutationInput = {};
      if (req.body.name !== undefined && req.body.name !== destination.name) data.name = req.body.name;

      let result: Awaited<ReturnType<AnyDestinationAdapter["verify"]>> | undefined;
      if (req.body.config !== undefined || req.body.credentials !== undefined) {
        const adapter = registry.adapterFor(destination.kind);
        const merged: Record<string, unknown> = { ...((destination.config ?? {}) as Record<string, unknown>) };
        const changes = req.body.config ?? {};
        refuseUnknownFields([
          // A field stored before (one since retired) may still be removed with null, or sent
          // back as it is (a read destination's config sent again).
          ...unknownFields(adapter.configSchema, changes, "config", destination.kind, (key, value) => Object.hasOwn(merged, key) && (value === null || isDeepStrictEqual(value, merged[key]))),
          ...unknownFields(adapter.credentialsSchema, req.body.credentials, "credentials", destination.kind),
        ]);
        for (const [key, value] of Object.entries(changes)) {
          if (value === null) delete merged[key];
          else merged[key] = value;
        }
        const movedServer = SERVER_IDENTITY.some((key) => key in changes && changes[key] !== before.config[key]);
        if (movedServer && !("hostKeyFingerprint" in changes)) {
          // Another server: pin its key afresh at this verification.
          delete merged.hostKeyFingerprint;
          delete merged.renameAllowed;
        }
        // The pinned key's type goes with its fingerprint: another fingerprint (or none) is another key, whose type verification learns.
        if (merged.hostKeyFingerprint !== before.config.hostKeyFingerprint && !("hostKeyType" in changes)) delete merged.hostKeyType;
        // The settings as stored (compared as the adapter reads them: "reports" is the prefix
        // "reports/"; no stored field let go of) and no credentials: nothing to verify or write.
        const config = parseWith(adapter.configSchema, merged, "config");
        const stored = adapter.configSchema.safeParse(before.config);
        const sameFields = isDeepStrictEqual(Object.keys(merged).sort(), Object.keys(before.config).sort());
        if (req.body.credentials !== undefined || !sameFields || !isDeepStrictEqual(config, stored.success ? stored.data : before.config)) {
          const movedCredentials = CREDENTIALS_RECIPIENT.filter((key) => key in changes && changes[key] !== before.config[key]);
          if (movedCredentials.length > 0 && req.body.credentials === undefined && destination.sealedCredentials) {
            const message = `send the credentials again with a change of ${movedCredentials.join(", ")}: stored credentials only go to the server they were given for`;
            throw new Problem(400, "Invalid request", `credentials: ${message}`, { errors: [{ path: "credentials", message }] });
          }
          const rawCredentials = req.body.credentials !== undefined ? (req.body.credentials ?? undefined) : openCredentials(destination);
          const credentials = parseWith(adapter.credentialsSchema, rawCredentials, "credentials");
          result = await adapter.verify(config, credentials);
          if (!result.ok) throw unverifiable(result.error);
          data.config = { ...(config as object), ...(result.configUpdates ?? {}) } as Prisma.InputJsonValue;
          if (req.body.credentials !== undefined) {
            const hasSecrets = rawCredentials !== undefined && Object.keys(rawCredentials as object).length > 0;
            data.sealedCredentials = hasSecrets ? sealJson(credentials, keyring, credentialsContext(destination.tenantId, destination.id)) : null;
          }
          data.verifiedAt = new Date();
          data.lastError = null;
        }
      }
      // Nothing to change (the name it has, the settings it has): answered as it is, with no event.
      if (Object.keys(data).length === 0) return before;
      // The change and its audit event together: neither without the other.
      const view = await req.db.$transaction(async (tx) => {
        const change = await writeIfUnchanged(tx, destination, data);
        const after = toDestinationView(change.after);
        await writeAudit(tx, req, { action: "destination.update", targetType: "destination", targetId: destination.id, before: toDestinationView(change.before), after });
        return after;
      });
      if (result?.ok) await resolveAlert(app.deps.prisma, destination.tenantId, `destination.verification:${destination.id}`);
      return { ...view, ...(result?.ok ? { verification: { ok: true, details: result.details } } : {}) };
    },
  );

  app.delete("/v1/destinations/:id", { ...admin, schema: { tags: ["destinations"], params: idParams } }, async (req, reply) => {
    const destination = await req.db.destination.findUnique({ where: { id: req.params.id, deletedAt: null } });
    if (!destination) throw notFound("destination");
    // Under the tenant's row lock, which task changes hold while they check and write: a task
    // enabled meanwhile is either seen here or sees the destination gone.
    await withTenantLocked(req.db, destination.tenantId, async (tx) => {
      const enabled = await tx.task.findMany({ where: { destinationId: destination.id, enabled: true, deletedAt: null }, select: { description: true } });
      if (enabled.length > 0) {
        const names = enabled.slice(0, 5).map((t) => `"${t.description}"`).join(", ");
        throw conflict(`${enabled.length} enabled task(s) deliver to this destination (${names}); disable them or point them at another destination first`);
      }
      // Soft delete: run history (and disabled tasks, which cannot be enabled again while it is
      // gone) still reference the row; the credentials are wiped now.
      // Of deletes at once, the first deletes (and is audited, with the row as it was under the
      // lock); the others find it gone.
      const before = await lockLiveDestination(tx, destination);
      // A run under way finishes where it was going (its task disabled since, or pointed
      // elsewhere after its delivery began, which pinned it here): gone, the destination would
      // fail it. Checked under the row's lock, which a run request holds (FOR SHARE) while it
      // creates its run, so none is created unseen.
      // A queued run that will never start (its task disabled or deleted since) delivers nowhere.
      const busy = await tx.$queryRawUnsafe<Array<{ id: string; status: string }>>(
        `SELECT "Run".id, "Run".status::text AS status FROM "Run" JOIN "Task" task ON task.id = "Run"."taskId"
         WHERE "Run"."tenantId" = $1::uuid AND "Run".status = ANY($2::"RunStatus"[])
           AND COALESCE("Run"."destinationId", task."destinationId") = $3::uuid AND NOT ${QUEUED_RUN_REFUSED_SQL}
         ORDER BY "Run"."createdAt" LIMIT 6`,
        destination.tenantId,
        [...RUN_IN_PROGRESS],
        destination.id,
      );
      if (busy.length > 0) {
        const named = busy.slice(0, 5).map((r) => `${r.id} (${r.status})`).join(", ");
        throw conflict(`run(s) under way will deliver to this destination: ${named}${busy.length > 5 ? ", …" : ""}; wait for them to finish, then delete it`);
      }
      await tx.destination.update({ where: { id: destination.id }, data: { deletedAt: new Date(), sealedCredentials: null } });
      await writeAudit(tx, req, { action: "destination.delete", targetType: "destination", targetId: destination.id, before: toDestinationView(before) });
    });
    await resolveAlert(app.deps.prisma, destination.tenantId, `destination.verification:${destination.id}`);
    return reply.status(204).send();
  });

  app.post(
    "/v1/destinations/:id/verify",
    { ...admin, schema: { tags: ["destinations"], params: idParams, response: { 200: verification.extend({ destination: destinationView }) } } },
    async (req) => {
      const destination = await req.db.destination.findUnique({ where: { id: req.params.id, deletedAt: null } });
      if (!destination) throw notFound("destination");
      const adapter = registry.adapterFor(destination.kind);
      const config = parseWith(adapter.configSchema, destination.config, "config");
      const credentials = parseWith(adapter.credentialsSchema, openCredentials(destination), "credentials");
      const result = await adapter.verify(config, credentials);
      const dedupeKey = `destination.verification:${destination.id}`;
      // Only onto the settings verified: a PATCH meanwhile (another host, new credentials) is not undone.
      // Verification may change the settings (a first host-key pin, whether rename works): audited,
      // in the same transaction as the write. A failure's alert too, under the row's lock: a delete
      // waits for it and then resolves it; raised after a delete's commit, nothing could.
      const record = (data: Prisma.DestinationUpdateManyMutationInput, alert?: (tx: Transaction) => Promise<void>) =>
        req.db.$transaction(async (tx) => {
          const { before, after } = await writeIfUnchanged(tx, destination, data);
          await writeAudit(tx, req, { action: "destination.verify", targetType: "destination", targetId: destination.id, before: toDestinationView(before), after: toDestinationView(after) });
          await alert?.(tx);
          return after;
        });
      if (result.ok) {
        const updated = await record({
          verifiedAt: new Date(),
          lastError: null,
          // Learn what was not known yet (a first pin, whether rename works); never replace a pinned key here.
          config: { ...(result.configUpdates ?? {}), ...((destination.config ?? {}) as object), ...renameUpdate(result.configUpdates) } as Prisma.InputJsonValue,
        });
        await resolveAlert(app.deps.prisma, destination.tenantId, dedupeKey);
        return { ok: true, details: result.details, destination: toDestinationView(updated) };
      }
      const updated = await record({ lastError: result.error.message }, (tx) =>
        raiseAlert(tx, {
          tenantId: destination.tenantId,
          kind: "destination.verification",
          severity: "error",
          title: `Destination "${destination.name}" failed verification`,
          message: result.error.message,
          dedupeKey,
          destinationId: destination.id,
        }),
      );
      return { ok: false, error: { code: result.error.code, message: result.error.message }, destination: toDestinationView(updated) };
    },
  );
}

/** Rename support is a fact about the server now, so the latest verification wins. */
function renameUpdate(updates: Record<string, unknown> | undefined): Record<string, unknown> {
  return updates && "renameAllowed" in updates ? { renameAllowed: updates.renameAllowed } : {};
}
