import type { Readable } from "node:stream";
import type { z } from "zod";
import type { DestinationError } from "../errors.js";

export type DestinationKind = "managed" | "sftp" | "s3" | "gcs";

export const DESTINATION_KINDS: readonly DestinationKind[] = ["managed", "sftp", "s3", "gcs"];

/** What the deliverer knows about the file it hands to an adapter. */
export interface DeliveryMeta {
  tenantId: string;
  runId: string;
  /** Relative folder under the destination's prefix/folder, e.g. "2026/11/22" (see naming.ts). */
  subfolder?: string;
  contentType?: string;
  /** Size recorded by the encryptor; when given, the adapter refuses a delivery of another size. */
  expectedBytes?: number;
}

export interface DeliveryResult {
  /** Where the file landed, as the tenant would look for it (remote path, or object key). */
  path: string;
  bytes: number;
  /** sha256 of the delivered bytes, lowercase hex. */
  checksum: string;
  /** Things worth showing in the run history (e.g. "server forbids rename: uploaded directly"). */
  notes: string[];
}

export type VerifyResult<Config> =
  | {
      ok: true;
      /** One human-readable line: what was checked and where. */
      details: string;
      /** Settings learned while verifying that must be saved with the destination (e.g. a pinned host key). */
      configUpdates?: Partial<Config>;
    }
  | { ok: false; error: DestinationError };

/**
 * One destination kind. `config` holds non-secret settings (stored in clear, returned by the API);
 * `credentials` holds secrets (sealed at rest, never returned or logged). Callers parse both with the
 * adapter's schemas before calling verify/deliver.
 *
 * deliver() makes the file visible only when complete (rename, multipart completion, resumable
 * finalise), checks the remote size, and throws a DestinationError on failure.
 */
export interface DestinationAdapter<Config, Credentials> {
  readonly kind: DestinationKind;
  readonly configSchema: z.ZodType<Config>;
  readonly credentialsSchema: z.ZodType<Credentials>;
  verify(config: Config, credentials: Credentials): Promise<VerifyResult<Config>>;
  deliver(body: Readable, fileName: string, meta: DeliveryMeta, config: Config, credentials: Credentials): Promise<DeliveryResult>;
}

/** An adapter of any kind, as the registry hands it out; parse config/credentials with its schemas first. */
export type AnyDestinationAdapter = DestinationAdapter<unknown, unknown>;
