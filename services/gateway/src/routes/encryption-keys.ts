import { z } from "zod";
import {
  CryptoError,
  KEY_ALGORITHMS,
  PASSPHRASE_MAX_LENGTH,
  checkPassphrase,
  generateKeyPair,
  inspectPublicKey,
  mergePublicKey,
  proveKeyPair,
  publicKeyFingerprint,
} from "@transporter/crypto";
import type { MergedPublicKey, PublicKeyInfo } from "@transporter/crypto";
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
const armoredKey = z
  .string()
  .min(1)
  .max(100_000, "the key is over 100,000 characters (third-party signatures or a photo id make keys that large): export it without them, with gpg's --export-options export-minimal");
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

/** A key that passed inspectPublicKey: its `publicKey` (re-armored, never the text as pasted) is what is stored. */
interface UsableUpload {
  usable: true;
  info: PublicKeyInfo;
}

/**
 * A key that failed inspectPublicKey on its own: taken only as the owner's revocation of a key on
 * the account (merged into it); otherwise `refusal` (the inspection's 400) is what the caller gets.
 */
interface UnusableUpload {
  usable: false;
  fingerprint: string;
  /** As uploaded: the merge reads it and stores its packets re-armored. */
  publicKey: string;
  refusal: Problem;
}

interface NewKey {
  name: string | null;
  upload: UsableUpload | UnusableUpload;
  origin: "generated" | "imported";
}

/**
 * What storeKey did: a new key (or a deleted one restored), a live key updated in place, or a live
 * key revoked by its owner (stored with the revocation and deactivated).
 */
type Stored =
  | { outcome: "created"; key: EncryptionKey }
  | { outcome: "updated"; key: EncryptionKey; before: EncryptionKey; info: PublicKeyInfo; changed: boolean }
  | { outcome: "revoked"; key: EncryptionKey; before: EncryptionKey; changed: boolean };

/** The columns derived from a key's text (besides the text itself). */
function derivedFields(info: PublicKeyInfo) {
  return { algorithm: info.algorithm, bits: info.bits, expiresAt: info.expiresAt ?? null };
}

/** The columns derived from a key's text, and the text. */
function keyFields(info: PublicKeyInfo) {
  return { publicKey: info.publicKey, ...derivedFields(info) };
}

/**
 * Whether the stored columns differ from what the key's text says now: the same text can mean a
 * different expiry than stored (the rule changed, or a row written before it), so an upload or an
 * activation corrects them even when the text is unchanged.
 */
function derivedChanged(key: EncryptionKey, info: PublicKeyInfo): boolean {
  const fields = derivedFields(info);
  return fields.algorithm !== key.algorithm || fields.bits !== key.bits || (fields.expiresAt?.getTime() ?? null) !== (key.expiresAt?.getTime() ?? null);
}

/** The stored key merged with an upload of the same key (a CryptoError is the upload's 400). */
async function merge(stored: string, uploaded: string): Promise<MergedPublicKey> {
  try {
    return await mergePublicKey(stored, uploaded);
  } catch (error) {
    if (error instanceof CryptoError) throw rejected(error, "body.publicKey");
    throw error;
  }
}

/**
 * Stores a key; the tenant's first usable key becomes active. A key already on the account is
 * updated in place (a new expiry, a rotated or revoked subkey keep the primary fingerprint): the
 * new export is merged into the stored key, keeping its id, name, origin and active flag; the
 * columns derived from the text (expiry, algorithm) are rewritten whenever they differ from the
 * stored ones, even for the same text. A deleted key uploaded again is restored, merged into what
 * was stored the same way (an older export cannot bring back a revoked subkey).
 * An update that would leave the key unusable is refused (400), except the owner's revocation of a
 * key on the account (its primary key revoked, or every encryption subkey revoked or unusable):
 * that is taken, the revoked key is stored and deactivated (runs then fail with
 * encryption_key_missing, "run now" with 409, rather than encrypt to a compromised key), answered
 * 200; the caller refreshes the setup alert after the commit, as for every key change. A revoked key
 * that is not on the account (new, or deleted) is refused (400 key.revoked) like any unusable key.
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
    if (isUniqueViolation(error)) throw conflict(`this key (fingerprint ${uploadFingerprint(key.upload)}) was just added by another request`);
    throw error;
  }
}

function uploadFingerprint(upload: NewKey["upload"]): string {
  return upload.usable ? upload.info.fingerprint : upload.fingerprint;
}

async function writeKey(tx: Transaction, key: NewKey): Promise<Stored> {
  const { upload } = key;
  const uploadedText = upload.usable ? upload.info.publicKey : upload.publicKey;
  const existing = await tx.encryptionKey.findFirst({ where: { fingerprint: uploadFingerprint(upload) } });
  if (existing && !existing.deletedAt) {
    const renamed = key.name !== null && key.name !== existing.name;
    const merged = await merge(existing.publicKey, uploadedText);
    if (!merged.usable) {
      // The owner's revocation: stored (so no older export can undo it) and never encrypted to again.
      const data = { publicKey: merged.revoked.publicKey, active: false, ...(renamed ? { name: key.name } : {}) };
      const changed = data.publicKey !== existing.publicKey || existing.active || renamed;
      if (!changed) return { outcome: "revoked", key: existing, before: existing, changed };
      return { outcome: "revoked", key: await tx.encryptionKey.update({ where: { id: existing.id }, data }), before: existing, changed };
    }
    const info = merged.info;
    const changed = info.publicKey !== existing.publicKey || derivedChanged(existing, info) || renamed;
    if (!changed) return { outcome: "updated", key: existing, before: existing, info, changed };
    const data = { ...keyFields(info), ...(renamed ? { name: key.name } : {}) };
    return { outcome: "updated", key: await tx.encryptionKey.update({ where: { id: existing.id }, data }), before: existing, info, changed };
  }
  // Nothing on the account for a revocation to apply to: refused like any unusable key.
  if (!upload.usable) throw upload.refusal;
  let info = upload.info;
  if (existing) {
    // A deleted key keeps what was stored of it: a revoked subkey stays revoked in an older export uploaded again.
    const merged = await merge(existing.publicKey, uploadedText);
    if (!merged.usable) throw rejected(merged.revoked.reason, "body.publicKey");
    info = merged.info;
  }
  const hasActive = (await tx.encryptionKey.count({ where: { active: true, deletedAt: null } })) > 0;
  const fields = { ...keyFields(info), name: key.name, origin: key.origin, active: !hasActive };
  if (existing) return { outcome: "created", key: await tx.encryptionKey.update({ where: { id: existing.id }, data: { ...fields, deletedAt: null } }) };
  return { outcome: "created", key: await tx.encryptionKey.create({ data: { ...fields, fingerprint: info.fingerprint } as never }) };
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
      const { key } = await storeKey(req.db, tenantId, { name: req.body.name ?? null, upload: { usable: true, info }, origin: "generated" }, (tx, { key }) =>
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
          "An export that revokes a key on the account (its primary key, or every encryption subkey) is taken: the key is stored revoked " +
          "and deactivated (200, active false); a revoked key not on the account is refused (400 key.revoked). " +
          "The stored and returned key is re-armored from its packets, never the text as pasted.",
        body: importBody,
        response: { 200: encryptionKeyWithPublicView, 201: encryptionKeyWithPublicView },
      },
    },
    async (req, reply) => {
      const tenantId = tenantOf(req);
      const { publicKey, privateKey, passphrase } = req.body;
      let upload: NewKey["upload"];
      try {
        upload = { usable: true, info: await inspectPublicKey(publicKey) };
      } catch (error) {
        if (!(error instanceof CryptoError)) throw error;
        const refusal = rejected(error, "body.publicKey");
        // Unusable on its own, it may still be the owner's revocation of a key on the account: the
        // merge with the stored key decides (storeKey); anything else is refused as it is.
        const fingerprint = await publicKeyFingerprint(publicKey).catch((readError: unknown) => {
          if (readError instanceof CryptoError) throw refusal;
          throw readError;
        });
        upload = { usable: false, fingerprint, publicKey, refusal };
      }
      if (privateKey !== undefined || passphrase !== undefined) {
        if (privateKey === undefined || passphrase === undefined) {
          throw new Problem(400, "Invalid request", "give both privateKey and passphrase to prove the key pair, or neither", {
            errors: [{ path: privateKey === undefined ? "body.privateKey" : "body.passphrase", message: "required with the other" }],
          });
        }
        // The proof encrypts to the key, so it is made only for a key that can be encrypted to; one
        // that cannot is refused by storeKey unless it is a revocation, which the primary key signed.
        if (upload.usable) {
          try {
            await proveKeyPair(publicKey, privateKey, passphrase);
          } catch (error) {
            if (error instanceof CryptoError) throw rejected(error, error.code === "private_key.wrong_passphrase" ? "body.passphrase" : "body.privateKey");
            throw error;
          }
        }
      }
      const stored = await storeKey(req.db, tenantId, { name: req.body.name ?? null, upload, origin: "imported" }, async (tx, stored) => {
        const { key } = stored;
        if (stored.outcome === "created") {
          await writeAudit(tx, req, { action: "encryption_key.import", targetType: "encryption_key", targetId: key.id, after: toView(key) });
        } else if (stored.changed) {
          // The view has no key text; the subkey files are encrypted to is what a rotation changes
          // (null before when the old text no longer passes inspection, e.g. it has expired), and
          // a revocation leaves none.
          const before = await inspectPublicKey(stored.before.publicKey).catch(() => null);
          const revoked = stored.outcome === "revoked";
          await writeAudit(tx, req, {
            action: revoked ? "encryption_key.revoke" : "encryption_key.update",
            targetType: "encryption_key",
            targetId: key.id,
            before: { ...toView(stored.before), encryptionKeyFingerprint: before?.encryptionKeyFingerprint ?? null },
            after: { ...toView(key), encryptionKeyFingerprint: revoked ? null : stored.info.encryptionKeyFingerprint },
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
        // The name it has (or none again): nothing to write, and nothing is audited.
        if (key.name === req.body.name) return key;
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
        // A key accepted once may have expired or been revoked since; never make it the one runs use.
        let info: PublicKeyInfo;
        try {
          info = await inspectPublicKey(key.publicKey);
        } catch (error) {
          if (!(error instanceof CryptoError)) throw error;
          // Already the active key: left as it is (its expiry, which the alerts follow, says why).
          if (key.active) return key;
          throw new Problem(409, "Conflict", `this key cannot be activated: ${error.message}`, { code: error.code });
        }
        // The expiry and algorithm stored may be stale (written under an older rule): corrected here.
        const refreshed = derivedChanged(key, info) ? derivedFields(info) : {};
        if (key.active) {
          if (!derivedChanged(key, info)) return key;
          const updated = await tx.encryptionKey.update({ where: { id: key.id }, data: refreshed });
          await writeAudit(tx, req, { action: "encryption_key.update", targetType: "encryption_key", targetId: key.id, before: toView(key), after: toView(updated) });
          return updated;
        }
        await tx.encryptionKey.updateMany({ where: { active: true, NOT: { id: key.id } }, data: { active: false } });
        const activated = await tx.encryptionKey.update({ where: { id: key.id }, data: { ...refreshed, active: true } });
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
