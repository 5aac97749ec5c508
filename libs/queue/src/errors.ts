/**
 * An error that retrying cannot fix (bad credentials, missing permission, no encryption key,
 * changed host key…). A stage that throws it fails the run at once with this message.
 * Domain errors of the libs may instead carry `permanent: true`; both are honoured.
 */
export class PermanentError extends Error {
  override name = "PermanentError";
  readonly permanent = true;
  constructor(readonly code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export function isPermanent(error: unknown): boolean {
  return typeof error === "object" && error !== null && (error as { permanent?: unknown }).permanent === true;
}

/** A stable code for the run's `errorCode` column. */
export function errorCodeOf(error: unknown): string {
  const code = typeof error === "object" && error !== null ? (error as { code?: unknown }).code : undefined;
  return typeof code === "string" && /^[a-z0-9_.-]{1,64}$/i.test(code) ? code : "internal";
}

/**
 * How long the failing service asked to be left alone (a 429's Retry-After), when the error says
 * (`details.retryAfterMs`, as the platform's rate-limit errors carry it).
 */
export function retryAfterOf(error: unknown): number | undefined {
  const details = typeof error === "object" && error !== null ? (error as { details?: { retryAfterMs?: unknown } }).details : undefined;
  const ms = details?.retryAfterMs;
  return typeof ms === "number" && Number.isFinite(ms) && ms > 0 ? ms : undefined;
}
