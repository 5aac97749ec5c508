import { randomBytes } from "node:crypto";
import { createMessage, decrypt, encrypt, readMessage } from "openpgp";
import type { PublicKey } from "openpgp";
import { KeyPairProofError } from "./errors.js";
import { GNUPG22_CONFIG } from "./gnupg-compat.js";
import { hexFingerprint, readSinglePublicKey } from "./inspect-public-key.js";
import { forgetPrivateKey, unlockPrivateKey } from "./private-key.js";

/**
 * Proves that the passphrase unlocks the private key and that the private key belongs to the
 * public key: the fingerprints match and a random challenge encrypted to the public key decrypts
 * with the private key. Both keys are forgotten afterwards (private parameters zeroed).
 */
export async function proveKeyPair(publicKeyArmored: string, privateKeyArmored: string, passphrase: string): Promise<void> {
  const publicKey = (await readSinglePublicKey(publicKeyArmored)) as PublicKey;
  const privateKey = await unlockPrivateKey(privateKeyArmored, passphrase, (code, message) => new KeyPairProofError(code, message));
  try {
    if (hexFingerprint(privateKey) !== hexFingerprint(publicKey)) {
      throw new KeyPairProofError(
        "private_key.mismatch",
        `the private key (fingerprint ${hexFingerprint(privateKey)}) does not belong to the public key (fingerprint ${hexFingerprint(publicKey)})`,
      );
    }
    const challenge = randomBytes(32);
    const sealed = await encrypt({
      message: await createMessage({ binary: challenge }),
      encryptionKeys: publicKey,
      format: "binary",
      config: GNUPG22_CONFIG,
    });
    let opened: Uint8Array;
    try {
      const result = await decrypt({
        message: await readMessage({ binaryMessage: sealed }),
        decryptionKeys: privateKey,
        format: "binary",
        config: GNUPG22_CONFIG,
      });
      opened = result.data as Uint8Array;
    } catch {
      throw new KeyPairProofError("private_key.mismatch", "the private key cannot decrypt messages encrypted to this public key");
    }
    if (!Buffer.from(opened).equals(challenge)) {
      throw new KeyPairProofError("private_key.mismatch", "the private key cannot decrypt messages encrypted to this public key");
    }
  } finally {
    forgetPrivateKey(privateKey);
  }
}
