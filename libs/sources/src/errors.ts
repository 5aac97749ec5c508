import { SOURCE_API_LABELS, type SourceApi } from "./apis.js";

/**
 * Stable codes of source failures. `permanent` ones fail the run at once (retrying cannot fix
 * them); the others are retried by the HTTP client and then by the job.
 */
export type SourceErrorCode =
  | "bad_credentials"
  | "missing_permission"
  | "data_access_not_enabled"
  | "api_not_available"
  | "unknown_account"
  | "unsupported_window"
  | "rate_limited"
  | "upstream_unavailable"
  | "upstream_rejected"
  | "malformed_response"
  | "record_too_large"
  | "response_too_large"
  | "pagination_loop";

const PERMANENT: Record<SourceErrorCode, boolean> = {
  bad_credentials: true,
  missing_permission: true,
  data_access_not_enabled: true,
  // Domain discovery lists no host for the API: the account does not have it.
  api_not_available: true,
  unknown_account: true,
  unsupported_window: true,
  upstream_rejected: true,
  // The same file would be refused again: a retry only downloads it once more.
  record_too_large: true,
  // A page that large would be as large again.
  response_too_large: true,
  rate_limited: false,
  upstream_unavailable: false,
  malformed_response: false,
  pagination_loop: false,
};

export class SourceError extends Error {
  override name = "SourceError";
  readonly permanent: boolean;
  constructor(
    readonly code: SourceErrorCode,
    message: string,
    readonly details: { api?: SourceApi; status?: number; byteOffset?: number; retryAfterMs?: number; url?: string } = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.permanent = PERMANENT[code];
  }

  /** A JSON-safe summary (no secrets: messages and details never carry credentials). */
  toJSON() {
    return { code: this.code, message: this.message, permanent: this.permanent, ...this.details };
  }
}

export function isSourceError(error: unknown): error is SourceError {
  return error instanceof SourceError;
}

export const sourceErrors = {
  badCredentials: (status: number, api?: SourceApi) =>
    new SourceError("bad_credentials", "The platform rejected the API key (wrong app key, secret, access token or token secret)", { status, ...(api ? { api } : {}) }),
  missingPermission: (api: SourceApi, status: number) =>
    new SourceError("missing_permission", `The API key has no permission for ${SOURCE_API_LABELS[api]}: enable it for this key in the platform's API key settings`, { api, status }),
  dataAccessNotEnabled: (api: SourceApi, status: number) =>
    new SourceError("data_access_not_enabled", `The account is not enabled for the Data Access API (${SOURCE_API_LABELS[api]}); ask the platform to enable it`, { api, status }),
  apiNotAvailable: (service: string, accountId: string, api?: SourceApi) =>
    new SourceError(
      "api_not_available",
      `Domain discovery lists no "${service}" service for account ${accountId}: ${api ? SOURCE_API_LABELS[api] : "the API served from it"} is not available to this account`,
      api ? { api } : {},
    ),
  malformed: (api: SourceApi | undefined, what: string, byteOffset: number) =>
    new SourceError("malformed_response", `Malformed response from ${api ? SOURCE_API_LABELS[api] : "the platform"}: ${what} at byte ${byteOffset}`, { ...(api ? { api } : {}), byteOffset }),
  recordTooLarge: (api: SourceApi | undefined, maxBytes: number, byteOffset: number) =>
    new SourceError(
      "record_too_large",
      `${api ? SOURCE_API_LABELS[api] : "The platform"} sent a record larger than ${describeBytes(maxBytes)} (starting at byte ${byteOffset}); records that large are not supported`,
      { ...(api ? { api } : {}), byteOffset },
    ),
  responseTooLarge: (api: SourceApi, maxBytes: number) =>
    new SourceError(
      "response_too_large",
      `${SOURCE_API_LABELS[api]} sent a page larger than ${describeBytes(maxBytes)}; stopped reading it there (pages that large are not supported)`,
      { api },
    ),
};

function describeBytes(bytes: number): string {
  return bytes >= 1024 * 1024 && bytes % (1024 * 1024) === 0 ? `${bytes / (1024 * 1024)} MiB` : `${bytes} bytes`;
}
