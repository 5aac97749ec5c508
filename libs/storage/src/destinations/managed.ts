import { randomUUID } from "node:crypto";
import { Readable } from "node:stream";
import type { Config } from "@transporter/config";
import { z } from "zod";
import { DestinationError, StorageObjectNotFoundError } from "../errors.js";
import { FsStagingStore } from "../staging/fs-store.js";
import { assertValidKey } from "../staging/keys.js";
import { createS3Client, S3StagingStore } from "../staging/s3-store.js";
import type { StagingStore } from "../staging/types.js";
import type { DeliveryMeta, DeliveryResult, DestinationAdapter, VerifyResult } from "./types.js";

/** Managed storage has nothing for the tenant to set: the platform owns the store. */
export const managedConfigSchema = z.object({}).strip();
export type ManagedConfig = z.output<typeof managedConfigSchema>;

/** No secrets: accepts null, undefined or an empty object. */
export const managedCredentialsSchema = z.union([z.null(), z.undefined(), z.object({}).strict()]).transform((): Record<string, never> => ({}));
export type ManagedCredentials = z.output<typeof managedCredentialsSchema>;

export type ManagedStoreConfig = Pick<
  Config,
  | "MANAGED_DRIVER"
  | "MANAGED_DIR"
  | "MANAGED_S3_BUCKET"
  | "MANAGED_S3_ENDPOINT"
  | "MANAGED_S3_REGION"
  | "MANAGED_S3_ACCESS_KEY_ID"
  | "MANAGED_S3_SECRET_ACCESS_KEY"
>;

/** The platform's blob store for managed files: a local folder (MANAGED_DIR) or an S3 bucket (MANAGED_S3_*). */
export function createManagedStore(config: ManagedStoreConfig): StagingStore {
  if (config.MANAGED_DRIVER === "fs") return new FsStagingStore(config.MANAGED_DIR);
  if (!config.MANAGED_S3_BUCKET) throw new Error("MANAGED_DRIVER=s3 needs MANAGED_S3_BUCKET");
  const client = createS3Client({
    region: config.MANAGED_S3_REGION,
    endpoint: config.MANAGED_S3_ENDPOINT,
    accessKeyId: config.MANAGED_S3_ACCESS_KEY_ID,
    secretAccessKey: config.MANAGED_S3_SECRET_ACCESS_KEY,
  });
  return new S3StagingStore(client, config.MANAGED_S3_BUCKET);
}

/**
 * Where a run's managed file lives: one folder per run, so a re-run of the same window never
 * overwrites (or, at retention, deletes) the file of another run.
 */
export function managedFileKey(meta: Pick<DeliveryMeta, "tenantId" | "runId" | "subfolder">, fileName: string): string {
  const subfolder = meta.subfolder ? `${meta.subfolder.replace(/^\/+|\/+$/g, "")}/` : "";
  return assertValidKey(`tenants/${meta.tenantId}/runs/${meta.runId}/${subfolder}${fileName}`);
}

/** When a managed file delivered at `deliveredAt` is removed by the retention sweep. */
export function managedFileExpiry(deliveredAt: Date, retentionDays: number): Date {
  return new Date(deliveredAt.getTime() + retentionDays * 24 * 60 * 60 * 1000);
}

/**
 * Opens a run's managed file for download; null when it is gone (expired and swept, or never
 * written). Only a path inside the run's own folder is opened, whatever the run row says.
 */
export async function openManagedFile(store: StagingStore, owner: { tenantId: string; runId: string }, path: string): Promise<{ body: Readable; bytes: number } | null> {
  if (!path.startsWith(`tenants/${owner.tenantId}/runs/${owner.runId}/`)) throw new Error(`managed file path ${JSON.stringify(path)} is outside run ${owner.runId}'s folder`);
  const info = await store.stat(path);
  if (!info) return null;
  try {
    return { body: await store.get(path), bytes: info.bytes };
  } catch (error) {
    if (error instanceof StorageObjectNotFoundError) return null;
    throw error;
  }
}

/** A platform-side failure: the tenant cannot fix it, so it is never permanent. */
function storeFailure(action: string, error: unknown): DestinationError {
  const code = (error as NodeJS.ErrnoException).code;
  const reason = code === "ENOSPC" ? "the platform store is full" : code === "EACCES" || code === "EPERM" ? "the platform store refused access" : "the platform store failed";
  return new DestinationError(code === "EACCES" || code === "EPERM" ? "permission" : "connect", `managed storage: ${action}: ${reason}`, { permanent: false, cause: error });
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** The managed destination over the platform's store (see createManagedStore). */
export function createManagedAdapter(store: StagingStore): DestinationAdapter<ManagedConfig, ManagedCredentials> {
  return {
    kind: "managed",
    configSchema: managedConfigSchema,
    credentialsSchema: managedCredentialsSchema,

    async verify(): Promise<VerifyResult<ManagedConfig>> {
      const key = `probes/${randomUUID()}.probe`;
      const payload = Buffer.from(`transporter probe ${new Date().toISOString()}\n`);
      try {
        await store.put(key, Readable.from([payload]));
        const back = await readAll(await store.get(key));
        await store.delete(key);
        if (!back.equals(payload)) return { ok: false, error: new DestinationError("verification_failed", "managed storage: the probe file read back differs from what was written") };
        return { ok: true, details: "managed storage: wrote, read back and removed a probe file" };
      } catch (error) {
        await store.delete(key).catch(() => undefined);
        return { ok: false, error: storeFailure("probe", error) };
      }
    },

    async deliver(body: Readable, fileName: string, meta: DeliveryMeta): Promise<DeliveryResult> {
      const key = managedFileKey(meta, fileName);
      let written: { bytes: number; sha256: string };
      try {
        written = await store.put(key, body);
      } catch (error) {
        throw storeFailure("write", error);
      }
      const stored = await store.stat(key);
      const problem =
        stored?.bytes !== written.bytes
          ? `stored size ${stored?.bytes ?? "none"} differs from the ${written.bytes} bytes sent`
          : meta.expectedBytes !== undefined && written.bytes !== meta.expectedBytes
            ? `received ${written.bytes} bytes, expected ${meta.expectedBytes}`
            : undefined;
      if (problem) {
        await store.delete(key).catch(() => undefined);
        throw new DestinationError("verification_failed", `managed storage: ${problem}`);
      }
      return { path: key, bytes: written.bytes, checksum: written.sha256, notes: [] };
    },
  };
}
