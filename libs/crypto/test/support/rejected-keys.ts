import { generateKey, revokeKey } from "openpgp";

/**
 * Public keys every bring-your-own check must refuse, generated at test time (never committed).
 * Shared with the gateway's tests, which assert the 400 each one gets.
 */
const DAY_MS = 86_400_000;

export async function expiredPublicKey(): Promise<string> {
  const { publicKey } = await generateKey({
    type: "ecc",
    curve: "curve25519Legacy",
    userIDs: [{ name: "Expired" }],
    date: new Date(Date.now() - 10 * DAY_MS),
    keyExpirationTime: DAY_MS / 1000,
    format: "armored",
  });
  return publicKey;
}

/** A key whose primary is valid but whose only encryption subkey expired. */
export async function expiredSubkeyPublicKey(): Promise<string> {
  const { publicKey } = await generateKey({
    type: "ecc",
    curve: "curve25519Legacy",
    userIDs: [{ name: "Old subkey" }],
    date: new Date(Date.now() - 10 * DAY_MS),
    subkeys: [{ keyExpirationTime: DAY_MS / 1000 }],
    format: "armored",
  });
  return publicKey;
}

export async function revokedPublicKey(): Promise<string> {
  const { privateKey } = await generateKey({ type: "ecc", curve: "curve25519Legacy", userIDs: [{ name: "Revoked" }], format: "object" });
  return (await revokeKey({ key: privateKey, format: "armored" })).publicKey;
}

/** An EdDSA primary key with no subkeys: it can sign, never encrypt. */
export async function signOnlyPublicKey(): Promise<string> {
  return (await generateKey({ type: "ecc", curve: "curve25519Legacy", userIDs: [{ name: "Signer" }], subkeys: [], format: "armored" })).publicKey;
}

export async function rsa1024PublicKey(): Promise<string> {
  return (await generateKey({ type: "rsa", rsaBits: 1024, userIDs: [{ name: "Weak" }], format: "armored", config: { minRSABits: 1024 } })).publicKey;
}

/** RSA 2048 primary, RSA 1024 encryption subkey. */
export async function rsa1024SubkeyPublicKey(): Promise<string> {
  return (
    await generateKey({ type: "rsa", rsaBits: 2048, subkeys: [{ rsaBits: 1024 }], userIDs: [{ name: "Weak subkey" }], format: "armored", config: { minRSABits: 1024 } })
  ).publicKey;
}

/** An RFC 9580 v6 key, which GnuPG 2.2 cannot read. */
export async function v6PublicKey(): Promise<string> {
  return (await generateKey({ type: "curve25519", userIDs: [{ name: "Modern" }], format: "armored", config: { v6Keys: true } })).publicKey;
}

/** A v4 key with RFC 9580's X25519/Ed25519 algorithm ids (what openpgp.js makes for "curve25519"): GnuPG 2.2 skips it. */
export async function rfc9580V4PublicKey(): Promise<string> {
  return (await generateKey({ type: "curve25519", userIDs: [{ name: "New curves" }], format: "armored", config: { v6Keys: false } })).publicKey;
}

/** A valid key that expires `days` from now. */
export async function expiringPublicKey(days: number): Promise<string> {
  return (await generateKey({ type: "ecc", curve: "curve25519Legacy", userIDs: [{ name: "Soon" }], keyExpirationTime: days * (DAY_MS / 1000), format: "armored" })).publicKey;
}

/** An unprotected private key (what a careless export looks like). */
export async function unprotectedPrivateKey(): Promise<string> {
  return (await generateKey({ type: "ecc", curve: "curve25519Legacy", userIDs: [{ name: "Bare" }], format: "armored" })).privateKey;
}
