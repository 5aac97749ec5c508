import { enums, readKeys } from "openpgp";
import type { AlgorithmInfo, Key, SignaturePacket, Subkey } from "openpgp";
import { KeyRejectedError } from "./errors.js";
import { GNUPG22_CONFIG, UNSUPPORTED_CURVES, fullConfig } from "./gnupg-compat.js";

/** Smallest RSA modulus we encrypt to (for the primary key and the encryption subkey alike). */
export const MIN_RSA_BITS = 2048;

/** Key methods take a complete config; ours adds the RSA floor customers are held to. */
const KEY_CHECK_CONFIG = fullConfig({ minRSABits: MIN_RSA_BITS });

export interface PublicKeyInfo {
  /** Upper-case hex fingerprint of the primary key. */
  fingerprint: string;
  /** "rsa", "curve25519", "curve448" or the curve name of another elliptic-curve key (e.g. "nistp256"). */
  algorithm: string;
  /** Modulus size for RSA; the curve's size for elliptic-curve keys. */
  bits: number | null;
  curve?: string;
  /** When the key (or the subkey we encrypt to) stops being usable; absent when it never expires. */
  expiresAt?: Date;
  /** Upper-case hex fingerprint of the (sub)key messages are actually encrypted to. */
  encryptionKeyFingerprint: string;
  userIds: string[];
  /** The key re-armored from its packets: what to store and show, never the text as pasted. */
  publicKey: string;
}

const ENCRYPTION_ALGORITHMS = new Set<AlgorithmInfo["algorithm"]>(["rsaEncryptSign", "rsaEncrypt", "ecdh", "x25519", "x448", "elgamal"]);
/** What a tenant is told to use instead of a key we refuse for its algorithm. */
const SUPPORTED_ALGORITHMS =
  "use an RSA key (2048 bits or more) or an elliptic-curve key on Curve25519 (GnuPG's default: ed25519/cv25519) or NIST P-256/P-384/P-521";
/** RFC 9580's own Curve25519/448 algorithms (ids 25–28): GnuPG 2.2 skips a key that uses them. */
const RFC9580_ALGORITHMS = new Set<AlgorithmInfo["algorithm"]>(["x25519", "x448", "ed25519", "ed448"]);
const CURVE_BITS: Record<string, number> = {
  curve25519Legacy: 255,
  ed25519Legacy: 255,
  nistP256: 256,
  nistP384: 384,
  nistP521: 521,
  secp256k1: 256,
  brainpoolP256r1: 256,
  brainpoolP384r1: 384,
  brainpoolP512r1: 512,
};

function describeAlgorithm(info: AlgorithmInfo): { algorithm: string; bits: number | null; curve?: string } {
  switch (info.algorithm) {
    case "rsaEncryptSign":
    case "rsaEncrypt":
    case "rsaSign":
      return { algorithm: "rsa", bits: info.bits ?? null };
    case "ed25519":
    case "x25519":
      return { algorithm: "curve25519", bits: 255, curve: "curve25519" };
    case "ed448":
    case "x448":
      return { algorithm: "curve448", bits: 448, curve: "curve448" };
    default: {
      const curve = info.curve;
      if (curve === "curve25519Legacy" || curve === "ed25519Legacy") return { algorithm: "curve25519", bits: 255, curve: "curve25519" };
      if (curve) return { algorithm: curve.toLowerCase(), bits: CURVE_BITS[curve] ?? null, curve };
      return { algorithm: info.algorithm.toLowerCase(), bits: info.bits ?? null };
    }
  }
}

/** How GnuPG names an algorithm or curve we do not use (DSA, ElGamal, brainpool, secp256k1); undefined for one we do. */
function unsupportedAlgorithm(info: AlgorithmInfo): string | undefined {
  if (info.algorithm === "dsa") return "DSA";
  if (info.algorithm === "elgamal") return "ElGamal";
  if (info.curve && UNSUPPORTED_CURVES.has(info.curve as enums.curve)) return `the ${info.curve} curve`;
  return undefined;
}

/**
 * Whether an openpgp.js failure comes from this process rather than from the key: a module it
 * could not load shows up wrapped in "Could not find valid self-signature…". Such failures are
 * ours to fix and surface as they are, never as a reason to refuse the tenant's key.
 */
function isEnvironmentFailure(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; current instanceof Error && depth < 10; depth++) {
    const code = (current as NodeJS.ErrnoException).code;
    if (code === "MODULE_NOT_FOUND" || code === "ERR_MODULE_NOT_FOUND") return true;
    current = current.cause;
  }
  return false;
}

/** The key's rejection for an openpgp.js failure, unless the failure is not the key's (then it is rethrown). */
function keyFailure(error: unknown, rejection: KeyRejectedError): KeyRejectedError {
  if (isEnvironmentFailure(error)) throw error;
  return rejection;
}

function isRsa(info: AlgorithmInfo): boolean {
  return info.algorithm === "rsaEncryptSign" || info.algorithm === "rsaEncrypt" || info.algorithm === "rsaSign";
}

export function hexFingerprint(key: { getFingerprint(): string }): string {
  return key.getFingerprint().toUpperCase();
}

const PRIVATE_KEY_ARMOR = /-----BEGIN PGP PRIVATE KEY BLOCK-----/;

export async function readSinglePublicKey(armored: string): Promise<Key> {
  if (PRIVATE_KEY_ARMOR.test(armored)) {
    throw new KeyRejectedError(
      "key.private_key_given",
      "this is a private key: paste the PUBLIC key (-----BEGIN PGP PUBLIC KEY BLOCK-----); never share your private key",
    );
  }
  const armorBlocks = armored.match(/-----BEGIN PGP PUBLIC KEY BLOCK-----/g)?.length ?? 0;
  if (armorBlocks > 1) {
    throw new KeyRejectedError("key.multiple_keys", `the text holds ${armorBlocks} key blocks: paste exactly one public key`);
  }
  let keys: Key[];
  try {
    keys = await readKeys({ armoredKeys: armored.trim(), config: GNUPG22_CONFIG });
  } catch (error) {
    throw keyFailure(
      error,
      new KeyRejectedError(
        "key.unparseable",
        "not an ASCII-armored OpenPGP public key: expected a block starting with -----BEGIN PGP PUBLIC KEY BLOCK----- (export it with `gpg --armor --export <key id>`)",
      ),
    );
  }
  if (keys.length !== 1) {
    throw new KeyRejectedError("key.multiple_keys", `the text holds ${keys.length} keys: paste exactly one public key`);
  }
  const key = keys[0] as Key;
  if (key.isPrivate()) {
    throw new KeyRejectedError(
      "key.private_key_given",
      "this is a private key: paste the PUBLIC key (gpg --armor --export <key id>); never share your private key",
    );
  }
  return key;
}

/** Expiry as a Date, or undefined when the key never expires. */
function expiryOf(expiration: Date | number | null): Date | undefined {
  return expiration instanceof Date ? expiration : undefined;
}

const ENCRYPTION_FLAGS = enums.keyFlags.encryptCommunication | enums.keyFlags.encryptStorage;

/** Whether a signature's key flags allow encryption (keys without flags are judged by algorithm). */
function flagsAllowEncryption(signature: SignaturePacket | undefined): boolean {
  const flags = signature?.keyFlags?.[0];
  return flags === undefined || (flags & ENCRYPTION_FLAGS) !== 0;
}

/** The primary key and subkeys whose algorithm and key flags are meant for encryption (including ones we refuse, such as ElGamal). */
async function encryptionCandidates(key: Key, now: Date): Promise<(Key | Subkey)[]> {
  const candidates: (Key | Subkey)[] = key.subkeys.filter(
    (subkey) => ENCRYPTION_ALGORITHMS.has(subkey.getAlgorithmInfo().algorithm) && flagsAllowEncryption(subkey.bindingSignatures.at(-1)),
  );
  if (ENCRYPTION_ALGORITHMS.has(key.getAlgorithmInfo().algorithm)) {
    const primaryUser = await key.getPrimaryUser(now, undefined, KEY_CHECK_CONFIG).catch((error: unknown) => {
      if (isEnvironmentFailure(error)) throw error;
      return undefined;
    });
    if (flagsAllowEncryption(primaryUser?.selfCertification)) candidates.push(key);
  }
  return candidates;
}

/**
 * Explains why no (sub)key is usable for encryption, in the order a tenant can fix it:
 * no encryption-capable key at all, then an algorithm we do not use, weak RSA, revoked, expired.
 */
async function diagnoseNoEncryptionKey(key: Key, now: Date): Promise<KeyRejectedError> {
  const capable = await encryptionCandidates(key, now);
  if (capable.length === 0) {
    return new KeyRejectedError(
      "key.no_encryption_key",
      "the key has no encryption-capable key or subkey (it can only sign): add an encryption subkey (gpg --quick-add-key <fingerprint> default encr) and export it again",
    );
  }
  const candidates = capable.filter((k) => !unsupportedAlgorithm(k.getAlgorithmInfo()));
  if (candidates.length === 0) {
    const names = [...new Set(capable.map((k) => unsupportedAlgorithm(k.getAlgorithmInfo())))].join(", ");
    return new KeyRejectedError(
      "key.unsupported_algorithm",
      `the key's encryption subkey uses ${names}, which we do not encrypt to: ${SUPPORTED_ALGORITHMS} (e.g. add one with gpg --quick-add-key <fingerprint> cv25519 encr and export the key again)`,
    );
  }
  const weak = candidates.filter((k) => isRsa(k.getAlgorithmInfo()) && (k.getAlgorithmInfo().bits ?? 0) < MIN_RSA_BITS);
  if (weak.length === candidates.length) {
    const bits = weak[0]?.getAlgorithmInfo().bits ?? 0;
    return new KeyRejectedError("key.weak_rsa", `the encryption key is RSA ${bits} bits: at least ${MIN_RSA_BITS} bits are required`);
  }
  const subkeys = candidates.filter((k): k is Subkey => k !== key);
  const states = await Promise.all(
    subkeys.map(async (subkey) => {
      try {
        await subkey.verify(now, KEY_CHECK_CONFIG);
        return "valid";
      } catch (error) {
        if (isEnvironmentFailure(error)) throw error;
        const text = error instanceof Error ? error.message : "";
        return /revoked/i.test(text) ? "revoked" : /expired/i.test(text) ? "expired" : "invalid";
      }
    }),
  );
  if (states.length > 0 && states.every((s) => s === "revoked")) {
    return new KeyRejectedError("key.revoked", "the encryption subkey has been revoked: use a key with a valid encryption subkey");
  }
  if (states.length > 0 && states.every((s) => s === "expired" || s === "revoked")) {
    return new KeyRejectedError(
      "key.expired",
      "the encryption subkey has expired: extend it (gpg --quick-set-expire <fingerprint> 2y '*') and export the key again",
    );
  }
  return new KeyRejectedError("key.no_encryption_key", "the key has no valid, correctly signed encryption subkey");
}

/**
 * Validates a public key a tenant brings and describes it. Rejects (KeyRejectedError, with a reason
 * the tenant can act on): unparseable armor, a private key pasted as public, several keys, a v6
 * key, DSA/ElGamal keys and the brainpool/secp256k1 curves, no encryption-capable (sub)key, expired
 * or revoked keys, RSA under 2048 bits. Failures that are not the key's (a module openpgp.js could
 * not load) are rethrown as they are.
 */
export async function inspectPublicKey(armored: string, now: Date = new Date()): Promise<PublicKeyInfo> {
  const key = await readSinglePublicKey(armored);
  if (key.keyPacket.version !== 4) {
    throw new KeyRejectedError(
      "key.unsupported_version",
      `this is an OpenPGP v${key.keyPacket.version} key, which GnuPG 2.2 cannot read: provide a v4 key (any key made by GnuPG 2.2–2.4 is v4)`,
    );
  }
  const primaryInfo = key.getAlgorithmInfo();
  const unsupportedPrimary = unsupportedAlgorithm(primaryInfo);
  if (unsupportedPrimary) {
    throw new KeyRejectedError("key.unsupported_algorithm", `this key uses ${unsupportedPrimary}, which we do not accept: ${SUPPORTED_ALGORITHMS}`);
  }
  if ([primaryInfo, ...key.getSubkeys().map((subkey) => subkey.getAlgorithmInfo())].some((info) => RFC9580_ALGORITHMS.has(info.algorithm))) {
    throw new KeyRejectedError(
      "key.unsupported_algorithm",
      "this key uses the newer X25519/Ed25519 algorithms of RFC 9580, which GnuPG 2.2 cannot read: make a Curve25519 key with GnuPG (gpg --quick-gen-key <email> future-default) or an RSA key",
    );
  }
  if (await key.isRevoked(undefined, undefined, now, KEY_CHECK_CONFIG)) {
    throw new KeyRejectedError("key.revoked", "this key has been revoked by its owner: use a key that is not revoked");
  }
  let primaryExpiry: Date | undefined;
  try {
    primaryExpiry = expiryOf(await key.getExpirationTime(undefined, KEY_CHECK_CONFIG));
  } catch (error) {
    throw keyFailure(error, new KeyRejectedError("key.unparseable", "the key has no valid self-signature: export it again from GnuPG"));
  }
  if (primaryExpiry && primaryExpiry.getTime() <= now.getTime()) {
    throw new KeyRejectedError(
      "key.expired",
      `this key expired on ${primaryExpiry.toISOString()}: extend it (gpg --quick-set-expire <fingerprint> 2y) and export it again`,
    );
  }
  if (isRsa(primaryInfo) && (primaryInfo.bits ?? 0) < MIN_RSA_BITS) {
    throw new KeyRejectedError("key.weak_rsa", `this is an RSA ${primaryInfo.bits ?? 0}-bit key: at least ${MIN_RSA_BITS} bits are required`);
  }
  try {
    await key.verifyPrimaryKey(now, undefined, KEY_CHECK_CONFIG);
  } catch (error) {
    throw keyFailure(error, new KeyRejectedError("key.unparseable", "the key's self-signature is invalid: export it again from GnuPG"));
  }
  let encryptionKey: Key | Subkey;
  try {
    encryptionKey = await key.getEncryptionKey(undefined, now, undefined, KEY_CHECK_CONFIG);
  } catch (error) {
    throw keyFailure(error, await diagnoseNoEncryptionKey(key, now));
  }
  // KEY_CHECK_CONFIG already skips these; kept so a change of config cannot let one through.
  const unsupportedEncryption = unsupportedAlgorithm(encryptionKey.getAlgorithmInfo());
  if (unsupportedEncryption) {
    throw new KeyRejectedError("key.unsupported_algorithm", `the encryption key uses ${unsupportedEncryption}, which we do not encrypt to: ${SUPPORTED_ALGORITHMS}`);
  }
  let expiresAt = primaryExpiry;
  if (encryptionKey !== key) {
    const subkeyExpiry = expiryOf(await (encryptionKey as Subkey).getExpirationTime(now, KEY_CHECK_CONFIG));
    if (subkeyExpiry && (!expiresAt || subkeyExpiry < expiresAt)) expiresAt = subkeyExpiry;
  }
  const described = describeAlgorithm(primaryInfo);
  const info: PublicKeyInfo = {
    fingerprint: hexFingerprint(key),
    algorithm: described.algorithm,
    bits: described.bits,
    encryptionKeyFingerprint: hexFingerprint(encryptionKey),
    userIds: key.getUserIDs(),
    publicKey: key.armor(KEY_CHECK_CONFIG),
  };
  if (described.curve) info.curve = described.curve;
  if (expiresAt) info.expiresAt = expiresAt;
  return info;
}

/**
 * The key on the account (`current`) updated with a new export of the same key (`update`), merged
 * the way GnuPG merges a key it imports: new self-signatures (an extended expiry), new subkeys and
 * revocations are taken, and nothing the stored key had is dropped, so an older export cannot undo
 * a subkey's revocation. The update must pass inspectPublicKey on its own and so must the merged
 * key (each refused with its KeyRejectedError); the result describes the merged key, whose
 * `publicKey` is what to store. A `current` that cannot be read is simply replaced.
 */
export async function updatePublicKey(current: string, update: string, now: Date = new Date()): Promise<PublicKeyInfo> {
  const incoming = await inspectPublicKey(update, now);
  let stored: Key;
  try {
    stored = await readSinglePublicKey(current);
  } catch (error) {
    if (error instanceof KeyRejectedError) return incoming;
    throw error;
  }
  if (hexFingerprint(stored) !== incoming.fingerprint) {
    throw new Error(`the update (fingerprint ${incoming.fingerprint}) is not the same key as ${hexFingerprint(stored)}`);
  }
  const merged = await stored.update(await readSinglePublicKey(update), now, KEY_CHECK_CONFIG);
  return inspectPublicKey(merged.armor(KEY_CHECK_CONFIG), now);
}
