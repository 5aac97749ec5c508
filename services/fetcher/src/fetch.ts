import { Readable } from "node:stream";
import { SealError, unsealJson, type Keyring } from "@transporter/crypto";
import { liveSource, type Db } from "@transporter/db";
import { PermanentError } from "@transporter/queue";
import type { StageContext, StageOutput } from "@transporter/queue";
import { getReport, UnknownReportError } from "@transporter/reports";
import { isSourceApi, isSourceError, ndjsonChunks, type OpenedSource, type Platform, type SourceApi, type SourceCredentials } from "@transporter/sources";
import { stagingKey } from "@transporter/storage";
import type { StagingStore } from "@transporter/storage";

export interface FetchDeps {
  prisma: Db;
  staging: StagingStore;
  platform: Platform;
  keyring: Keyring;
}

/** The sealing context of a source's credentials (the gateway seals with the same). */
export function sourceCredentialsContext(tenantId: string, sourceId: string): string {
  return `tenant:${tenantId}/source:${sourceId}`;
}

function reportSource(reportId: string, version: string | number): { api: SourceApi; version: number; content: readonly string[] | undefined } {
  try {
    const { definition, version: resolved } = getReport(reportId, version);
    if (!isSourceApi(definition.source)) throw new PermanentError("report_source_unknown", `report ${reportId} names an unknown source API "${String(definition.source)}"`);
    return { api: definition.source, version: resolved.version, content: resolved.sourceContent };
  } catch (error) {
    if (error instanceof UnknownReportError) throw new PermanentError("report_unknown", error.message);
    throw error;
  }
}

/**
 * The fetch stage: the task's source → the window's records as NDJSON in the run's `raw`
 * staging folder. Records stream from the connector straight into the staging store (memory
 * stays flat whatever the window). A retry starts the window over and overwrites its own output
 * (`put` replaces the object atomically). Permanent source failures (bad credentials, a missing
 * permission, Data Access not enabled…) fail the run at once with the platform's reason.
 */
export function createFetchHandler(deps: FetchDeps) {
  return async function fetchRun(ctx: StageContext<"fetch">): Promise<StageOutput> {
    const { run, task, tenant, logger, span } = ctx;
    if (!task.sourceId) throw new PermanentError("source_missing", "the task has no source: set one (PATCH /v1/tasks/:id with sourceId), then retry the run");
    const source = await liveSource(deps.prisma, tenant.id, task.sourceId);
    if (!source) throw new PermanentError("source_missing", "the task's source no longer exists: point the task at another source, then retry the run");
    if (source.accountOfAnotherTenant) {
      throw new PermanentError(
        "account_of_another_tenant",
        `platform account ${source.accountId} of source "${source.name}" now belongs to another Transporter account; point the source at your own platform account, then retry the run`,
      );
    }

    let credentials: SourceCredentials;
    try {
      credentials = unsealJson<SourceCredentials>(source.sealedCredentials, deps.keyring, sourceCredentialsContext(tenant.id, source.id));
    } catch (error) {
      if (error instanceof SealError) {
        throw new PermanentError("source_credentials_unreadable", `the stored credentials of source "${source.name}" cannot be opened; send them again (PATCH /v1/sources/:id), then retry the run`);
      }
      throw error;
    }

    // A retry fetches the report the run first fetched (and with its params), even if the task's
    // report changed since.
    const reportId = run.reportId ?? task.reportId;
    const params = ((run.params ?? task.params) ?? {}) as Record<string, unknown>;
    const { api, version, content } = reportSource(reportId, run.reportVersion ?? task.reportVersion);
    const window = { from: run.windowStart, to: run.windowEnd };
    const rawKey = stagingKey(tenant.id, run.id, "raw", "records.ndjson");
    span.setAttributes({ "transporter.source_api": api, "transporter.source_id": source.id });

    // A hand-back at shutdown (ctx.signal) cuts the calls under way instead of leaving them running.
    const opened: OpenedSource = deps.platform.openSource(source.accountId, credentials, { signal: ctx.signal });
    let records = 0;
    const started = Date.now();
    try {
      const lines = ndjsonChunks(opened.fetch(api, window, { params, asReceived: true, ...(content ? { content } : {}) }), () => void records++);
      await deps.staging.put(rawKey, Readable.from(lines));
    } catch (error) {
      await deps.prisma.run.update({ where: { id: run.id }, data: { sourceCalls: opened.calls } }).catch(() => undefined);
      if (isSourceError(error)) {
        logger.warn({ code: error.code, permanent: error.permanent, api, calls: opened.calls }, "source fetch failed");
        if (error.permanent) throw new PermanentError(error.code, error.message, { cause: error });
      }
      throw error;
    }
    ctx.setRunFields({ records, sourceCalls: opened.calls, ...(run.reportId === null ? { reportId } : {}), ...(run.reportVersion === null ? { reportVersion: version } : {}), ...(run.params === null ? { params } : {}) });
    span.setAttributes({ "transporter.records": records, "transporter.source_calls": opened.calls });
    logger.info({ api, records, sourceCalls: opened.calls, ms: Date.now() - started }, "fetched");
    return { rawKey };
  };
}
