export { DestinationError, isDestinationError, StorageKeyError, StorageObjectNotFoundError, type DestinationErrorCode } from "./errors.js";

export type { StagingStore } from "./staging/types.js";
export { FsStagingStore } from "./staging/fs-store.js";
export { S3StagingStore, createS3Client, type S3ConnectionOptions } from "./staging/s3-store.js";
export { createStagingStore, type StagingConfig } from "./staging/create.js";
export { stagingKey, stagedPath, stagingRunPrefix, assertValidKey, type StagingStage } from "./staging/keys.js";
export { MeasuringStream } from "./staging/measure.js";

export {
  DESTINATION_KINDS,
  type AnyDestinationAdapter,
  type DeliveryMeta,
  type DeliveryResult,
  type DestinationAdapter,
  type DestinationKind,
  type VerifyResult,
} from "./destinations/types.js";
export { createDestinationRegistry, isDestinationKind, type DestinationRegistry } from "./destinations/registry.js";
export {
  createManagedAdapter,
  createManagedStore,
  managedFileExpiry,
  managedFileKey,
  openManagedFile,
  managedConfigSchema,
  managedCredentialsSchema,
  type ManagedConfig,
  type ManagedCredentials,
  type ManagedStoreConfig,
} from "./destinations/managed.js";
export {
  BlockedEndpointError,
  SECURE_ENDPOINTS,
  assertPublicHost,
  endpointSettingProblem,
  hostSettingProblem,
  type EndpointPolicy,
} from "./destinations/endpoint-policy.js";
export { hostProblem, endpointUrlProblem, isPublicAddress, publicOnlyLookup, resolvePublicAddresses, InternalAddressError } from "./network/public-address.js";
export {
  createS3Adapter,
  s3Adapter,
  s3ConfigSchema,
  s3ConfigSchemaFor,
  s3CredentialsSchema,
  s3ObjectKey,
  s3ErrorToDestinationError,
  type S3Config,
  type S3Credentials,
} from "./destinations/s3.js";
export {
  createGcsAdapter,
  gcsAdapter,
  gcsConfigSchema,
  gcsConfigSchemaFor,
  gcsCredentialsSchema,
  gcsCredentialsSchemaFor,
  gcsObjectName,
  gcsStorageClient,
  gcsErrorToDestinationError,
  type GcsConfig,
  type GcsCredentials,
  type GcsServiceAccountKey,
  type GcsTimeouts,
} from "./destinations/gcs.js";

export { reportFileName, distinctNameTag, fileNamePatternOf, fileNameShape, namesWholeWindow, dateSubfolder, slugify, formatWindowInstant, validateFileNamePattern, FILE_NAME_PLACEHOLDERS, MAX_SLUG_LENGTH, MAX_FILE_NAME_PATTERN_LENGTH, type FileNamePlaceholder, type FileNameShapeInput, type ReportFileNameInput } from "./naming.js";
export { claimReportPath, type ReportPathClaim, type ClaimedReportPath } from "./report-path.js";
export { sweepManagedFiles, sweepStaging, type ManagedSweepResult, type StagingSweepResult, type SweepLogger, type SweepFailure, type SweepPosition } from "./retention.js";
export {
  createSftpAdapter,
  sftpAdapter,
  sftpConfigSchema,
  sftpConfigSchemaFor,
  sftpCredentialsSchema,
  sshFingerprint,
  type SftpConfig,
  type SftpCredentials,
  type SftpAdapterOptions,
} from "./destinations/sftp.js";

export * from "./notify/index.js";
