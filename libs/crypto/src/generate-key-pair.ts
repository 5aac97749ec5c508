import { generateKey } from "openpgp";
import { WeakPassphraseError } from "./errors.js";
import { GNUPG22_CONFIG } from "./gnupg-compat.js";
import { inspectPublicKey } from "./inspect-public-key.js";
import { checkPassphrase } from "./passphrase.js";

/** Algorithms a tenant may ask us to generate. RSA 2048 is the default customers expect. */
export const KEY_ALGORITHMS = ["rsa-2048", "rsa-4096", "curve25519"] as const;
export type KeyAlgorithm = (typeof KEY_ALGORITHMS)[number];

export interface GenerateKeyPairOptions {
  passphrase: string;
  algorithm?: KeyAlgorithm;
  name?: string;
  email?: string;
}

export interface GeneratedKeyPair {
  /** ASCII-armored public key: the only part we store. */
  publicKey: string;
  /** ASCII-armored private key locked with the passphrase: handed to the tenant once, never kept. */
  privateKey: string;
  /** Upper-case hex fingerprint of the primary key. */
  fingerprint: string;
  algorithm: string;
  bits: number | null;
}

const DEFAULT_USER_NAME = "Transporter file encryption";

/**
 * Generates a v4 key pair GnuPG 2.2 can import: RSA (sign+certify primary, encryption subkey)
 * or the "legacy" Curve25519 pair (EdDSA primary, ECDH Curve25519 subkey), which is what GnuPG
 * itself calls ed25519/cv25519. The RFC 9580 X25519 format would be unreadable by GnuPG 2.2.
 */
export async function generateKeyPair(options: GenerateKeyPairOptions): Promise<GeneratedKeyPair> {
  const weakness = checkPassphrase(options.passphrase);
  if (weakness) throw new WeakPassphraseError(weakness);
  const algorithm = options.algorithm ?? "rsa-2048";
  const keyType =
    algorithm === "curve25519"
      ? ({ type: "ecc", curve: "curve25519Legacy" } as const)
      : ({ type: "rsa", rsaBits: algorithm === "rsa-4096" ? 4096 : 2048 } as const);
  const userId = options.email ? { name: options.name ?? DEFAULT_USER_NAME, email: options.email } : { name: options.name ?? DEFAULT_USER_NAME };
  const { publicKey, privateKey } = await generateKey({
    ...keyType,
    userIDs: [userId],
    passphrase: options.passphrase,
    format: "armored",
    config: GNUPG22_CONFIG,
  });
  const info = await inspectPublicKey(publicKey);
  return { publicKey, privateKey, fingerprint: info.fingerprint, algorithm: info.algorithm, bits: info.bits };
}
