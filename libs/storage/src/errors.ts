/** Why a destination could not be verified or written to; each maps to something a tenant can fix or wait out. */
export type DestinationErrorCode =
  | "dns"
  | "connect"
  | "auth"
  | "permission"
  | "not_found"
  | "host_key_changed"
  | "verification_failed"
  | "timeout"
  | "protocol";

/** Retrying cannot fix these: the tenant has to change credentials, grants, the bucket/folder or the pinned key. */
const PERMANENT_CODES: ReadonlySet<DestinationErrorCode> = new Set(["auth", "permission", "not_found", "host_key_changed"]);

/**
 * A destination failure with a stable code and a message a tenant can act on.
 * The message must never contain credentials: build it from host, bucket, folder and the
 * server's error code only, never from the request that carried the secret.
 */
export class DestinationError extends Error {
  override readonly name = "DestinationError";
  readonly code: DestinationErrorCode;
  readonly permanent: boolean;

  constructor(code: DestinationErrorCode, message: string, options: { permanent?: boolean; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.permanent = options.permanent ?? PERMANENT_CODES.has(code);
  }
}

export function isDestinationError(error: unknown): error is DestinationError {
  return error instanceof DestinationError;
}

/** A staging or managed-store key that is empty, absolute or escapes its root. */
export class StorageKeyError extends Error {
  override readonly name = "StorageKeyError";
  readonly code = "invalid_key";
  readonly permanent = true;

  constructor(key: string, reason: string) {
    super(`invalid storage key ${JSON.stringify(key.slice(0, 200))}: ${reason}`);
  }
}

/** A staging or managed-store object that does not exist (never written, or already swept). */
export class StorageObjectNotFoundError extends Error {
  override readonly name = "StorageObjectNotFoundError";
  readonly code = "object_not_found";
  readonly permanent = true;

  constructor(readonly key: string) {
    super(`storage object not found: ${key}`);
  }
}
