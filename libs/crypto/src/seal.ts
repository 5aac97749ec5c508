import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";

/**
 * Sealing of stored secrets (source and destination credentials, webhook secrets).
 *
 * Format: `v1.<keyId>.<nonce b64url>.<ciphertext+tag b64url>` — AES-256-GCM with a random
 * 96-bit nonce. The key id travels in the value so the master key can rotate: new values are
 * sealed with the active key, old ones still open with theirs until re-sealed.
 * `context` (e.g. "tenant:<id>/source") is bound as associated data, so a sealed value copied
 * onto another row or tenant fails to open instead of leaking there.
 */
export interface Keyring {
  activeKeyId: string;
  /** id → base64 32-byte key */
  keys: Record<string, string>;
}

export class SealError extends Error {
  override name = "SealError";
}

const VERSION = "v1";

function keyFor(keyring: Keyring, id: string): Buffer {
  // Own ids only: a sealed value naming "constructor" must not find Object's.
  const encoded = Object.hasOwn(keyring.keys, id) ? keyring.keys[id] : undefined;
  if (typeof encoded !== "string") throw new SealError(`sealed with unknown key id "${id}"`);
  const key = Buffer.from(encoded, "base64");
  if (key.length !== 32) throw new SealError(`key "${id}" is not 32 bytes`);
  return key;
}

export function seal(plaintext: string, keyring: Keyring, context: string): string {
  const nonce = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", keyFor(keyring, keyring.activeKeyId), nonce);
  cipher.setAAD(Buffer.from(context, "utf8"));
  const body = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final(), cipher.getAuthTag()]);
  return [VERSION, keyring.activeKeyId, nonce.toString("base64url"), body.toString("base64url")].join(".");
}

export function unseal(sealed: string, keyring: Keyring, context: string): string {
  const parts = sealed.split(".");
  if (parts.length !== 4 || parts[0] !== VERSION) throw new SealError("not a sealed value");
  const [, keyId, nonceText, bodyText] = parts as [string, string, string, string];
  const nonce = Buffer.from(nonceText, "base64url");
  const body = Buffer.from(bodyText, "base64url");
  if (nonce.length !== 12 || body.length < 16) throw new SealError("sealed value is truncated");
  const decipher = createDecipheriv("aes-256-gcm", keyFor(keyring, keyId), nonce);
  decipher.setAAD(Buffer.from(context, "utf8"));
  decipher.setAuthTag(body.subarray(body.length - 16));
  try {
    return Buffer.concat([decipher.update(body.subarray(0, body.length - 16)), decipher.final()]).toString("utf8");
  } catch {
    // Never include the value or the key in the message.
    throw new SealError("sealed value failed authentication (tampered, or wrong key/context)");
  }
}

export function sealJson(value: unknown, keyring: Keyring, context: string): string {
  return seal(JSON.stringify(value), keyring, context);
}

export function unsealJson<T>(sealed: string, keyring: Keyring, context: string): T {
  return JSON.parse(unseal(sealed, keyring, context)) as T;
}

/** True when the value was sealed with a key other than the active one (needs re-sealing). */
export function needsReseal(sealed: string, keyring: Keyring): boolean {
  return sealed.split(".")[1] !== keyring.activeKeyId;
}

export function keyringFromConfig(config: { SECRETS_MASTER_KEYS: Record<string, string>; SECRETS_ACTIVE_KEY_ID: string }): Keyring {
  return { activeKeyId: config.SECRETS_ACTIVE_KEY_ID, keys: config.SECRETS_MASTER_KEYS };
}
