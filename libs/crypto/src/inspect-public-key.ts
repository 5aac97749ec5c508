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
  /**
   * When the key can no longer be encrypted to: the latest expiry among the (sub)keys valid for
   * encryption now, each capped by the primary key's expiry (an older subkey takes over once the
   * newest expires); absent when one of them never expires.
   */
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
 * Until when the key can be encrypted to: the latest instant any (sub)key valid for encryption at
 * `now` stays usable, each capped by the primary key's expiry; undefined when one never expires.
 * Not just the expiry of the subkey encrypted to now (the newest valid one): once it expires,
 * openpgp.js and GnuPG both fall back to an older valid subkey (or an encrypting primary key), so
 * the key is only dead when the last of them is.
 */
async function usableUntil(key: Key, primaryExpiry: Date | undefined, now: Date): Promise<Date | undefined> {
  let latest: Date | undefined;
  for (const candidate of [key, ...key.subkeys]) {
    try {
      // The same checks as the encryption itself (flags, binding, revocation, expiry, RSA floor, curves), for this (sub)key alone.
      await key.getEncryptionKey(candidate.getKeyID(), now, undefined, KEY_CHECK_CONFIG);
    } catch (error) {
      if (isEnvironmentFailure(error)) throw error;
      continue;
    }
    if (unsupportedAlgorithm(candidate.getAlgorithmInfo())) continue;
    const own = candidate === key ? undefined : expiryOf(await (candidate as Subkey).getExpirationTime(now, KEY_CHECK_CONFIG));
    const until = own && primaryExpiry ? (own < primaryExpiry ? own : primaryExpiry) : (own ?? primaryExpiry);
    if (!until) return undefined;
    if (!latest || until > latest) latest = until;
  }
  return latest;
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
  const expiresAt = await usableUntil(key, primaryExpiry, now);
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

/** How a key that cannot be encrypted to is revoked by its owner. */
export type Revocation =
  /** The primary key is revoked: the whole key is withdrawn. */
  | "key"
  /** No (sub)key is valid for encryption and at least one encryption subkey is revoked (the others revoked or otherwise unusable). */
  | "encryption_subkeys";

/** The stored key merged with an update that revokes it: it can no longer be encrypted to. */
export interface RevokedPublicKey {
  /** Upper-case hex fingerprint of the primary key. */
  fingerprint: string;
  revocation: Revocation;
  /** Why inspectPublicKey refuses the merged key (usually `key.revoked`). */
  reason: KeyRejectedError;
  /** The merged key re-armored from its packets, revocations included: what to store. */
  publicKey: string;
}

/** What mergePublicKey made of an update: a key that can be encrypted to, or the owner's revocation of it. */
export type MergedPublicKey = { usable: true; info: PublicKeyInfo } | { usable: false; revoked: RevokedPublicKey };

/** The upper-case fingerprint of the one public key in `armored` (KeyRejectedError when it is not one), without judging the key. */
export async function publicKeyFingerprint(armored: string): Promise<string> {
  return hexFingerprint(await readSinglePublicKey(armored));
}

/**
 * Whether the subkey has a valid revocation at `now`. Without a signature to check, openpgp.js's
 * Subkey.isRevoked answers exactly that (as Key.isRevoked does), but its typings demand one.
 */
function isSubkeyRevoked(subkey: Subkey, now: Date): Promise<boolean> {
  return subkey.isRevoked(undefined as unknown as SignaturePacket, undefined as unknown as Subkey["keyPacket"], now, KEY_CHECK_CONFIG);
}

/** How `key` is revoked at `now`, or null when it is not (it can be encrypted to, or is unusable for another reason). */
async function revocationOf(key: Key, now: Date): Promise<Revocation | null> {
  if (await key.isRevoked(undefined, undefined, now, KEY_CHECK_CONFIG)) return "key";
  try {
    await key.getEncryptionKey(undefined, now, undefined, KEY_CHECK_CONFIG);
    return null;
  } catch (error) {
    if (isEnvironmentFailure(error)) throw error;
  }
  const subkeys = (await encryptionCandidates(key, now)).filter((k): k is Subkey => k !== key);
  const revoked = await Promise.all(subkeys.map((subkey) => isSubkeyRevoked(subkey, now)));
  return revoked.some(Boolean) ? "encryption_subkeys" : null;
}

/** Fingerprints of the primary key and subkeys that are revoked at `now`. */
async function revokedParts(key: Key, now: Date): Promise<Set<string>> {
  const parts = new Set<string>();
  if (await key.isRevoked(undefined, undefined, now, KEY_CHECK_CONFIG)) parts.add(hexFingerprint(key));
  for (const subkey of key.subkeys) {
    if (await isSubkeyRevoked(subkey, now)) parts.add(hexFingerprint(subkey));
  }
  return parts;
}

/**
 * The key on the account (`current`) merged with a new export of the same key (`update`), the way
 * GnuPG merges a key it imports: new self-signatures (an extended expiry), new subkeys and
 * revocations are taken, and nothing the stored key had is dropped, so an older export cannot undo
 * a subkey's revocation. A `current` that cannot be read is simply replaced by the update.
 *
 * The update must pass inspectPublicKey on its own and so must the merged key (each refused with
 * its KeyRejectedError), with one exception: the owner's revocation. When the merged key is
 * revoked (its primary key, or every encryption subkey revoked or unusable) and the update is what
 * revoked it (the stored key was usable, or the update brings a revocation it lacked), or the
 * stored key was already refused as revoked, the result is `{ usable: false }` with the merged key
 * to store, so the caller can take the revocation and stop encrypting to the key. A revoked key
 * with nothing stored to merge into is refused like any unusable key.
 */
export async function mergePublicKey(current: string, update: string, now: Date = new Date()): Promise<MergedPublicKey> {
  const incoming = await readSinglePublicKey(update);
  let incomingInfo: PublicKeyInfo | undefined;
  let incomingRejection: KeyRejectedError | undefined;
  try {
    incomingInfo = await inspectPublicKey(update, now);
  } catch (error) {
    if (!(error instanceof KeyRejectedError) || !(await revocationOf(incoming, now))) throw error;
    incomingRejection = error;
  }
  let stored: Key;
  try {
    stored = await readSinglePublicKey(current);
  } catch (error) {
    if (!(error instanceof KeyRejectedError)) throw error;
    if (!incomingInfo) throw incomingRejection as KeyRejectedError;
    return { usable: true, info: incomingInfo };
  }
  const fingerprint = hexFingerprint(stored);
  if (hexFingerprint(incoming) !== fingerprint) {
    throw new Error(`the update (fingerprint ${hexFingerprint(incoming)}) is not the same key as ${fingerprint}`);
  }
  const storedRejection = await inspectPublicKey(current, now).then(
    () => null,
    (error: unknown) => {
      if (error instanceof KeyRejectedError) return error;
      throw error;
    },
  );
  const storedRevoked = await revokedParts(stored, now);
  const merged = await stored.update(incoming, now, KEY_CHECK_CONFIG);
  const publicKey = merged.armor(KEY_CHECK_CONFIG);
  try {
    return { usable: true, info: await inspectPublicKey(publicKey, now) };
  } catch (error) {
    if (!(error instanceof KeyRejectedError)) throw error;
    const revocation = await revocationOf(merged, now);
    if (!revocation) throw error;
    // The update revoked it when the stored key was usable or it brings a revocation the stored key
    // lacked; a key stored revoked stays so (the same revocation again is no error). Otherwise the
    // key was already unusable (e.g. expired) and is refused as before.
    const newlyRevoked = [...(await revokedParts(merged, now))].some((part) => !storedRevoked.has(part));
    if (storedRejection !== null && !newlyRevoked && storedRejection.code !== "key.revoked") throw error;
    return { usable: false, revoked: { fingerprint, revocation, reason: error, publicKey } };
  }
}

/**
 * mergePublicKey for callers that only take a key they can encrypt to: the owner's revocation is
 * refused too (KeyRejectedError, usually `key.revoked`). The result describes the merged key,
 * whose `publicKey` is what to store.
 */
export async function updatePublicKey(current: string, update: string, now: Date = new Date()): Promise<PublicKeyInfo> {
  const merged = await mergePublicKey(current, update, now);
  if (!merged.usable) throw merged.revoked.reason;
  return merged.info;
}
