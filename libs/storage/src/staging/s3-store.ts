import { DeleteObjectCommand, DeleteObjectsCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import type { LookupFunction } from "node:net";
import type { Readable } from "node:stream";
import { StorageObjectNotFoundError } from "../errors.js";
import { destroyBodyOnFailure, watchSource } from "./body-ownership.js";
import { assertValidKey, assertValidPrefix } from "./keys.js";
import { MeasuringStream } from "./measure.js";
import type { StagingStore } from "./types.js";

export interface S3ConnectionOptions {
  region: string;
  accessKeyId?: string;
  secretAccessKey?: string;
  sessionToken?: string;
  /** S3-compatible store (MinIO, s3rver, …); unset = AWS. */
  endpoint?: string;
  forcePathStyle?: boolean;
  /** Attempts per request inside the SDK; the pipeline has its own retries on top. */
  maxAttempts?: number;
  /** Give up connecting after this long (a black-holed host must not hang a verification). */
  connectionTimeoutMs?: number;
  /** Give up when a connected socket stays silent this long. */
  socketTimeoutMs?: number;
  /** Resolves host names for every connection (e.g. publicOnlyLookup, so a tenant's endpoint cannot reach our network). */
  lookup?: LookupFunction;
}

/**
 * An S3 client for AWS or an S3-compatible store. With a custom endpoint the SDK's newer
 * flexible checksums (aws-chunked trailers) are only sent when an operation requires them:
 * many S3-compatible stores would otherwise store the chunk framing as object bytes.
 */
export function createS3Client(options: S3ConnectionOptions): S3Client {
  const credentials =
    options.accessKeyId && options.secretAccessKey
      ? { accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey, sessionToken: options.sessionToken }
      : undefined;
  return new S3Client({
    region: options.region,
    endpoint: options.endpoint,
    forcePathStyle: options.forcePathStyle ?? Boolean(options.endpoint),
    credentials,
    maxAttempts: options.maxAttempts ?? 3,
    requestHandler: {
      connectionTimeout: options.connectionTimeoutMs ?? 15_000,
      socketTimeout: options.socketTimeoutMs ?? 120_000,
      ...(options.lookup ? { httpAgent: { keepAlive: true, lookup: options.lookup }, httpsAgent: { keepAlive: true, lookup: options.lookup } } : {}),
    },
    ...(options.endpoint ? { requestChecksumCalculation: "WHEN_REQUIRED", responseChecksumValidation: "WHEN_REQUIRED" } : {}),
  });
}

/** True when an SDK error means "no such object" (HeadObject gives a bare 404 without a code). */
export function isS3NotFound(error: unknown): boolean {
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === "NoSuchKey" || e?.name === "NotFound" || e?.$metadata?.httpStatusCode === 404;
}

/** Part size of multipart uploads (S3 minimum is 5 MiB); 2 parts in flight bound memory per upload. */
const PART_SIZE = 8 * 1024 * 1024;

/**
 * Staging in an S3-compatible bucket (several machines share it). Objects above one part go up
 * as a multipart upload that becomes visible only on completion and is aborted on failure.
 */
export class S3StagingStore implements StagingStore {
  constructor(
    private readonly client: S3Client,
    readonly bucket: string,
    /** Optional key prefix inside the bucket, e.g. "staging/". */
    private readonly keyPrefix = "",
  ) {
    if (keyPrefix) assertValidPrefix(keyPrefix);
  }

  private objectKey(key: string): string {
    return this.keyPrefix + assertValidKey(key);
  }

  put(key: string, body: Readable): Promise<{ bytes: number; sha256: string }> {
    return destroyBodyOnFailure(body, async () => {
      const measure = new MeasuringStream();
      // Its errors reach the upload through its reads (and the put rejects): never uncaught, even
      // when the source is cut before the upload has begun reading.
      measure.on("error", () => undefined);
      // An error, or a close before its end (the caller stopping it), cuts the upload.
      watchSource(body, (error) => measure.destroy(error));
      const upload = new Upload({
        client: this.client,
        params: { Bucket: this.bucket, Key: this.objectKey(key), Body: body.pipe(measure) },
        partSize: PART_SIZE,
        queueSize: 2,
      });
      try {
        await upload.done();
      } catch (error) {
        // lib-storage aborts the multipart upload but never destroys its Body.
        measure.destroy();
        throw error;
      }
      return { bytes: measure.bytes, sha256: measure.sha256() };
    });
  }

  async get(key: string): Promise<Readable> {
    try {
      const response = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }));
      return response.Body as Readable;
    } catch (error) {
      if (isS3NotFound(error)) throw new StorageObjectNotFoundError(key);
      throw error;
    }
  }

  async stat(key: string): Promise<{ bytes: number } | null> {
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }));
      return { bytes: head.ContentLength ?? 0 };
    } catch (error) {
      if (isS3NotFound(error)) return null;
      throw error;
    }
  }

  async delete(key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }));
  }

  async deletePrefix(prefix: string): Promise<number> {
    const fullPrefix = this.keyPrefix + assertValidPrefix(prefix);
    let removed = 0;
    let continuationToken: string | undefined;
    do {
      const page = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: fullPrefix, ContinuationToken: continuationToken, MaxKeys: 1000 }),
      );
      const keys = (page.Contents ?? []).flatMap((item) => (item.Key ? [{ Key: item.Key }] : []));
      if (keys.length > 0) {
        const result = await this.client.send(new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: keys, Quiet: true } }));
        const failed = result.Errors ?? [];
        if (failed.length > 0) throw new Error(`could not delete ${failed.length} object(s) under ${fullPrefix}: ${failed[0]?.Code ?? "unknown"}`);
        removed += keys.length;
      }
      continuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (continuationToken);
    return removed;
  }
}
