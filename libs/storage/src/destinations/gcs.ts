import { randomUUID } from "node:crypto";
import { Readable, Transform } from "node:stream";
import type { TransformCallback, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { CRC32C, IdempotencyStrategy, Storage } from "@google-cloud/storage";
import type { File } from "@google-cloud/storage";
import { JWT } from "google-auth-library";
import { z } from "zod";
import { DestinationError } from "../errors.js";
import { endpointUrlSchema } from "../network/endpoint-url.js";
import { googleRequestOptions } from "../network/google-http.js";
import { watchSource } from "../staging/body-ownership.js";
import { MeasuringStream } from "../staging/measure.js";
import { assertPublicEndpoint, BlockedEndpointError, endpointSettingProblem, refusingBlockedEndpoints, SECURE_ENDPOINTS } from "./endpoint-policy.js";
import type { EndpointPolicy } from "./endpoint-policy.js";
import type { DeliveryMeta, DeliveryResult, DestinationAdapter, VerifyResult } from "./types.js";

const KIB = 1024;
const MIB = 1024 * KIB;
/** Google's unit for resumable chunks. */
const CHUNK_UNIT = 256 * KIB;
const MAX_RESUMABLE_THRESHOLD = 32 * MIB;
const MAX_CHUNK_SIZE = 64 * MIB;
/** Each HTTP request (token, metadata, delete, upload session) gets this long for an answer. */
const DEFAULT_REQUEST_TIMEOUT_MS = 60_000;
/** An upload with nothing sent and nothing answered for this long is abandoned (backstop for the request timeouts). */
const DEFAULT_IDLE_TIMEOUT_MS = 120_000;
/**
 * A request carrying an upload body gets the request timeout plus the time its largest body
 * takes at this rate: the library's timeout covers sending the body, not only the wait after it.
 */
const SLOWEST_UPLOAD_BYTES_PER_SECOND = 256 * KIB;

/** How long the adapter waits on Cloud Storage; the defaults suit production, tests shorten them. */
export interface GcsTimeouts {
  /** Each HTTP request; one carrying an upload body gets extra time to send it (see SLOWEST_UPLOAD_BYTES_PER_SECOND). Default 60 s. */
  requestTimeoutMs?: number;
  /**
   * An upload during which nothing is sent and nothing answered for this long is abandoned as a
   * retryable timeout; time spent waiting on the source does not count. Default 2 min.
   */
  idleTimeoutMs?: number;
}

function positiveTimeout(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value <= 0) throw new RangeError(`${name} must be a positive number of milliseconds`);
  return value;
}

/** The library timeout for a request that carries up to one resumable chunk or one single-request upload. */
function uploadRequestTimeoutMs(config: Pick<GcsConfig, "resumableThresholdBytes" | "chunkSizeBytes">, requestTimeoutMs: number): number {
  const largestBody = Math.max(config.resumableThresholdBytes, config.chunkSizeBytes);
  return requestTimeoutMs + Math.ceil((largestBody / SLOWEST_UPLOAD_BYTES_PER_SECOND) * 1000);
}

/** True for a request body that streams (an upload chunk), false for JSON, forms and none. */
function isStreamBody(body: unknown): boolean {
  return typeof (body as { pipe?: unknown } | null | undefined)?.pipe === "function";
}

function normalisePrefix(prefix: string): string {
  const trimmed = prefix.replace(/^\/+|\/+$/g, "");
  return trimmed === "" ? "" : `${trimmed}/`;
}

export const gcsConfigSchema = z.object({
  bucket: z
    .string()
    .min(3)
    .max(222)
    .regex(/^[a-z0-9][a-z0-9._-]*[a-z0-9]$/, "a Cloud Storage bucket name: lower-case letters, digits, dots, hyphens and underscores"),
  /** Object name prefix ("folder") inside the bucket. */
  prefix: z
    .string()
    .max(512)
    .refine((p) => !p.split("/").some((segment) => segment === "." || segment === ".."), "no . or .. segments")
    .default("")
    .transform(normalisePrefix),
  /**
   * Another JSON API endpoint (private service connect, a compatible store); Google's by default.
   * No credentials in it; https, outside this service's own network, unless ALLOW_INSECURE_ENDPOINTS (see gcsConfigSchemaFor).
   */
  apiEndpoint: endpointUrlSchema().optional(),
  /**
   * Files at least this large go up as a resumable upload; smaller ones in one multipart request.
   * Everything below it is held in memory (on a shared deliverer) to tell the two apart.
   */
  resumableThresholdBytes: z
    .number()
    .int()
    .min(0)
    .max(MAX_RESUMABLE_THRESHOLD, "at most 32 MiB (33554432): files below the threshold are held in memory")
    .default(8 * MIB),
  /** Size of each resumable request, held in memory while it is sent; Google wants a multiple of 256 KiB. */
  chunkSizeBytes: z
    .number()
    .int()
    .min(CHUNK_UNIT, "at least 256 KiB (262144)")
    .max(MAX_CHUNK_SIZE, "at most 64 MiB (67108864): each chunk is held in memory while it uploads")
    .refine((n) => n % CHUNK_UNIT === 0, "a multiple of 256 KiB (262144)")
    .default(8 * MIB),
});
export type GcsConfig = z.output<typeof gcsConfigSchema>;

/** The settings schema under an endpoint policy: without ALLOW_INSECURE_ENDPOINTS apiEndpoint must be https and public. */
export function gcsConfigSchemaFor(policy: EndpointPolicy): z.ZodType<GcsConfig> {
  return refusingBlockedEndpoints(gcsConfigSchema, policy, ["apiEndpoint"], (config) => endpointSettingProblem(config.apiEndpoint, policy));
}

/**
 * The fields of a service account key file, as Google writes them: nothing else is kept. Other
 * fields are dropped (z.object strips them), so what is sealed and stored is a key, not whatever
 * a client sent alongside it (a field nested thousands of levels deep cannot even be sealed).
 */
const serviceAccountKeySchema = z.object({
  type: z.literal("service_account"),
  client_email: z.string().email(),
  private_key: z.string().includes("PRIVATE KEY", { message: "a PEM private key" }),
  private_key_id: z.string().optional(),
  project_id: z.string().optional(),
  client_id: z.string().optional(),
  token_uri: z.url({ protocol: /^https?$/ }).optional(),
  auth_uri: z.string().optional(),
  auth_provider_x509_cert_url: z.string().optional(),
  client_x509_cert_url: z.string().optional(),
  universe_domain: z.string().optional(),
});
export type GcsServiceAccountKey = z.output<typeof serviceAccountKeySchema>;

/** The service account's JSON key, as downloaded from the Google Cloud console (object or its text). */
export const gcsCredentialsSchema = z.object({
  serviceAccountKey: z
    .union([z.string(), z.record(z.string(), z.unknown())])
    .transform((value, ctx) => {
      if (typeof value !== "string") return value;
      try {
        return JSON.parse(value) as unknown;
      } catch {
        ctx.addIssue({ code: "custom", message: "the service account key is not valid JSON" });
        return z.NEVER;
      }
    })
    .pipe(serviceAccountKeySchema),
});
export type GcsCredentials = z.output<typeof gcsCredentialsSchema>;

/**
 * The credentials schema under an endpoint policy: the key's token_uri receives a signed JWT, so
 * without ALLOW_INSECURE_ENDPOINTS it must be https and public like apiEndpoint.
 */
export function gcsCredentialsSchemaFor(policy: EndpointPolicy): z.ZodType<GcsCredentials> {
  return refusingBlockedEndpoints(gcsCredentialsSchema, policy, ["serviceAccountKey", "token_uri"], (credentials) => endpointSettingProblem(credentials.serviceAccountKey.token_uri, policy));
}

/**
 * Checks apiEndpoint and token_uri before the client library connects: scheme and literal host,
 * then every address the names resolve to, so a setting that points inside our network is named
 * in the error. The connections themselves are checked again as they are made (see
 * gcsStorageClient): a name may resolve elsewhere by then.
 */
async function assertEndpointsAllowed(config: GcsConfig, credentials: GcsCredentials, policy: EndpointPolicy): Promise<void> {
  await assertPublicEndpoint("config.apiEndpoint", config.apiEndpoint, policy);
  const tokenUri = credentials.serviceAccountKey.token_uri;
  if (tokenUri !== undefined && !GOOGLE_TOKEN_URIS.has(tokenUri)) await assertPublicEndpoint("credentials.serviceAccountKey.token_uri", tokenUri, policy);
}

/** Where the client library always sends token requests, and the token_uri Google writes into keys. */
const LIBRARY_TOKEN_URL = "https://www.googleapis.com/oauth2/v4/token";
const GOOGLE_TOKEN_URIS = new Set([LIBRARY_TOKEN_URL, "https://oauth2.googleapis.com/token", "https://accounts.google.com/o/oauth2/token"]);

/** How gcsStorageClient's client may connect. */
export interface GcsClientOptions extends Pick<GcsTimeouts, "requestTimeoutMs"> {
  /**
   * The adapter's endpoint policy. Without ALLOW_INSECURE_ENDPOINTS every connection is checked
   * as it is made; when unset (tests reading objects back) connections go wherever names resolve.
   */
  policy?: EndpointPolicy;
}

/**
 * A @google-cloud/storage client for a destination: the service account's key, its token_uri
 * honoured, credentials sent to a custom apiEndpoint too. `purpose` sets retries: none when
 * verifying (a person is waiting), a few when delivering.
 *
 * Under the secure policy every connection, token requests included, resolves its host through
 * the public-only lookup, and no request follows a redirect (network/google-http.ts says how
 * each of the library's HTTP stacks is told).
 *
 * Every request has a timeout (the library's default is none for uploads): `requestTimeoutMs`,
 * plus time to send the body for uploads. The library's own requests (metadata, delete, the
 * single-request upload) take it from the Storage `timeout` and the interceptor below; token
 * requests, and resumable uploads to Google's endpoint, go through the key's gaxios client and
 * its request interceptor. Resumable uploads to a custom apiEndpoint bypass that client: deliver
 * gives them theirs (timeoutResumableUploads).
 */
export function gcsStorageClient(
  config: GcsConfig,
  credentials: GcsCredentials,
  purpose: "verify" | "deliver" = "deliver",
  options: GcsClientOptions = {},
): { storage: Storage; authClient: JWT } {
  const requestTimeoutMs = positiveTimeout("requestTimeoutMs", options.requestTimeoutMs, DEFAULT_REQUEST_TIMEOUT_MS);
  const uploadTimeoutMs = uploadRequestTimeoutMs(config, requestTimeoutMs);
  const requestOptions = googleRequestOptions({ publicOnly: options.policy !== undefined && !options.policy.allowInsecureEndpoints });
  const key = credentials.serviceAccountKey;
  const authClient = new JWT({
    email: key.client_email,
    key: key.private_key,
    keyId: key.private_key_id,
    scopes: ["https://www.googleapis.com/auth/devstorage.read_write"],
    // Token requests, and resumable uploads to Google's endpoint.
    transporterOptions: requestOptions,
  });
  // The library ignores token_uri and always asks Google; a key that names another token
  // endpoint (a private deployment, our test server) gets its token requests sent there.
  const tokenUri = key.token_uri;
  const redirectTokens = tokenUri !== undefined && !GOOGLE_TOKEN_URIS.has(tokenUri);
  authClient.gaxios?.interceptors.request.add({
    resolved: async (options) => ({
      ...options,
      ...(redirectTokens && String(options.url) === LIBRARY_TOKEN_URL ? { url: tokenUri } : {}),
      // Token requests, resumable session starts, status checks and chunks (a streamed body).
      timeout: options.timeout || (isStreamBody(options.body) ? uploadTimeoutMs : requestTimeoutMs),
    }),
  });
  const storage = new Storage({
    projectId: key.project_id,
    authClient,
    apiEndpoint: config.apiEndpoint,
    // Metadata reads, deletes and single-request uploads; the latter get more below.
    timeout: requestTimeoutMs,
    // Without this the library sends no credentials to a non-Google endpoint.
    useAuthWithCustomEndpoint: true,
    retryOptions: {
      autoRetry: purpose === "deliver",
      maxRetries: purpose === "deliver" ? 3 : 0,
      retryDelayMultiplier: 2,
      maxRetryDelay: 8,
      totalTimeout: 300,
      // Re-sending an upload replaces the same object name: one copy either way.
      idempotencyStrategy: IdempotencyStrategy.RetryAlways,
    },
  });
  // Every request of the library, and its resumable uploads' options (built from {}).
  storage.interceptors.push({ request: (options) => ({ ...options, ...requestOptions }) as unknown as ReturnType<Storage["interceptors"][number]["request"]> });
  // A single-request upload is a multipart/related request: time to send the body as well. (Also
  // applied to resumable uploads' options, built from {}: left as they are.)
  storage.interceptors.push({
    request: (options) => ("multipart" in options && options.multipart ? { ...options, timeout: uploadTimeoutMs } : options) as unknown as ReturnType<Storage["interceptors"][number]["request"]>,
  });
  return { storage, authClient };
}

/**
 * Gives every request of a resumable upload of `file` a timeout, until the returned function is
 * called. The library builds a resumable upload's request options from the file's interceptors
 * (its own options carry no timeout), and to a custom apiEndpoint sends them through the bare
 * gaxios module, past the key's client and its interceptor. While the upload runs, the file's
 * other requests get the same timeout (the upload's is the longer one): hence the removal after.
 */
function timeoutResumableUploads(file: File, timeoutMs: number): () => void {
  const interceptor = {
    request: (options: Parameters<File["interceptors"][number]["request"]>[0]) => ({ ...options, timeout: timeoutMs }) as unknown as ReturnType<File["interceptors"][number]["request"]>,
  };
  file.interceptors.push(interceptor);
  return () => {
    const at = file.interceptors.indexOf(interceptor);
    if (at >= 0) file.interceptors.splice(at, 1);
  };
}

/**
 * @google-cloud/storage 7 drops credentials from resumable uploads to a custom apiEndpoint
 * (startResumableUpload_ does not pass useAuthWithCustomEndpoint on), so for those the bearer
 * token is added to the file's requests here. Google's own endpoint needs none of this.
 */
async function sendTokenWithResumableUploads(config: GcsConfig, authClient: JWT, file: File): Promise<void> {
  if (!config.apiEndpoint) return;
  const { token } = await authClient.getAccessToken();
  if (!token) return;
  file.interceptors.push({
    request: (options) => {
      options.headers = { ...options.headers, Authorization: `Bearer ${token}` };
      // The declared types differ (request's Options in, DecorateRequestOptions out); it is the same object.
      return options as unknown as ReturnType<File["interceptors"][number]["request"]>;
    },
  });
}

function where(config: GcsConfig): string {
  const host = config.apiEndpoint ? new URL(config.apiEndpoint).host : "storage.googleapis.com";
  return `gs://${config.bucket}/${config.prefix} (${host})`;
}

const DNS_CODES = new Set(["ENOTFOUND", "EAI_AGAIN", "EAI_FAIL", "EAI_NONAME"]);
const CONNECT_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "EHOSTUNREACH", "ENETUNREACH", "EPIPE", "ECONNABORTED", "EPROTO", "CERT_HAS_EXPIRED", "DEPTH_ZERO_SELF_SIGNED_CERT", "UNABLE_TO_VERIFY_LEAF_SIGNATURE"]);
const TIMEOUT_CODES = new Set(["ETIMEDOUT", "ESOCKETTIMEDOUT", "ECONNABORTED_TIMEOUT"]);
/** node-fetch's (under gaxios and teeny-request) errors when a request's timeout passes. */
const FETCH_TIMEOUT_TYPES = new Set(["request-timeout", "body-timeout"]);

type ErrorLike = { code?: unknown; cause?: unknown; error?: unknown; errno?: unknown; message?: unknown; type?: unknown; config?: { url?: unknown } } | undefined;

/** The error and those it wraps: `cause`, and gaxios's `error` (the fetch error behind a GaxiosError). */
function errorChain(error: unknown): NonNullable<ErrorLike>[] {
  const chain: NonNullable<ErrorLike>[] = [];
  for (let e = error as ErrorLike; e && typeof e === "object" && chain.length < 5 && !chain.includes(e); e = (e.cause ?? e.error) as ErrorLike) chain.push(e);
  return chain;
}

/** True when a request's timeout ran out (node-fetch "network timeout at …", gaxios wrapping it). */
function isRequestTimeout(error: unknown): boolean {
  return errorChain(error).some(
    (e) => (typeof e.type === "string" && FETCH_TIMEOUT_TYPES.has(e.type)) || (typeof e.message === "string" && /^(network timeout at|Response timeout while trying)/.test(e.message)),
  );
}

/**
 * True when a connection was refused because its host resolved inside this service's network
 * (the public-only lookup's InternalAddressError: node-fetch keeps its code, the resumable
 * upload only its message).
 */
function isInternalAddress(error: unknown): boolean {
  return errorChain(error).some((e) => e.code === "ERR_INTERNAL_ADDRESS" || (typeof e.message === "string" && e.message.includes("ERR_INTERNAL_ADDRESS")));
}

/** The setting whose host a refused connection went to: token_uri when the refused request was a token request. */
function refusedSetting(error: unknown, tokenUri: string | undefined): string {
  const tokenRequest = tokenUri !== undefined && errorChain(error).some((e) => e.config?.url !== undefined && String(e.config.url) === tokenUri);
  return tokenRequest ? "credentials.serviceAccountKey.token_uri" : "config.apiEndpoint";
}

/** True when a request was answered with a redirect, which the client does not follow (node-fetch's limit of none reached). */
function isRedirect(error: unknown): boolean {
  return errorChain(error).some((e) => e.type === "max-redirect");
}

/**
 * Finds a socket error code in an error's cause chain (gaxios wraps fetch errors), or in its
 * message: after its own retries the resumable upload throws a plain "Retry limit exceeded -
 * … reason: read ECONNRESET" Error.
 */
function socketCode(error: unknown): string | undefined {
  for (const e of errorChain(error)) {
    if (typeof e.code === "string" && /^E[A-Z_]+$/.test(e.code)) return e.code;
    if (typeof e.errno === "string") return e.errno;
    const inMessage = typeof e.message === "string" ? /\b(E(?:CONN[A-Z]+|NOTFOUND|AI_[A-Z]+|HOSTUNREACH|NETUNREACH|PIPE|TIMEDOUT|SOCKETTIMEDOUT|PROTO))\b/.exec(e.message) : null;
    if (inMessage) return inMessage[1];
  }
  return undefined;
}

/**
 * True when an OAuth error_description says the JWT's time claims were refused (Google: "Invalid
 * JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your
 * iat and exp values in the JWT claim."), as opposed to the key itself ("Invalid JWT Signature.").
 */
function isJwtTimeRefusal(description: unknown): boolean {
  return typeof description === "string" && /\b(iat|exp)\b|reasonable timeframe|short-lived token/i.test(description);
}

/**
 * Turns a client-library, OAuth or socket error into a DestinationError with a reason the tenant
 * can act on. Server messages are not copied in; the status and code say enough. `tokenUri` (the
 * key's) tells which setting a refused connection went to.
 */
export function gcsErrorToDestinationError(error: unknown, config: GcsConfig, action: string, tokenUri?: string): DestinationError {
  if (error instanceof DestinationError) return error;
  if (isInternalAddress(error)) {
    const field = refusedSetting(error, tokenUri);
    return new BlockedEndpointError(field, `${action}: the host of ${field} resolves inside this service's own network; destinations must be reachable on the public internet`);
  }
  const e = (error ?? {}) as { code?: unknown; status?: number; message?: string; response?: { status?: number; data?: unknown } };
  const status = typeof e.code === "number" ? e.code : (e.response?.status ?? e.status);
  const oauthData = e.response?.data as { error?: unknown; error_description?: unknown } | undefined;
  const oauthError = oauthData?.error;
  const at = where(config);
  // The client library compares its CRC32C/MD5 with the server's and deletes a mismatching upload itself.
  if (e.code === "FILE_NO_UPLOAD" || e.code === "FILE_NO_UPLOAD_DELETE")
    return new DestinationError("verification_failed", `${action}: the stored object's checksum differs from the bytes sent${e.code === "FILE_NO_UPLOAD" ? "; the object was removed" : ""} (${at})`);
  // Google answers invalid_grant also to a JWT whose iat/exp fall outside its window, which a key
  // cannot cause: this service's clock is off. Like S3's RequestTimeTooSkewed, worth retrying.
  if (oauthError === "invalid_grant" && isJwtTimeRefusal(oauthData?.error_description))
    return new DestinationError(
      "timeout",
      `${action}: the token endpoint refused the signed token's time (invalid_grant): this service's clock and Google's differ too much; the clock is off and needs synchronising (NTP) (${at})`,
    );
  if (oauthError === "invalid_grant" || oauthError === "invalid_client" || oauthError === "unauthorized_client" || status === 401)
    return new DestinationError("auth", `${action}: the service account key was refused; check that the key is current and not deleted (${at})`);
  if (/DECODER routines|PEM|private key/i.test(e.message ?? "")) return new DestinationError("auth", `${action}: the service account key's private key cannot be used`);
  if (status === 403) return new DestinationError("permission", `${action}: access denied; the service account needs storage.objects.create, get and delete on ${at}`);
  if (status === 404 && /bucket/i.test(e.message ?? "")) return new DestinationError("not_found", `${action}: bucket "${config.bucket}" does not exist at ${at}`);
  // Any other 404 (or 410) names no bucket: an upload session Google expired or cancelled, which
  // a new upload replaces, or an object gone meanwhile. Worth a retry, not a "missing bucket".
  if (status === 404 || status === 410)
    return new DestinationError("protocol", `${action}: ${at} no longer knows the upload or object (HTTP ${status}; an upload session expires or is cancelled); a retry starts over`);
  if (isRedirect(error)) return new DestinationError("protocol", `${action}: the endpoint answered with a redirect, which is not followed; use the address it redirects to (${at})`);
  const code = socketCode(error);
  if (code && DNS_CODES.has(code)) return new DestinationError("dns", `${action}: host name of ${at} cannot be resolved (${code})`);
  if (code && CONNECT_CODES.has(code)) return new DestinationError("connect", `${action}: cannot connect to ${at} (${code})`);
  if ((code && TIMEOUT_CODES.has(code)) || status === 408 || isRequestTimeout(error)) return new DestinationError("timeout", `${action}: ${at} did not answer in time`);
  const label = [status ? `HTTP ${status}` : "", code ?? ""].filter(Boolean).join(", ");
  return new DestinationError("protocol", `${action}: ${at} answered unexpectedly${label ? ` (${label})` : ""}`);
}

/** CRC32C of the bytes passing through, in GCS's form (base64 of the big-endian value). */
class Crc32cStream extends Transform {
  readonly crc = new CRC32C();
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.crc.update(chunk);
    callback(null, chunk);
  }
}

/**
 * Abandons an upload that has stalled: nothing sent and nothing answered for `idleMs` while the
 * upload waits on Cloud Storage (time spent waiting on the source does not count). The backstop
 * behind the per-request timeouts, for whatever the library leaves waiting without one. Watches
 * every write stream the file creates (the library makes a new one per retry); on expiry destroys
 * them and rejects `stalled`.
 */
class StallWatchdog {
  /** Rejects with the timeout error when the upload stalls; never resolves. */
  readonly stalled: Promise<never>;
  private expire!: (error: DestinationError) => void;
  private timer: NodeJS.Timeout | undefined;
  private waitingOnSource = false;
  private stopped = false;
  private readonly streams = new Set<Writable>();

  constructor(
    private readonly idleMs: number,
    private readonly error: () => DestinationError,
  ) {
    this.stalled = new Promise<never>((_resolve, reject) => {
      this.expire = reject;
    });
    this.stalled.catch(() => undefined); // only raced, never awaited alone
    this.touch();
  }

  /** Something moved: bytes accepted, a response arrived. */
  readonly touch = (): void => {
    clearTimeout(this.timer);
    if (this.stopped || this.waitingOnSource) return;
    this.timer = setTimeout(() => this.fire(), this.idleMs);
  };

  /** Watches a write stream of the upload: its progress and responses count as movement. */
  watch<T extends Writable>(stream: T): T {
    this.streams.add(stream);
    stream.on("progress", this.touch).on("response", this.touch);
    stream.once("close", () => this.streams.delete(stream));
    return stream;
  }

  /** Waits for the source without the clock running. */
  async fromSource<T>(next: Promise<T>): Promise<T> {
    this.waitingOnSource = true;
    clearTimeout(this.timer);
    try {
      return await next;
    } finally {
      this.waitingOnSource = false;
      this.touch();
    }
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private fire(): void {
    if (this.stopped) return;
    this.stop();
    const error = this.error();
    for (const stream of this.streams) stream.destroy(error);
    this.expire(error);
  }
}

/** The object name of a delivered file: prefix, optional subfolder, file name. */
export function gcsObjectName(config: Pick<GcsConfig, "prefix">, fileName: string, subfolder?: string): string {
  const folder = subfolder ? normalisePrefix(subfolder) : "";
  return `${config.prefix}${folder}${fileName}`;
}

/**
 * The Cloud Storage adapter under an endpoint policy (services pass ALLOW_INSECURE_ENDPOINTS
 * through the registry). Its schemas refuse a disallowed apiEndpoint or token_uri when settings
 * are saved; verify and deliver check again, resolving the names, before connecting.
 */
export function createGcsAdapter(policy: EndpointPolicy, timeouts: GcsTimeouts = {}): DestinationAdapter<GcsConfig, GcsCredentials> {
  const requestTimeoutMs = positiveTimeout("requestTimeoutMs", timeouts.requestTimeoutMs, DEFAULT_REQUEST_TIMEOUT_MS);
  const idleTimeoutMs = positiveTimeout("idleTimeoutMs", timeouts.idleTimeoutMs, DEFAULT_IDLE_TIMEOUT_MS);
  return {
    kind: "gcs",
    configSchema: gcsConfigSchemaFor(policy),
    credentialsSchema: gcsCredentialsSchemaFor(policy),

    async verify(config, credentials): Promise<VerifyResult<GcsConfig>> {
      const tokenUri = credentials.serviceAccountKey.token_uri;
      try {
        await assertEndpointsAllowed(config, credentials, policy);
      } catch (error) {
        return { ok: false, error: gcsErrorToDestinationError(error, config, "checking the endpoint", tokenUri) };
      }
      const { storage, authClient } = gcsStorageClient(config, credentials, "verify", { requestTimeoutMs, policy });
      const file = storage.bucket(config.bucket).file(`${config.prefix}.transporter-probe-${randomUUID()}`);
      const payload = Buffer.from("transporter destination probe\n");
      let step = "writing a probe object";
      // Once the probe may be written, it is deleted whatever happens next: a key that may write
      // but not read (a drop bucket) must not collect a probe per verification.
      let probeLeft = false;
      try {
        // The token first: when it cannot be had, nothing reached the bucket and there is nothing to delete.
        await authClient.getAccessToken();
        // Before the upload, not after: its reply can be lost once the store has kept the object.
        // Deleting a probe that was never stored is harmless.
        probeLeft = true;
        await file.save(payload, { resumable: false, contentType: "text/plain", validation: "crc32c", timeout: requestTimeoutMs });
        step = "reading the probe object's metadata";
        const [metadata] = await file.getMetadata();
        if (Number(metadata.size) !== payload.length) {
          return { ok: false, error: new DestinationError("verification_failed", `the probe object at ${where(config)} has ${metadata.size} bytes, ${payload.length} were written`) };
        }
        step = "deleting the probe object";
        probeLeft = false; // this is the deletion: its failure is the result, not retried below
        await file.delete();
        return { ok: true, details: `${where(config)}: wrote, read back and deleted a probe object` };
      } catch (error) {
        return { ok: false, error: gcsErrorToDestinationError(error, config, step, tokenUri) };
      } finally {
        // Best effort; the result above stands either way.
        if (probeLeft) await file.delete({ ignoreNotFound: true }).catch(() => undefined);
      }
    },

    async deliver(body: Readable, fileName: string, meta: DeliveryMeta, config, credentials): Promise<DeliveryResult> {
      const tokenUri = credentials.serviceAccountKey.token_uri;
      // A staging read of the wrong size fails the upload before it is finalised: the object it
      // would replace (an earlier delivery of the window) stays as it was.
      const measure = new MeasuringStream({ md5: true, ...(meta.expectedBytes !== undefined ? { expectedBytes: meta.expectedBytes } : {}) });
      const crc = new Crc32cStream();
      // Listened to before anything is awaited: a body failing meanwhile would otherwise be an
      // uncaught error, or pipe nothing into an upload that then waits for ever.
      let sourceError: unknown;
      // An error, or a close before its end, cuts the upload (see watchSource).
      const source = watchSource(body, (error) => {
        sourceError = error;
        measure.destroy(error);
      });
      measure.once("error", (error) => crc.destroy(error));
      crc.on("error", () => undefined); // read through its iterator below, which throws the error
      try {
        await assertEndpointsAllowed(config, credentials, policy);
      } catch (error) {
        source.stop();
        throw gcsErrorToDestinationError(error, config, "checking the endpoint", tokenUri);
      }
      if (sourceError !== undefined) throw sourceError;
      const { storage, authClient } = gcsStorageClient(config, credentials, "deliver", { requestTimeoutMs, policy });
      const name = gcsObjectName(config, fileName, meta.subfolder);
      const file = storage.bucket(config.bucket).file(name);
      const uploadTimeoutMs = uploadRequestTimeoutMs(config, requestTimeoutMs);
      const measured = body.pipe(measure).pipe(crc);
      const contentType = meta.contentType ?? "application/octet-stream";

      // Read up to the threshold: a file that ends before it goes up in one request, a larger one
      // as a resumable upload (only finalising the session makes the object visible).
      const iterator = measured[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
      const head: Buffer[] = [];
      let headBytes = 0;
      let ended = false;

      /**
       * The resumable upload under the stall watchdog. When the watchdog gives up, the upload goes
       * no further: its write streams are destroyed, the source is cut (so nothing waits on it),
       * and a step it was waiting on when it gave up (the token, the library's pause between
       * attempts) finds it abandoned and stops instead of sending.
       */
      const uploadResumable = async (): Promise<void> => {
        const watchdog = new StallWatchdog(
          idleTimeoutMs,
          () => new DestinationError("timeout", `uploading ${name}: ${where(config)} did not answer in time (nothing sent or received for ${idleTimeoutMs / 1000} s)`),
        );
        let abandoned: Error | undefined;
        watchdog.stalled.catch((error: Error) => {
          abandoned = error;
          crc.destroy(error);
        });
        // The library makes its write streams itself (a new one per attempt): watch each, and end
        // at once one made after the upload was abandoned.
        const createWriteStream = file.createWriteStream.bind(file);
        file.createWriteStream = (options) => {
          const stream = watchdog.watch(createWriteStream(options));
          if (abandoned) stream.destroy(abandoned);
          return stream;
        };
        const upload = async (): Promise<void> => {
          await sendTokenWithResumableUploads(config, authClient, file);
          if (abandoned) throw abandoned;
          const removeTimeout = timeoutResumableUploads(file, uploadTimeoutMs);
          const rest = async function* () {
            for (const chunk of head) {
              yield chunk;
              watchdog.touch();
            }
            for (;;) {
              const next = await watchdog.fromSource(iterator.next());
              if (next.done) return;
              yield next.value;
              watchdog.touch();
            }
          };
          // One chunk read ahead, not 16: less held in memory, and the clock runs while the upload holds it up.
          try {
            await pipeline(
              Readable.from(rest(), { highWaterMark: 1 }),
              file.createWriteStream({ resumable: true, chunkSize: config.chunkSizeBytes, contentType, validation: "crc32c", timeout: uploadTimeoutMs }),
            );
          } finally {
            removeTimeout();
          }
        };
        try {
          await Promise.race([upload(), watchdog.stalled]);
        } finally {
          watchdog.stop();
        }
      };

      try {
        while (!ended && headBytes < config.resumableThresholdBytes) {
          const next = await iterator.next();
          if (next.done) ended = true;
          else {
            head.push(next.value);
            headBytes += next.value.length;
          }
        }
        if (ended) {
          // One request carrying the whole body: the library reports no progress while it is sent,
          // so only its request timeout (which allows for sending the body) bounds it.
          await file.save(Buffer.concat(head), { resumable: false, contentType, validation: "crc32c", timeout: uploadTimeoutMs });
        } else {
          await uploadResumable();
        }
      } catch (error) {
        source.stop(); // release the staging file or connection behind it
        crc.destroy(); // and whatever still reads from it
        if (sourceError !== undefined) throw sourceError;
        if (measure.sizeProblem) throw new DestinationError("verification_failed", `${where(config)}: ${measure.sizeProblem}; nothing was written`);
        throw gcsErrorToDestinationError(error, config, `uploading ${name}`, tokenUri);
      }

      let metadata;
      try {
        [metadata] = await file.getMetadata();
      } catch (error) {
        throw gcsErrorToDestinationError(error, config, `checking ${name} after upload`, tokenUri);
      }
      const md5 = measure.md5().toString("base64");
      const crc32c = crc.crc.toString();
      const problem =
        Number(metadata.size) !== measure.bytes
          ? `the stored object has ${metadata.size} bytes, ${measure.bytes} were sent`
          : meta.expectedBytes !== undefined && measure.bytes !== meta.expectedBytes
            ? `${measure.bytes} bytes were sent, ${meta.expectedBytes} expected`
            : metadata.crc32c !== undefined && metadata.crc32c !== crc32c
              ? "the stored object's CRC32C differs from the bytes sent"
              : metadata.md5Hash !== undefined && metadata.md5Hash !== md5
                ? "the stored object's MD5 differs from the bytes sent"
                : undefined;
      if (problem) {
        await file.delete({ ignoreNotFound: true }).catch(() => undefined);
        throw new DestinationError("verification_failed", `${where(config)}: ${problem}; the object was removed`);
      }
      const notes = metadata.md5Hash === undefined && metadata.crc32c === undefined ? ["size verified; the store reported no checksum"] : [];
      return { path: name, bytes: measure.bytes, checksum: measure.sha256(), notes };
    },
  };
}

/** The adapter with production's policy: https endpoints outside this service's own network only. */
export const gcsAdapter = createGcsAdapter(SECURE_ENDPOINTS);
