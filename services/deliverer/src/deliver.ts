import { posix } from "node:path";
import type { Config } from "@transporter/config";
import { unsealJson } from "@transporter/crypto";
import type { Keyring } from "@transporter/crypto";
import { liveDestination, type Db, type Destination } from "@transporter/db";
import { PermanentError } from "@transporter/queue";
import type { StageContext, StageOutput } from "@transporter/queue";
import { isDestinationError, managedFileExpiry, stagedPath } from "@transporter/storage";
import { startSpan, trace } from "@transporter/telemetry";
import type { AnyDestinationAdapter, DestinationRegistry, StagingStore } from "@transporter/storage";

export interface DeliverDeps {
  config: Pick<Config, "MANAGED_RETENTION_DAYS">;
  prisma: Db;
  keyring: Keyring;
  staging: StagingStore;
  registry: DestinationRegistry;
  now?: () => Date;
}

/** The sealing context of a destination's credentials: a sealed value only opens on its own row. */
export function destinationCredentialsContext(tenantId: string, destinationId: string): string {
  return `tenant:${tenantId}/destination:${destinationId}`;
}

/**
 * What a schema refused, as "config.endpoint: must use https". Zod messages describe the
 * expected shape, never the value, so no secret reaches the run's reason.
 */
function issuesOf(field: "config" | "credentials", error: { issues: ReadonlyArray<{ path: ReadonlyArray<PropertyKey>; message: string }> }): string {
  return error.issues
    .slice(0, 3)
    .map((issue) => `${[field, ...issue.path.map(String)].join(".")}: ${issue.message}`)
    .join("; ");
}

/**
 * The adapter with its parsed settings; bad stored settings cannot be fixed by retrying. Settings
 * saved before a rule was tightened (an endpoint inside our network, an oversized part) land here too.
 */
function prepare(destination: Destination, adapter: AnyDestinationAdapter, keyring: Keyring): { config: unknown; credentials: unknown } {
  const config = adapter.configSchema.safeParse(destination.config);
  if (!config.success) {
    throw new PermanentError("destination_invalid", `destination "${destination.name}" has settings this version does not accept (${issuesOf("config", config.error)}); update it`);
  }
  let sealed: unknown = null;
  if (destination.sealedCredentials) {
    try {
      sealed = unsealJson(destination.sealedCredentials, keyring, destinationCredentialsContext(destination.tenantId, destination.id));
    } catch {
      throw new PermanentError("credentials_unreadable", `the credentials of destination "${destination.name}" cannot be opened; enter them again`);
    }
  }
  const credentials = adapter.credentialsSchema.safeParse(sealed ?? undefined);
  if (!credentials.success) {
    const reason = sealed === null ? "is missing credentials" : `has credentials this version does not accept (${issuesOf("credentials", credentials.error)})`;
    throw new PermanentError("credentials_invalid", `destination "${destination.name}" ${reason}; enter them again`);
  }
  return { config: config.data, credentials: credentials.data };
}

/**
 * The deliver stage: the run's encrypted staging object → its destination, verified by the
 * adapter (size, checksum, never half-visible). Records where it landed on the run; the stage
 * harness then marks the run SUCCEEDED and enqueues the notification.
 */
export function createDeliverHandler(deps: DeliverDeps) {
  const now = deps.now ?? (() => new Date());
  const tracer = trace.getTracer("transporter-deliverer");
  return async function deliverRun(ctx: StageContext<"deliver">): Promise<StageOutput | void> {
    const { run, task, tenant, payload, logger } = ctx;
    // The destination pinned on the run when its delivery first began (see beginStage): a retry
    // after the file landed must not put a second copy where the task points now.
    const destination = await liveDestination(deps.prisma, tenant.id, run.destinationId ?? task.destinationId);
    if (!destination) throw new PermanentError("destination_missing", "the run's destination no longer exists");
    const adapter = deps.registry.adapterFor(destination.kind);
    const { config, credentials } = prepare(destination, adapter, deps.keyring);

    // The path the encryptor staged the file under (the report's date folders, if any, and its
    // name plus .pgp or .asc): the bytes were made under the task's settings of that transform
    // (format, pattern, description, zone, date folders), and every attempt of this run lands on
    // the same path, whatever changed since.
    const path = stagedPath(payload.encryptedKey, tenant.id, run.id, "encrypted");
    const fileName = posix.basename(path);
    const subfolder = posix.dirname(path) === "." ? undefined : posix.dirname(path);
    const stored = await deps.staging.stat(payload.encryptedKey);
    const body = await deps.staging.get(payload.encryptedKey);
    // The run's lock lost to another attempt (see RunLocks): the body fails under the adapter,
    // which then cleans up as after any cut read, so this attempt never puts the file in place
    // beside the other's.
    const stopOnLockLost = () => body.destroy(ctx.lockLost?.reason as Error);
    ctx.lockLost?.addEventListener("abort", stopOnLockLost, { once: true });
    if (ctx.lockLost?.aborted) stopOnLockLost();

    ctx.span.setAttributes({ "transporter.destination_kind": destination.kind });
    let result;
    try {
      // The destination call as its own span (kind and id only: never settings or credentials).
      result = await startSpan(tracer, "destination deliver", { "transporter.destination_kind": destination.kind, "transporter.destination_id": destination.id }, async (span) => {
        const delivered = await adapter.deliver(
          body,
          fileName,
          {
            tenantId: tenant.id,
            runId: run.id,
            contentType: "application/pgp-encrypted",
            ...(subfolder ? { subfolder } : {}),
            ...(stored ? { expectedBytes: stored.bytes } : {}),
          },
          config,
          credentials,
        );
        span.setAttribute("transporter.bytes", delivered.bytes);
        return delivered;
      });
    } catch (error) {
      body.destroy();
      if (ctx.lockLost?.aborted) throw ctx.lockLost.reason;
      if (isDestinationError(error) && error.permanent) {
        await deps.prisma.destination.update({ where: { id: destination.id }, data: { lastError: error.message } });
        throw new PermanentError(error.code, error.message, { cause: error });
      }
      throw error;
    } finally {
      ctx.lockLost?.removeEventListener("abort", stopOnLockLost);
    }

    const deliveredAt = now();
    const notes = [...(Array.isArray(run.notes) ? (run.notes as string[]) : []), ...result.notes];
    ctx.setRunFields({
      fileName,
      destinationPath: result.path,
      bytes: BigInt(result.bytes),
      checksum: result.checksum,
      notes,
      fileExpiresAt: destination.kind === "managed" ? managedFileExpiry(deliveredAt, deps.config.MANAGED_RETENTION_DAYS) : null,
      fileDeletedAt: null,
    });
    logger.info({ kind: destination.kind, destinationId: destination.id, path: result.path, bytes: result.bytes, notes: result.notes }, "delivered");
  };
}
