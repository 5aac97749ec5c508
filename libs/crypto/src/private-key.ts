import { decryptKey, readPrivateKey } from "openpgp";
import type { PrivateKey } from "openpgp";
import type { PrivateKeyUnlockCode } from "./errors.js";
import { GNUPG22_CONFIG } from "./gnupg-compat.js";

/**
 * Reads an armored private key and unlocks it with the passphrase. Errors come from `fail`, so
 * each caller raises its own error class; no message ever contains the key or the passphrase.
 * Callers must `forgetPrivateKey` the result as soon as they are done with it.
 */
export async function unlockPrivateKey(
  armored: string,
  passphrase: string,
  fail: (code: PrivateKeyUnlockCode, message: string) => Error,
): Promise<PrivateKey> {
  let privateKey: PrivateKey;
  try {
    privateKey = await readPrivateKey({ armoredKey: armored.trim(), config: GNUPG22_CONFIG });
  } catch {
    if (/-----BEGIN PGP PUBLIC KEY BLOCK-----/.test(armored)) {
      throw fail("private_key.public_key_given", "this is a public key: give the PRIVATE key (gpg --armor --export-secret-keys <key id>)");
    }
    throw fail(
      "private_key.unparseable",
      "not an ASCII-armored OpenPGP private key: expected a block starting with -----BEGIN PGP PRIVATE KEY BLOCK-----",
    );
  }
  // A key exported without a passphrase is already usable: there is nothing to unlock.
  if (privateKey.isDecrypted()) return privateKey;
  try {
    return await decryptKey({ privateKey, passphrase, config: GNUPG22_CONFIG });
  } catch {
    throw fail("private_key.wrong_passphrase", "the passphrase does not unlock this private key");
  }
}

/** Zeroes the unlocked secret parameters so they do not linger in memory until garbage collection. */
export function forgetPrivateKey(privateKey: PrivateKey): void {
  // Present at runtime on every key; openpgp.js leaves it out of its type declarations.
  (privateKey as unknown as { clearPrivateParams(): void }).clearPrivateParams();
}
