/**
 * Errors of the OpenPGP side of libs/crypto. Each carries a stable `code` and a message a tenant
 * can act on; none of them ever includes a passphrase, a private key or file contents.
 * All are `permanent`: retrying with the same key or passphrase cannot succeed.
 */
export class CryptoError extends Error {
  readonly code: string;
  readonly permanent = true;
  constructor(code: string, message: string) {
    super(message);
    this.name = new.target.name;
    this.code = code;
  }
}

export type KeyRejectionCode =
  | "key.unparseable"
  | "key.multiple_keys"
  | "key.private_key_given"
  | "key.no_encryption_key"
  | "key.expired"
  | "key.revoked"
  | "key.weak_rsa"
  | "key.unsupported_algorithm"
  | "key.unsupported_version";

/** A public key we will not encrypt to (bring-your-own validation, or a key that has since expired). */
export class KeyRejectedError extends CryptoError {
  declare readonly code: KeyRejectionCode;
  constructor(code: KeyRejectionCode, message: string) {
    super(code, message);
  }
}

/** A passphrase too weak to protect a generated private key. */
export class WeakPassphraseError extends CryptoError {
  constructor(reason: string) {
    super("passphrase.weak", reason);
  }
}

/** Why a private key given to us could not be read or unlocked. */
export type PrivateKeyUnlockCode = "private_key.unparseable" | "private_key.public_key_given" | "private_key.wrong_passphrase";

export type KeyPairProofCode = PrivateKeyUnlockCode | "private_key.mismatch";

/** The private key + passphrase given with a bring-your-own public key do not prove ownership. */
export class KeyPairProofError extends CryptoError {
  declare readonly code: KeyPairProofCode;
  constructor(code: KeyPairProofCode, message: string) {
    super(code, message);
  }
}

export type DecryptionErrorCode =
  | PrivateKeyUnlockCode
  | "decrypt.wrong_key"
  | "decrypt.key_is_stub"
  | "decrypt.malformed_message"
  | "decrypt.integrity_check_failed";

/** A file could not be decrypted with the private key and passphrase given. */
export class DecryptionError extends CryptoError {
  declare readonly code: DecryptionErrorCode;
  constructor(code: DecryptionErrorCode, message: string) {
    super(code, message);
  }
}
