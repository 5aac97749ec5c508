export * from "./seal.js";
export * from "./errors.js";
export * from "./passphrase.js";
export * from "./generate-key-pair.js";
export {
  MIN_RSA_BITS,
  inspectPublicKey,
  mergePublicKey,
  publicKeyFingerprint,
  updatePublicKey,
  type MergedPublicKey,
  type PublicKeyInfo,
  type Revocation,
  type RevokedPublicKey,
} from "./inspect-public-key.js";
export * from "./prove-key-pair.js";
export * from "./encrypt-stream.js";
export * from "./decrypt-stream.js";
export { GNUPG22_CONFIG } from "./gnupg-compat.js";
export { RecipientKeyCache } from "./recipient-keys.js";
