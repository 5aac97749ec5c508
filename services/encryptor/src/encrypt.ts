import { posix } from "node:path";
import { KeyRejectedError, encryptStream } from "@transporter/crypto";
import { activeEncryptionKey, encryptionKeyExists, type Db, type EncryptionKey } from "@transporter/db";
import { PermanentError } from "@transporter/queue";
import type { StageContext, StageOutput } from "@transporter/queue";
import { stagedPath, stagingKey } from "@transporter/storage";
import type { StagingStore } from "@transporter/storage";

export interface EncryptDeps {
  prisma: Db;
  staging: StagingStore;
}

/** The task options the encryptor reads (see Task.options). */
export interface EncryptionTaskOptions {
  /** ASCII-armored output (`.asc`) instead of binary OpenPGP (`.pgp`). Default false. */
  armor: boolean;
  /** ZLIB compression before encryption. Default true. */
  compression: boolean;
}

export function encryptionOptions(taskOptions: unknown): EncryptionTaskOptions {
  const options = (typeof taskOptions === "object" && taskOptions !== null ? taskOptions : {}) as Record<string, unknown>;
  return { armor: options.armor === true, compression: options.compression !== false };
}

/** `<report file name>.pgp`, or `.asc` when armored: the extension GnuPG users expect for each. */
export function encryptedFileName(reportKey: string, armor: boolean): string {
  return `${posix.basename(reportKey)}.${armor ? "asc" : "pgp"}`;
}

/** The encrypted file's path below the run's `encrypted` folder: the report's path (its date folders kept) with the extension added. */
function encryptedPath(reportPath: string, armor: boolean): string {
  const folder = posix.dirname(reportPath);
  const name = encryptedFileName(reportPath, armor);
  return folder === "." ? name : `${folder}/${name}`;
}

async function activeKey(prisma: Db, tenantId: string): Promise<EncryptionKey> {
  const key = await activeEncryptionKey(prisma, tenantId);
  if (!key) {
    throw new PermanentError(
      "encryption_key_missing",
      "the account has no active encryption key: generate or upload one (POST /v1/encryption-keys), activate it, then retry the run",
    );
  }
  return key;
}

/**
 * The encrypt stage: the run's report file in staging → an OpenPGP message to the tenant's
 * active public key, streamed (memory stays flat whatever the size) into the run's `encrypted`
 * staging folder. Re-running overwrites the same object, so a retried job is harmless. The key's
 * fingerprint is recorded on the run so the tenant knows which private key opens the file.
 */
export function createEncryptHandler(deps: EncryptDeps) {
  return async function encryptRun(ctx: StageContext<"encrypt">): Promise<StageOutput> {
    const { run, task, tenant, payload, logger, span } = ctx;
    const key = await activeKey(deps.prisma, tenant.id);
    const options = encryptionOptions(task.options);
    const fileName = posix.basename(payload.reportKey);
    const encryptedKey = stagingKey(tenant.id, run.id, "encrypted", encryptedPath(stagedPath(payload.reportKey, tenant.id, run.id, "report"), options.armor));
    span.setAttributes({ "transporter.key_fingerprint": key.fingerprint, "transporter.armor": options.armor, "transporter.compression": options.compression });

    const report = await deps.staging.get(payload.reportKey);
    let stored: { bytes: number; sha256: string };
    try {
      stored = await deps.staging.put(encryptedKey, encryptStream(report, key.publicKey, { ...options, fileName }));
    } catch (error) {
      if (error instanceof KeyRejectedError) {
        throw new PermanentError(
          "encryption_key_unusable",
          `the active encryption key ${key.fingerprint} can no longer be used (${error.message}); activate another key, then retry the run`,
        );
      }
      throw error;
    }

    // The key may have been removed while we were encrypting: a tenant who deletes a key does not
    // want files encrypted to it delivered, so the run fails rather than ship them.
    if (!(await encryptionKeyExists(deps.prisma, key.id))) {
      await deps.staging.delete(encryptedKey);
      throw new PermanentError(
        "encryption_key_removed",
        `the encryption key ${key.fingerprint} was removed while the file was being encrypted; activate a key, then retry the run`,
      );
    }
    ctx.setRunFields({ keyFingerprint: key.fingerprint });
    logger.info({ encryptedKey, bytes: stored.bytes, keyFingerprint: key.fingerprint, armor: options.armor, compression: options.compression }, "report encrypted");
    return { encryptedKey };
  };
}
