import type { Config } from "@transporter/config";
import { FsStagingStore } from "./fs-store.js";
import { createS3Client, S3StagingStore } from "./s3-store.js";
import type { StagingStore } from "./types.js";

export type StagingConfig = Pick<
  Config,
  | "STAGING_DRIVER"
  | "STAGING_DIR"
  | "STAGING_S3_BUCKET"
  | "STAGING_S3_ENDPOINT"
  | "STAGING_S3_REGION"
  | "STAGING_S3_ACCESS_KEY_ID"
  | "STAGING_S3_SECRET_ACCESS_KEY"
  | "STAGING_S3_FORCE_PATH_STYLE"
>;

/** The staging store chosen by STAGING_DRIVER: a local folder (default) or an S3-compatible bucket. */
export function createStagingStore(config: StagingConfig): StagingStore {
  if (config.STAGING_DRIVER === "fs") return new FsStagingStore(config.STAGING_DIR);
  if (!config.STAGING_S3_BUCKET) throw new Error("STAGING_DRIVER=s3 needs STAGING_S3_BUCKET");
  const client = createS3Client({
    region: config.STAGING_S3_REGION,
    endpoint: config.STAGING_S3_ENDPOINT,
    forcePathStyle: config.STAGING_S3_FORCE_PATH_STYLE,
    accessKeyId: config.STAGING_S3_ACCESS_KEY_ID,
    secretAccessKey: config.STAGING_S3_SECRET_ACCESS_KEY,
  });
  return new S3StagingStore(client, config.STAGING_S3_BUCKET);
}
