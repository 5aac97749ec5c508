import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

/**
 * API keys look like `tp_<prefix>_<secret>`. The prefix is public and indexed (it finds the
 * row); only the SHA-256 of the secret is stored. The secret is 256 random bits, so a fast
 * hash is right here (nothing to brute-force), and comparison is constant-time.
 */
export interface NewApiKey {
  prefix: string;
  secretHash: string;
  /** The whole key, shown to its owner once. */
  key: string;
}

const ALPHANUMERIC = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

function randomAlphanumeric(length: number): string {
  const bytes = randomBytes(length);
  let out = "";
  // 62 does not divide 256; the bias over 12 characters is negligible for a public lookup id.
  for (const byte of bytes) out += ALPHANUMERIC[byte % ALPHANUMERIC.length];
  return out;
}

export function hashSecret(secret: string): string {
  return createHash("sha256").update(secret, "utf8").digest("hex");
}

export function generateApiKey(): NewApiKey {
  const prefix = randomAlphanumeric(12);
  const secret = randomBytes(32).toString("base64url");
  return { prefix, secretHash: hashSecret(secret), key: `tp_${prefix}_${secret}` };
}

export function parseApiKey(key: string): { prefix: string; secret: string } | null {
  const match = /^tp_([A-Za-z0-9]{6,32})_([A-Za-z0-9_-]{20,128})$/.exec(key);
  return match ? { prefix: match[1]!, secret: match[2]! } : null;
}

export function secretMatches(secret: string, storedHash: string): boolean {
  const given = Buffer.from(hashSecret(secret), "hex");
  const stored = Buffer.from(storedHash, "hex");
  return given.length === stored.length && timingSafeEqual(given, stored);
}
