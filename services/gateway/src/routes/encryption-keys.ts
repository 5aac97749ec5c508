import { z } from "zod";
import {
  CryptoError,
  KEY_ALGORITHMS,
  PASSPHRASE_MAX_LENGTH,
  checkPassphrase,
  generateKeyPair,
  inspectPublicKey,
  proveKeyPair,
  updatePublicKey,
} from "@transporter/crypto";
import type { PublicKeyInfo } from "@transporter/crypto";
import { isUniqueViolation, refreshKeyExpiryAlerts, refreshSetupAlerts } from "@transporter/db";
import type { EncryptionKey, TenantDb } from "@transporter/db";
import { withTenantLocked, type Transaction } from "../row-locks.js";
import type { FastifyRequest } from "fastify";
import type { GatewayApp } from "../app.js";
import { writeAudit } from "../audit.js";
import { afterCursor, newestFirst, pageQuery, pageSchema, toPage } from "../pagination.js";
import { Problem, conflict, notFound } from "../problem.js";
import { idParams, nameText } from "./views.js";

/** What the API shows of a key. The public key is not a secret; the private key is never stored. */
const encryptionKeyView = z.object({
  id: z.string(),
  name: z.string().nullable(),
  fingerprint: z.string(),
  algorithm: z.string(),
  bits: z.number().int().nullable(),
  origin: z.enum(["generated", "imported"]),
  active: z.boolean(),
  expiresAt: z.string().nullable(),
  createdAt: z.string(),
  deletedAt: z.string().nullable(),
});
const encryptionKeyWithPublicView = encryptionKeyView.extend({ publicKey: z.string() });

const toView = (k: EncryptionKey): z.infer<typeof encryptionKeyView> => ({
  id: k.id,
  name: k.name,
  fingerprint: k.fingerprint,
  algorithm: k.algorithm,
  bits: k.bits,
  origin: k.origin,
  active: k.active,
  expiresAt: k.expiresAt?.toISOString() ?? null,
  createdAt: k.createdAt.toISOString(),
  deletedAt: k.deletedAt?.toISOString() ?? null,
});
const toViewWithPublic = (k: EncryptionKey) => ({ ...toView(k), publicKey: k.publicKey });

// Armored keys are a few KB; 100k characters leaves room for keys with many signatures.
const armoredKey = z.string().min(1).max(100_000);
// Length only: the strength rules are checked in the handler so the 400 can say why.
const passphraseField = z.string().max(PASSPHRASE_MAX_LENGTH);
const nameField = nameText;

const generateBody = z.object({ passphrase: passphraseField, algorithm: z.enum(KEY_ALGORITHMS).default("rsa-2048"), name: nameField.optional() }).strict();
const importBody = z.object({ publicKey: armoredKey, privateKey: armoredKey.optional(), passphrase: passphraseField.optional(), name: nameField.optional() }).strict();

/** A rejected key, passphrase or proof: 400 with the reason and its stable code (never the secret). */
function rejected(error: CryptoError, path: string): Problem {
  return new Problem(400, "Invalid request", error.message, { code: error.code, errors: [{ path, message: error.message }] });
}

function tenantOf(req: FastifyRequest): string {
  const tenantId = req.auth?.tenantId;
  if (!tenantId) throw new Problem(403, "Forbidden", "this needs a tenant's API key");
  return tenantId;
}

interface NewKey {
  name: string | null;
  /** From inspectPublicKey: its `publicKey` (re-armored, never the text as pasted) is what is stored. */
  info: PublicKeyInfo;
  origin: "generated" | "imported";
}

/** What storeKey did: a new key (or a deleted one restored), or a live key updated in place. */
type Stored =
  | { outcome: "created"; key: EncryptionKey }
  | { outcome: "updated"; key: EncryptionKey; before: EncryptionKey; info: PublicKeyInfo; changed: boolean };

/** The columns derived from a key's text. */
function keyFields(info: PublicKeyInfo) {
  return { publicKey: info.publicKey, algorithm: info.algorithm, bits: info.bits, expiresAt: info.expiresAt ?? null };
}

/**
 * Stores a key; the tenant's first usable key becomes active. A deleted key uploaded again is
 * restored. A key already on the account is updated in place (a new expiry, a rotated or revoked
 * subkey keep the primary fingerprint): the new export is merged into the stored key, keeping its
 * id, name, origin and active flag; an update that would leave the key unusable is refused (400).
 * `audit` runs in the same transaction: a key is stored with its audit event or not at all (a
 * generated key stored while the caller got an error would be active with its private key lost).
 */
async function storeKey(db: TenantDb, tenantId: string, key: NewKey, audit: (tx: Transaction, stored: Stored) => Promise<void>): Promise<Stored> {
  try {
    return await withTenantLocked(db, tenantId, async (tx) => {
      const stored = await writeKey(tx, key);
      await audit(tx, stored);
      return stored;
    });
  } catch (error) {
    if (isUniqueViolation(error)) throw conflict(`this key (fingerprint ${key.info.fingerprint}) was just added by another request`);
    throw error;
  }
}

async function writeKey(tx: Transaction, key: NewKey): Promise<Stored> {
  const existing = await tx.encryptionKey.findFirst({ where: { fingerprint: key.info.fingerprint } });
  if (existing && !existing.deletedAt) {
    let merged: PublicKeyInfo;
    try {
      merged = await updatePublicKey(existing.publicKey, key.info.publicKey);
    } catch (error) {
      if (error instanceof CryptoError) throw rejected(error, "body.publicKey");
      throw error;
    }
    // The other columns are derived from the text: the same text and name is the same key.
    const changed = merged.publicKey !== existing.publicKey || (key.name !== null && key.name !== existing.name);
    if (!changed) return { outcome: "updated", key: existing, before: existing, info: merged, changed };
    const data = { ...keyFields(merged), ...(key.name !== null ? { name: key.name } : {}) };
    return { outcome: "updated", key: await tx.encryptionKey.update({ where: { id: existing.id }, data }), before: existing, info: merged, changed };
  }
  const hasActive = (await tx.encryptionKey.count({ where: { active: true, deletedAt: null } })) > 0;
  const fields = { ...keyFields(key.info), name: key.name, origin: key.origin, active: !hasActive };
  if (existing) return { outcome: "created", key: await tx.encryptionKey.update({ where: { id: existing.id }, data: { ...fields, deletedAt: null } }) };
  return { outcome: "created", key: await tx.encryptionKey.create({ data: { ...fields, fingerprint: key.info.fingerprint } as never }) };
}

/**
 * Tenant OpenPGP keys: generate (private key returned once, never kept), bring your own
 * (validated; optional proof of the private key; the same key again updates it), list, rename,
 * activate (exactly one active key per tenant), delete (soft). The "set up encryption" alert
 * follows whether an unexpired key is active, the expiry alert whether it expires soon.
 * Passphrases and private keys exist only inside the request: they are not logged, stored,
 * audited or echoed in errors.
 */
export default async function encryptionKeyRoutes(app: GatewayApp) {
  const admin = { preHandler: app.requireRole("admin") };
  // After the commit, best effort: the change is made and audited, so a failure here must not
  // answer 500 (a generated private key would never reach its owner).
  const refreshAlerts = async (req: FastifyRequest, tenantId: string) => {
    try {
      await refreshSetupAlerts(app.deps.prisma, tenantId);
      await refreshKeyExpiryAlerts(app.deps.prisma, tenantId);
    } catch (error) {
      req.log.warn({ err: error, tenantId }, "encryption alerts not refreshed after a key change");
    }
  };

  app.post(
    "/v1/encryption-keys/generate",
    {
      ...admin,
      schema: {
        tags: ["encryption-keys"],
        summary: "Generate a key pair; the private key is returned once and not kept",
        body: generateBody,
        response: { 201: encryptionKeyWithPublicView.extend({ privateKey: z.string() }) },
      },
    },
    async (req, reply) => {
      const tenantId = tenantOf(req);
      const weakness = checkPassphrase(req.body.passphrase);
      if (weakness) throw new Problem(400, "Invalid request", weakness, { code: "passphrase.weak", errors: [{ path: "body.passphrase", message: weakness }] });
      const pair = await generateKeyPair({ passphrase: req.body.passphrase, algorithm: req.body.algorithm, ...(req.body.name ? { name: req.body.name } : {}) });
      const info = await inspectPublicKey(pair.publicKey);
      const { key } = await storeKey(req.db, tenantId, { name: req.body.name ?? null, info, origin: "generated" }, (tx, { key }) =>
        writeAudit(tx, req, { action: "encryption_key.generate", targetType: "encryption_key", targetId: key.id, after: toView(key) }),
      );
      await refreshAlerts(req, tenantId);
      return reply.status(201).send({ ...toViewWithPublic(key), privateKey: pair.privateKey });
    },
  );

  app.post(
    "/v1/encryption-keys",
    {
      ...admin,
      schema: {
        tags: ["encryption-keys"],
        summary: "Bring your own public key (optionally proving the private key); the same key again updates it (200)",
        description:
          "A key whose primary fingerprint is already on the account is updated in place (extended expiry, new or revoked subkeys): " +
          "the export is merged into the stored key as GnuPG merges an import, and the key keeps its id and active flag. " +
          "The stored and returned key is re-armored from its packets, never the text as pasted.",
        body: importBody,
        response: { 200: encryptionKeyWithPublicView, 201: encryptionKeyWithPublicView },
      },
    },
    async (req, reply) => {
      const tenantId = tenantOf(req);
      const { publicKey, privateKey, passphrase } = req.body;
      let info: PublicKeyInfo;
      try {
        info = await inspectPublicKey(publicKey);
      } catch (error) {
        if (error instanceof CryptoError) throw rejected(error, "body.publicKey");
        throw error;
      }
      if (privateKey !== undefined || passphrase !== undefined) {
        if (privateKey === undefined || passphrase === undefined) {
          throw new Problem(400, "Invalid request", "give both privateKey and passphrase to prove the key pair, or neither", {
            errors: [{ path: privateKey === undefined ? "body.privateKey" : "body.passphrase", message: "required with the other" }],
          });
        }
        try {
          await proveKeyPair(publicKey, privateKey, passphrase);
        } catch (error) {
          if (error instanceof CryptoError) throw rejected(error, error.code === "private_key.wrong_passphrase" ? "body.passphrase" : "body.privateKey");
          throw error;
        }
      }
      const stored = await storeKey(req.db, tenantId, { name: req.body.name ?? null, info, origin: "imported" }, async (tx, stored) => {
        const { key } = stored;
        if (stored.outcome === "created") {
          await writeAudit(tx, req, { action: "encryption_key.import", targetType: "encryption_key", targetId: key.id, after: toView(key) });
        } else if (stored.changed) {
          // The view has no key text; the subkey files are encrypted to is what a rotation changes
          // (null before when the old text no longer passes inspection, e.g. it has expired).
          const before = await inspectPublicKey(stored.before.publicKey).catch(() => null);
          await writeAudit(tx, req, {
            action: "encryption_key.update",
            targetType: "encryption_key",
            targetId: key.id,
            before: { ...toView(stored.before), encryptionKeyFingerprint: before?.encryptionKeyFingerprint ?? null },
            after: { ...toView(key), encryptionKeyFingerprint: stored.info.encryptionKeyFingerprint },
          });
        }
      });
      await refreshAlerts(req, tenantId);
      return reply.status(stored.outcome === "created" ? 201 : 200).send(toViewWithPublic(stored.key));
    },
  );

  app.get(
    "/v1/encryption-keys",
    { schema: { tags: ["encryption-keys"], querystring: pageQuery, response: { 200: pageSchema(encryptionKeyView) } } },
    async (req) => {
      const rows = await req.db.encryptionKey.findMany({ where: { deletedAt: null, ...afterCursor(req.query.cursor) }, orderBy: newestFirst, take: req.query.limit + 1 });
      return toPage(rows, req.query.limit, toView);
    },
  );

  app.get(
    "/v1/encryption-keys/:id",
    { schema: { tags: ["encryption-keys"], params: idParams, response: { 200: encryptionKeyWithPublicView } } },
    async (req) => {
      const key = await req.db.encryptionKey.findFirst({ where: { id: req.params.id, deletedAt: null } });
      if (!key) throw notFound("encryption key");
      return toViewWithPublic(key);
    },
  );

  app.patch(
    "/v1/encryption-keys/:id",
    { ...admin, schema: { tags: ["encryption-keys"], summary: "Rename a key", params: idParams, body: z.object({ name: nameField.nullable() }).strict(), response: { 200: encryptionKeyView } } },
    async (req) => {
      // Under the tenant's lock with its audit event: a key deleted meanwhile is not renamed.
      const renamed = await withTenantLocked(req.db, tenantOf(req), async (tx) => {
        const key = await tx.encryptionKey.findFirst({ where: { id: req.params.id, deletedAt: null } });
        if (!key) throw notFound("encryption key");
        const after = await tx.encryptionKey.update({ where: { id: key.id }, data: { name: req.body.name } });
        await writeAudit(tx, req, { action: "encryption_key.update", targetType: "encryption_key", targetId: key.id, before: toView(key), after: toView(after) });
        return after;
      });
      return toView(renamed);
    },
  );

  app.post(
    "/v1/encryption-keys/:id/activate",
    { ...admin, schema: { tags: ["encryption-keys"], summary: "New runs encrypt with this key", params: idParams, response: { 200: encryptionKeyView } } },
    async (req) => {
      const tenantId = tenantOf(req);
      const after = await withTenantLocked(req.db, tenantId, async (tx) => {
        const key = await tx.encryptionKey.findFirst({ where: { id: req.params.id, deletedAt: null } });
        if (!key) throw notFound("encryption key");
        if (key.active) return key;
        // A key accepted once may have expired or been revoked since; never make it the one runs use.
        try {
          await inspectPublicKey(key.publicKey);
        } catch (error) {
          if (error instanceof CryptoError) throw new Problem(409, "Conflict", `this key cannot be activated: ${error.message}`, { code: error.code });
          throw error;
        }
        await tx.encryptionKey.updateMany({ where: { active: true, NOT: { id: key.id } }, data: { active: false } });
        const activated = await tx.encryptionKey.update({ where: { id: key.id }, data: { active: true } });
        await writeAudit(tx, req, { action: "encryption_key.activate", targetType: "encryption_key", targetId: key.id, before: toView(key), after: toView(activated) });
        return activated;
      });
      await refreshAlerts(req, tenantId);
      return toView(after);
    },
  );

  app.delete(
    "/v1/encryption-keys/:id",
    {
      ...admin,
      schema: {
        tags: ["encryption-keys"],
        summary: "Remove a key (files already encrypted to it stay readable with its private key)",
        params: idParams,
        response: { 200: encryptionKeyView },
      },
    },
    async (req) => {
      const tenantId = tenantOf(req);
      const after = await withTenantLocked(req.db, tenantId, async (tx) => {
        const key = await tx.encryptionKey.findFirst({ where: { id: req.params.id, deletedAt: null } });
        if (!key) throw notFound("encryption key");
        if (key.active) {
          // Every enabled task encrypts to the active key: without it each of their runs would fail.
          const enabled = await tx.task.findMany({ where: { enabled: true, deletedAt: null }, select: { description: true }, take: 6 });
          if (enabled.length > 0) {
            const names = enabled.slice(0, 5).map((t) => `"${t.description}"`).join(", ");
            throw conflict(`this is the active key and enabled tasks encrypt to it (${names}${enabled.length > 5 ? ", …" : ""}): activate another key first, or disable those tasks`);
          }
        }
        const deleted = await tx.encryptionKey.update({ where: { id: key.id }, data: { deletedAt: new Date(), active: false } });
        await writeAudit(tx, req, { action: "encryption_key.delete", targetType: "encryption_key", targetId: key.id, before: toView(key), after: toView(deleted) });
        return deleted;
      });
      await refreshAlerts(req, tenantId);
      return toView(after);
    },
  );
}
