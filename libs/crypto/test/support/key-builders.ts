import { generateKey, revokeKey } from "openpgp";
import type { PrivateKey } from "openpgp";

const DAY_MS = 86_400_000;
const DAY_S = 86_400;

export interface TwoSubkeyKeyOptions {
  /** When the key was made (default: 10 days before now). */
  created?: Date;
  /** Days from `created` until the primary key expires; never when absent. */
  primaryDays?: number;
  /** Days from `created` until the first encryption subkey expires; never when absent. */
  firstDays?: number;
  /** The second encryption subkey: when it was added (default: a day before now) and for how many days. */
  secondAdded?: Date;
  secondDays: number;
}

/**
 * A Curve25519 (v4, GnuPG 2.2-readable) key with two encryption subkeys: the first made with the
 * key, the second added later. The newest valid subkey is the one encrypted to; an older one takes
 * over once it has expired. `armored` is the public key.
 */
export async function twoSubkeyKey(options: TwoSubkeyKeyOptions): Promise<{ key: PrivateKey; armored: string }> {
  const created = options.created ?? new Date(Date.now() - 10 * DAY_MS);
  const { privateKey } = await generateKey({
    type: "ecc",
    curve: "curve25519Legacy",
    userIDs: [{ name: "Two subkeys", email: "two-subkeys@example.com" }],
    date: created,
    ...(options.primaryDays ? { keyExpirationTime: options.primaryDays * DAY_S } : {}),
    subkeys: [options.firstDays ? { keyExpirationTime: options.firstDays * DAY_S } : {}],
    format: "object",
  });
  const key = await privateKey.addSubkey({ date: options.secondAdded ?? new Date(Date.now() - DAY_MS), keyExpirationTime: options.secondDays * DAY_S });
  return { key, armored: key.toPublic().armor() };
}

/** A new Curve25519 public key and the same key revoked by its owner (its primary key). */
export async function keyAndItsRevocation(name = "Revoked later"): Promise<{ publicKey: string; revoked: string }> {
  const { privateKey } = await generateKey({ type: "ecc", curve: "curve25519Legacy", userIDs: [{ name }], format: "object" });
  return { publicKey: privateKey.toPublic().armor(), revoked: (await revokeKey({ key: privateKey, format: "armored" })).publicKey };
}
