import { randomUUID } from "node:crypto";
import type { Readable } from "node:stream";
import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  PutObjectCommand,
} from "@aws-sdk/client-s3";
import type { S3Client, ServerSideEncryption } from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { z } from "zod";
import { DestinationError } from "../errors.js";
import { watchSource } from "../staging/body-ownership.js";
import { MeasuringStream } from "../staging/measure.js";
import { endpointUrlSchema } from "../network/endpoint-url.js";
import { publicOnlyLookup } from "../network/public-address.js";
import { createS3Client, isS3NotFound } from "../staging/s3-store.js";
import { assertEndpointSetting, BlockedEndpointError, endpointSettingProblem, refusingBlockedEndpoints, SECURE_ENDPOINTS } from "./endpoint-policy.js";
import type { EndpointPolicy } from "./endpoint-policy.js";
import type { DeliveryMeta, DeliveryResult, DestinationAdapter, VerifyResult } from "./types.js";

const MIB = 1024 * 1024;
const MAX_PART_SIZE = 64 * MIB;
/** Parts in flight per upload: memory per delivery is at most this × partSizeBytes. */
const PARTS_IN_FLIGHT = 2;

/** "reports/daily" → "reports/daily/"; "" stays "" (bucket root). */
function normalisePrefix(prefix: string): string {
  const trimmed = prefix.replace(/^\/+|\/+$/g, "");
  return trimmed === "" ? "" : `${trimmed}/`;
}

export const s3ConfigSchema = z
  .object({
    bucket: z
      .string()
      .min(3)
      .max(63)
      .regex(/^[a-z0-9][a-z0-9._-]*[a-z0-9]$/, "an S3 bucket name: lower-case letters, digits, dots and hyphens"),
    /** Key prefix ("folder") inside the bucket. */
    prefix: z
      .string()
      .max(512)
      .refine((p) => !p.split("/").some((segment) => segment === "." || segment === ".."), "no . or .. segments")
      .default("")
      .transform(normalisePrefix),
    region: z.string().regex(/^[a-z0-9-]{2,32}$/, "an AWS region such as eu-west-1").default("us-east-1"),
    /**
     * An S3-compatible store instead of AWS (MinIO, Ceph, Wasabi…). No credentials in it; https,
     * outside this service's own network, unless ALLOW_INSECURE_ENDPOINTS (see s3ConfigSchemaFor).
     */
    endpoint: endpointUrlSchema().optional(),
    /** Path-style addressing (bucket in the path); on by default with a custom endpoint. */
    forcePathStyle: z.boolean().optional(),
    serverSideEncryption: z.enum(["AES256", "aws:kms"]).optional(),
    kmsKeyId: z.string().min(1).max(2048).optional(),
    /**
     * Files larger than one part go up as a multipart upload of parts this size (S3 minimum: 5 MiB).
     * Each upload holds up to two parts in memory on a shared deliverer, hence the 64 MiB cap.
     */
    partSizeBytes: z
      .number()
      .int()
      .min(5 * MIB, "at least 5 MiB (5242880), S3's smallest part")
      .max(MAX_PART_SIZE, "at most 64 MiB (67108864): parts are held in memory while they upload")
      .default(8 * MIB),
  })
  .refine((c) => c.kmsKeyId === undefined || c.serverSideEncryption === "aws:kms", {
    message: 'kmsKeyId goes with serverSideEncryption "aws:kms"',
    path: ["kmsKeyId"],
  });
export type S3Config = z.output<typeof s3ConfigSchema>;

/** The settings schema under an endpoint policy: without ALLOW_INSECURE_ENDPOINTS the endpoint must be https and public. */
export function s3ConfigSchemaFor(policy: EndpointPolicy): z.ZodType<S3Config> {
  return refusingBlockedEndpoints(s3ConfigSchema, policy, ["endpoint"], (config) => endpointSettingProblem(config.endpoint, policy));
}

/**
 * The credentials travel in HTTP headers (the access key id in Authorization, the session token
 * in X-Amz-Security-Token) or sign them (the secret): a character a header cannot carry (a line
 * break, an emoji) would fail every request as if the server were at fault. AWS access key ids
 * are letters and digits; S3-compatible stores (MinIO, Ceph…) allow more, so any printable ASCII
 * is taken. Only the secret, which is never sent, may hold a space.
 */
const PRINTABLE_ASCII_NO_SPACE = /^[\x21-\x7E]+$/;
const PRINTABLE_ASCII = /^[\x20-\x7E]+$/;

export const s3CredentialsSchema = z.object({
  accessKeyId: z.string().min(1).max(256).regex(PRINTABLE_ASCII_NO_SPACE, "printable ASCII characters without spaces (an AWS access key id is letters and digits)"),
  secretAccessKey: z.string().min(1).max(1024).regex(PRINTABLE_ASCII, "printable ASCII characters (no line breaks or other control characters)"),
  sessionToken: z.string().min(1).max(8192).regex(PRINTABLE_ASCII_NO_SPACE, "printable ASCII characters without spaces or line breaks").optional(),
});
export type S3Credentials = z.output<typeof s3CredentialsSchema>;

function clientFor(config: S3Config, credentials: S3Credentials, purpose: "verify" | "deliver", policy: EndpointPolicy): S3Client {
  // Checked again here (not only when saved), and every connection's address is checked as it
  // is resolved, so a name that later resolves into our network (DNS rebinding) is refused too.
  assertEndpointSetting("config.endpoint", config.endpoint, policy);
  return createS3Client({
    region: config.region,
    endpoint: config.endpoint,
    forcePathStyle: config.forcePathStyle,
    accessKeyId: credentials.accessKeyId,
    secretAccessKey: credentials.secretAccessKey,
    sessionToken: credentials.sessionToken,
    // Verification answers a person waiting on the API: fail fast. Deliveries retry in the SDK too.
    maxAttempts: purpose === "verify" ? 1 : 3,
    connectionTimeoutMs: purpose === "verify" ? 10_000 : 15_000,
    ...(policy.allowInsecureEndpoints ? {} : { lookup: publicOnlyLookup }),
  });
}

function where(config: S3Config): string {
  const host = config.endpoint ? new URL(config.endpoint).host : `s3.${config.region}.amazonaws.com`;
  return `s3://${config.bucket}/${config.prefix} (${host})`;
}

const AUTH_CODES = new Set(["InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken", "TokenRefreshRequired", "InvalidClientTokenId", "AuthorizationHeaderMalformed"]);
/** Codes AWS answers a request signed for another region than the bucket's with. */
const WRONG_REGION_CODES = new Set(["PermanentRedirect", "IllegalLocationConstraintException"]);
const PERMISSION_CODES = new Set(["AccessDenied", "AllAccessDisabled", "AccountProblem", "Forbidden"]);
const DNS_CODES = new Set(["ENOTFOUND", "EAI_AGAIN", "EAI_FAIL", "EAI_NONAME"]);
const CONNECT_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "EHOSTUNREACH", "ENETUNREACH", "EPIPE", "ECONNABORTED", "EPROTO", "ERR_SSL_WRONG_VERSION_NUMBER", "CERT_HAS_EXPIRED", "DEPTH_ZERO_SELF_SIGNED_CERT", "UNABLE_TO_VERIFY_LEAF_SIGNATURE"]);
const TIMEOUT_CODES = new Set(["ETIMEDOUT", "TimeoutError", "RequestTimeout"]);

/**
 * Turns an AWS SDK or socket error into a DestinationError with a reason the tenant can act on.
 * Server messages are not copied: some echo the access key id, and the code says enough.
 */
export function s3ErrorToDestinationError(error: unknown, config: S3Config, action: string): DestinationError {
  if (error instanceof DestinationError) return error;
  const e = (error ?? {}) as { name?: string; code?: string; Code?: string; message?: string; $metadata?: { httpStatusCode?: number }; cause?: { code?: string } };
  const name = e.Code ?? e.name ?? "";
  const code = e.code ?? e.cause?.code ?? "";
  const status = e.$metadata?.httpStatusCode;
  const at = where(config);
  if (code === "ERR_INTERNAL_ADDRESS" || name === "InternalAddressError")
    return new BlockedEndpointError("config.endpoint", `${action}: the host of ${at} resolves inside this service's own network; destinations must be reachable on the public internet`);
  // S3 answers 403 to a request signed at a time more than 15 minutes from its own: not a grant problem.
  if (name === "RequestTimeTooSkewed")
    return new DestinationError("timeout", `${action}: ${at} refused the request's time (RequestTimeTooSkewed): this service's clock and the store's differ by more than 15 minutes; the clock is off and needs synchronising (NTP)`);
  if (name === "NoSuchBucket") return new DestinationError("not_found", `${action}: bucket "${config.bucket}" does not exist at ${at}`);
  // "The authorization header is malformed; the region 'us-east-1' is wrong; expecting 'eu-west-1'":
  // the usual result of the default region for a bucket elsewhere, not of a bad key.
  const wrongRegion = WRONG_REGION_CODES.has(name) || (name === "AuthorizationHeaderMalformed" && /region/i.test(e.message ?? ""));
  if (wrongRegion) return new DestinationError("not_found", `${action}: bucket "${config.bucket}" is not in region ${config.region}; set the bucket's region`, { permanent: true });
  if (AUTH_CODES.has(name)) return new DestinationError("auth", `${action}: the access key was refused (${name}); check the access key id, secret and session token for ${at}`);
  if (name.startsWith("KMS.") || name === "KMSAccessDenied") return new DestinationError("permission", `${action}: the KMS key was refused (${name}); check kmsKeyId and the key policy for ${at}`);
  if (PERMISSION_CODES.has(name) || status === 403) return new DestinationError("permission", `${action}: access denied (${name || "403"}); the key needs s3:PutObject, s3:GetObject and s3:DeleteObject on ${at}`);
  if (DNS_CODES.has(code)) return new DestinationError("dns", `${action}: host name of ${at} cannot be resolved (${code})`);
  if (CONNECT_CODES.has(code)) return new DestinationError("connect", `${action}: cannot connect to ${at} (${code})`);
  if (TIMEOUT_CODES.has(code) || TIMEOUT_CODES.has(name)) return new DestinationError("timeout", `${action}: ${at} did not answer in time (${code || name})`);
  if (name === "AbortError") return new DestinationError("connect", `${action}: the upload to ${at} was interrupted`);
  const label = [name && name !== "Error" ? name : "", status ? `HTTP ${status}` : "", code].filter(Boolean).join(", ");
  return new DestinationError("protocol", `${action}: ${at} answered unexpectedly${label ? ` (${label})` : ""}`);
}

function encryptionParams(config: S3Config): { ServerSideEncryption?: ServerSideEncryption; SSEKMSKeyId?: string } {
  if (!config.serverSideEncryption) return {};
  return { ServerSideEncryption: config.serverSideEncryption, ...(config.kmsKeyId ? { SSEKMSKeyId: config.kmsKeyId } : {}) };
}

/** The object key of a delivered file: prefix, optional subfolder, file name. */
export function s3ObjectKey(config: Pick<S3Config, "prefix">, fileName: string, subfolder?: string): string {
  const folder = subfolder ? normalisePrefix(subfolder) : "";
  return `${config.prefix}${folder}${fileName}`;
}

/**
 * Aborts every unfinished multipart upload of `key`: one left by an attempt whose worker was
 * killed mid-upload (it never got to abort), or one whose abort was lost with the connection.
 * A run's delivery is exclusive and keys are per run and window, so any such upload is ours.
 * Run before a delivery and after a failed one. Best effort: a key without
 * s3:ListBucketMultipartUploads cannot list, and the bucket's lifecycle rule is the backstop.
 */
async function abortUnfinishedUploads(client: S3Client, bucket: string, key: string): Promise<void> {
  try {
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    for (let page = 0; page < 10; page++) {
      const listing = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: key, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }));
      for (const upload of listing.Uploads ?? []) {
        if (upload.Key !== key || !upload.UploadId) continue;
        await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: upload.UploadId }));
      }
      if (!listing.IsTruncated) return;
      keyMarker = listing.NextKeyMarker;
      uploadIdMarker = listing.NextUploadIdMarker;
    }
  } catch {
    // Listing not allowed or the store is unreachable: nothing more we can do from here.
  }
}

/** True when the store says the object is encrypted in a way that makes a single PUT's ETag something other than its MD5. */
function etagHidesMd5(response: { ServerSideEncryption?: string; SSECustomerAlgorithm?: string }): boolean {
  const sse = response.ServerSideEncryption;
  return sse === "aws:kms" || sse === "aws:kms:dsse" || response.SSECustomerAlgorithm !== undefined;
}

/**
 * The S3 adapter under an endpoint policy (services pass ALLOW_INSECURE_ENDPOINTS through the
 * registry). Its configSchema refuses a disallowed endpoint when settings are saved; verify and
 * deliver check again before connecting.
 */
export function createS3Adapter(policy: EndpointPolicy): DestinationAdapter<S3Config, S3Credentials> {
  return {
    kind: "s3",
    configSchema: s3ConfigSchemaFor(policy),
    credentialsSchema: s3CredentialsSchema,

    async verify(config, credentials): Promise<VerifyResult<S3Config>> {
      let client: S3Client;
      try {
        client = clientFor(config, credentials, "verify", policy);
      } catch (error) {
        return { ok: false, error: s3ErrorToDestinationError(error, config, "checking the endpoint") };
      }
      const key = `${config.prefix}.transporter-probe-${randomUUID()}`;
      const payload = Buffer.from("transporter destination probe\n");
      let step = "writing a probe object";
      // Once the probe may be written, it is deleted whatever happens next: a key that may write
      // but not read (a drop bucket) must not collect a probe per verification.
      let probeLeft = false;
      try {
        // Before the PUT, not after: its reply can be lost once the store has kept the object.
        // Deleting a key that was never stored is harmless.
        probeLeft = true;
        await client.send(new PutObjectCommand({ Bucket: config.bucket, Key: key, Body: payload, ContentLength: payload.length, ...encryptionParams(config) }));
        step = "reading the probe object back";
        const head = await client.send(new HeadObjectCommand({ Bucket: config.bucket, Key: key }));
        if (head.ContentLength !== payload.length) {
          return { ok: false, error: new DestinationError("verification_failed", `the probe object at ${where(config)} has ${head.ContentLength} bytes, ${payload.length} were written`) };
        }
        step = "deleting the probe object";
        probeLeft = false; // this is the deletion: its failure is the result, not retried below
        await client.send(new DeleteObjectCommand({ Bucket: config.bucket, Key: key }));
        return { ok: true, details: `${where(config)}: wrote, read back and deleted a probe object` };
      } catch (error) {
        if (isS3NotFound(error) && step === "reading the probe object back") {
          return { ok: false, error: new DestinationError("verification_failed", `the probe object written to ${where(config)} cannot be found`) };
        }
        return { ok: false, error: s3ErrorToDestinationError(error, config, step) };
      } finally {
        // Best effort; the result above stands either way.
        if (probeLeft) await client.send(new DeleteObjectCommand({ Bucket: config.bucket, Key: key })).catch(() => undefined);
        client.destroy();
      }
    },

    async deliver(body: Readable, fileName: string, meta: DeliveryMeta, config, credentials): Promise<DeliveryResult> {
      let client: S3Client;
      try {
        client = clientFor(config, credentials, "deliver", policy);
      } catch (error) {
        body.destroy();
        throw error;
      }
      const key = s3ObjectKey(config, fileName, meta.subfolder);
      // A staging read of the wrong size fails the upload before it completes: the object it
      // would replace (an earlier delivery of the window) stays as it was.
      const measure = new MeasuringStream({ md5: true, ...(meta.expectedBytes !== undefined ? { expectedBytes: meta.expectedBytes } : {}) });
      // Its errors reach the upload through its reads: never uncaught, even when the source is cut
      // before the upload has begun reading.
      measure.on("error", () => undefined);
      let sourceError: unknown;
      // An error, or a close before its end, cuts the upload (see watchSource).
      const source = watchSource(body, (error) => {
        sourceError = error;
        measure.destroy(error);
      });
      try {
        // Parts of an earlier attempt that died without aborting (worker killed) would linger forever.
        await abortUnfinishedUploads(client, config.bucket, key);
        const upload = new Upload({
          client,
          params: { Bucket: config.bucket, Key: key, Body: body.pipe(measure), ContentType: meta.contentType ?? "application/octet-stream", ...encryptionParams(config) },
          partSize: config.partSizeBytes,
          queueSize: PARTS_IN_FLIGHT,
          leavePartsOnError: false,
        });
        let multipart = false;
        upload.on("httpUploadProgress", (progress) => {
          if ((progress.part ?? 1) > 1) multipart = true;
        });
        let uploaded: { ServerSideEncryption?: string; SSECustomerAlgorithm?: string };
        try {
          uploaded = await upload.done();
        } catch (error) {
          source.stop(); // release the staging file or connection behind it
          await abortUnfinishedUploads(client, config.bucket, key);
          // A failing source (staging read) is not the destination's fault: pass it on unchanged.
          if (sourceError !== undefined) throw sourceError;
          if (measure.sizeProblem) throw new DestinationError("verification_failed", `${where(config)}: ${measure.sizeProblem}; nothing was written`);
          throw s3ErrorToDestinationError(error, config, `uploading ${key}`);
        }

        const head = await client.send(new HeadObjectCommand({ Bucket: config.bucket, Key: key })).catch((error: unknown) => {
          throw s3ErrorToDestinationError(error, config, `checking ${key} after upload`);
        });
        const md5Hex = measure.md5().toString("hex");
        const etag = head.ETag?.replace(/"/g, "");
        // A single PUT's ETag is the MD5 of the bytes unless SSE-KMS, DSSE-KMS or SSE-C changes it.
        // Decided from what the store says it did: a bucket's default encryption applies KMS
        // without the tenant configuring anything.
        const etagIsMd5 = !multipart && !etag?.includes("-") && !etagHidesMd5(uploaded) && !etagHidesMd5(head);
        const problem =
          head.ContentLength !== measure.bytes
            ? `the stored object has ${head.ContentLength ?? "no"} bytes, ${measure.bytes} were sent`
            : meta.expectedBytes !== undefined && measure.bytes !== meta.expectedBytes
              ? `${measure.bytes} bytes were sent, ${meta.expectedBytes} expected`
              : etagIsMd5 && etag !== undefined && etag !== md5Hex
                ? "the stored object's MD5 (ETag) differs from the bytes sent"
                : undefined;
        if (problem) {
          await client.send(new DeleteObjectCommand({ Bucket: config.bucket, Key: key })).catch(() => undefined);
          throw new DestinationError("verification_failed", `${where(config)}: ${problem}; the object was removed`);
        }
        const notes = etagIsMd5 && etag === md5Hex ? [] : ["size verified; the store gives no whole-object MD5 for this upload"];
        return { path: key, bytes: measure.bytes, checksum: measure.sha256(), notes };
      } finally {
        client.destroy();
      }
    },
  };
}

/** The adapter with production's policy: https endpoints outside this service's own network only. */
export const s3Adapter = createS3Adapter(SECURE_ENDPOINTS);
