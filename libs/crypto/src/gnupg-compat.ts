import { config as defaultConfig, enums } from "openpgp";
import type { Config, PartialConfig } from "openpgp";

/**
 * Curves GnuPG offers that we neither verify nor encrypt to: openpgp.js handles brainpool and
 * secp256k1 signatures in Node only through an optional module (`eckey-utils`) we do not ship,
 * and it refuses secp256k1 by default. Curve25519 and NIST P-256/384/521 are native.
 */
export const UNSUPPORTED_CURVES: ReadonlySet<enums.curve> = new Set([
  enums.curve.secp256k1,
  enums.curve.brainpoolP256r1,
  enums.curve.brainpoolP384r1,
  enums.curve.brainpoolP512r1,
]);

/**
 * openpgp.js settings chosen so that GnuPG 2.2 — what customers commonly decrypt with (GPG Suite,
 * Gpg4win and most Linux distributions still ship 2.2) — can read everything we produce:
 *
 * - v4 keys and packets (`v6Keys: false`): GnuPG 2.2 cannot parse RFC 9580 v6 keys.
 * - SEIPD v1 with MDC, never AEAD (`aeadProtect: false`): GnuPG 2.2 has no SEIPD v2 and only an
 *   experimental, incompatible AEAD packet; v1 + MDC is what it reads and integrity-checks.
 *   Keys we generate therefore do not advertise the SEIPD v2 feature either.
 * - AES-256: supported by every GnuPG release, and listed first in the keys we generate.
 * - Iterated-and-salted S2K (not Argon2) for locking private keys: GnuPG 2.2 cannot import
 *   Argon2-protected keys.
 * - ZLIB compression: GnuPG's own default; it decompresses ZIP, ZLIB and BZIP2.
 * - SHA-256 for signatures: accepted by all GnuPG versions (SHA-1 is being rejected).
 *
 * Keys on UNSUPPORTED_CURVES are never encrypted to (`rejectCurves`), so the subkey a message goes
 * to is always one inspectPublicKey accepted.
 */
export const GNUPG22_CONFIG: PartialConfig = {
  v6Keys: false,
  aeadProtect: false,
  preferredSymmetricAlgorithm: enums.symmetric.aes256,
  preferredCompressionAlgorithm: enums.compression.zlib,
  preferredHashAlgorithm: enums.hash.sha256,
  s2kType: enums.s2k.iterated,
  showVersion: false,
  showComment: false,
  rejectCurves: new Set(UNSUPPORTED_CURVES),
};

/** Symmetric algorithm of every message we encrypt. */
export const MESSAGE_CIPHER = "aes256" as const;
/** Key length of MESSAGE_CIPHER in bytes. */
export const MESSAGE_KEY_BYTES = 32;
/** zlib level: the same default GnuPG uses, so the size/speed trade-off matches what customers know. */
export const COMPRESSION_LEVEL = 6;

/** A complete openpgp.js config (what Key methods expect) with our GnuPG 2.2 choices applied. */
export function fullConfig(overrides: PartialConfig = {}): Config {
  return { ...defaultConfig, ...GNUPG22_CONFIG, ...overrides };
}
