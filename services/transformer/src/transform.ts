import { posix } from "node:path";
import { PassThrough } from "node:stream";
import type { Db } from "@transporter/db";
import { PermanentError } from "@transporter/queue";
import type { StageContext, StageOutput } from "@transporter/queue";
import { FORMAT_FILES, REPORT_FORMATS, resolveVersion, transformStream, ZonedTime, type ReportFormat, type TransformPool, type TransformResult } from "@transporter/reports";
import { nextWindow, validateSchedule, type Schedule } from "@transporter/schedule";
import { claimReportPath, dateSubfolder, fileNamePatternOf, formatWindowInstant, namesWholeWindow, reportFileName, stagingKey, type ClaimedReportPath } from "@transporter/storage";
import type { StagingStore } from "@transporter/storage";

export interface TransformDeps {
  prisma: Db;
  staging: StagingStore;
  /** Worker threads for CSV and NDJSON (null: every format in this thread). */
  pool?: TransformPool | null;
}

/** The task options the transformer reads (see Task.options). */
export interface ReportTaskOptions {
  /** CSV: start with a UTF-8 byte order mark. */
  csvBom: boolean;
  /** CSV/XLSX: keep formula-like text as it is. */
  keepFormulas: boolean;
}

export function reportOptions(taskOptions: unknown): ReportTaskOptions {
  const options = (typeof taskOptions === "object" && taskOptions !== null ? taskOptions : {}) as Record<string, unknown>;
  return { csvBom: options.csvBom === true, keepFormulas: options.keepFormulas === true };
}

/** Notes the transformer writes start with this, so a re-run replaces its own notes only. */
export const SKIPPED_NOTE_PREFIX = "transform: ";

/** The run's error summary for skipped records: how many, and the first few with their line. */
export function skippedRecordsNote(result: TransformResult): string | null {
  if (result.skipped === 0) return null;
  const examples = result.skippedExamples.map((e) => `line ${e.line}: ${e.reason}`).join("; ");
  const more = result.skipped > result.skippedExamples.length ? `; and ${result.skipped - result.skippedExamples.length} more` : "";
  return `${SKIPPED_NOTE_PREFIX}${result.skipped} of ${result.records} records skipped (report ${result.reportId} v${result.reportVersion} cannot read them): ${examples}${more}`;
}

/** The run's note when its report could not take its plain name: which name it has, and why. */
function renamedNote(plainPath: string, path: string, holder: { runId: string; windowStart: Date; windowEnd: Date }, zone: string): string {
  const window = `${formatWindowInstant(holder.windowStart, zone)} – ${formatWindowInstant(holder.windowEnd, zone)}`;
  return `${SKIPPED_NOTE_PREFIX}report named "${posix.basename(path)}", not "${posix.basename(plainPath)}": that name is the file of another window of this task (${window}, run ${holder.runId})`;
}

/** Whether the run's window is one the task's schedule makes in `zone` (what "run now" asks for). */
function isScheduleWindow(task: StageContext<"transform">["task"], zone: string, run: { windowStart: Date; windowEnd: Date }): boolean {
  const schedule = { frequency: task.frequency, time: task.time, dayOfWeek: task.dayOfWeek, everyMinutes: task.everyMinutes, delayMinutes: task.delayMinutes } as Schedule;
  if (validateSchedule(schedule, zone).length > 0) return false;
  const window = nextWindow(schedule, zone, run.windowStart);
  return window.start.getTime() === run.windowStart.getTime() && window.end.getTime() === run.windowEnd.getTime();
}

function formatOf(format: string): ReportFormat {
  if ((REPORT_FORMATS as readonly string[]).includes(format)) return format as ReportFormat;
  throw new PermanentError("report.unknown_format", `the task's format "${format}" is not a report format`);
}

function zoneOf(timezone: string | null): string {
  const zone = timezone ?? "UTC";
  try {
    new ZonedTime(zone);
  } catch {
    throw new PermanentError("invalid_timezone", `the account's time zone "${zone}" is not a known IANA zone; choose another one (PATCH /v1/account), then retry the run`);
  }
  return zone;
}

/**
 * The transform stage: the run's raw NDJSON in staging → the task's report file, streamed
 * (memory stays flat whatever the number of records) into the run's `report` staging folder.
 * A run keeps the report version it first resolved, so a retry renders the same columns even
 * if a new version was published in between. Re-running overwrites the same object.
 */
export function createTransformHandler(deps: TransformDeps) {
  return async function transformRun(ctx: StageContext<"transform">): Promise<StageOutput> {
    const { run, task, tenant, payload, logger, span } = ctx;
    const format = formatOf(run.format ?? task.format);
    const zone = zoneOf(tenant.timezone);
    // The report the run fetched (pinned with its version by the fetch stage): the raw records are
    // that report's, whatever the task was switched to since.
    const reportId = run.reportId ?? task.reportId;
    const version = run.reportVersion ?? resolveVersion(reportId, task.reportVersion);
    const naming = {
      description: task.description,
      windowStart: run.windowStart,
      windowEnd: run.windowEnd,
      format: FORMAT_FILES[format].extension,
      zone,
      encrypted: false,
      pattern: fileNamePatternOf(task.options),
      reportId,
      runId: run.id,
    };
    // With date folders, the report is staged below its folder: the later stages keep the path
    // as it is, so a retried delivery never lands in another folder (a zone changed meanwhile).
    const options = (task.options ?? {}) as { dateFolders?: unknown };
    const folder = options.dateFolders === true ? `${dateSubfolder(run.windowStart, zone)}/` : "";
    const pathFor = (variant: number) => `${folder}${reportFileName({ ...naming, variant })}`;
    // A task or zone that cannot give a name fails here, before the name is claimed.
    const plainPath = pathFor(0);
    // The plain name, unless another window of the task has it already (see claimReportPath). A
    // name that holds the whole window is no other window's: nothing to look up.
    const claimed: Pick<ClaimedReportPath, "key" | "path" | "variant" | "plainNameHolder"> = namesWholeWindow(naming.pattern)
      ? { key: stagingKey(tenant.id, run.id, "report", plainPath), path: plainPath, variant: 0, plainNameHolder: null }
      : await claimReportPath(deps.prisma, {
          tenantId: tenant.id,
          taskId: run.taskId,
          runId: run.id,
          attempts: run.attempts,
          windowStart: run.windowStart,
          windowEnd: run.windowEnd,
          mayTakePlainName: run.trigger === "schedule" || isScheduleWindow(task, zone, run),
          pathFor,
        });
    const reportKey = claimed.key;
    span.setAttributes({ "transporter.report": reportId, "transporter.report_version": version, "transporter.format": format, "transporter.file_name_variant": claimed.variant });

    const raw = await deps.staging.get(payload.rawKey);
    const file = new PassThrough();
    // The store may not listen yet when the transform fails early; its error is reported below.
    file.on("error", () => undefined);
    // Whichever side fails first says why: the other one's error is only the consequence (the
    // store sees its input cut off, the transform sees its output closed).
    let cause: unknown;
    const transforming = transformStream(
      // The params the run fetched with (the task's may have changed since, even to another version's).
      { report: reportId, version, format, params: run.params ?? task.params, timeZone: zone, options: reportOptions(task.options) },
      raw,
      file,
      deps.pool ? { pool: deps.pool } : {},
    ).catch((error: unknown) => {
      cause ??= error;
      // Stop reading and abandon the half-written object (the store never shows it).
      raw.destroy();
      file.destroy(error as Error);
      throw error;
    });
    const storing = deps.staging.put(reportKey, file).catch((error: unknown) => {
      cause ??= error;
      // A store that gave up (maybe before reading a byte) must not leave the transform blocked on
      // backpressure: closing its input tears down the whole chain (raw input, worker threads).
      file.destroy(error as Error);
      throw error;
    });
    const [transformed, stored] = await Promise.allSettled([transforming, storing]);
    if (transformed.status === "rejected" || stored.status === "rejected") throw cause;
    const result = transformed.value;

    const note = skippedRecordsNote(result);
    const notes = (Array.isArray(run.notes) ? (run.notes as unknown[]) : []).filter((n) => !(typeof n === "string" && n.startsWith(SKIPPED_NOTE_PREFIX)));
    if (claimed.plainNameHolder) notes.push(renamedNote(plainPath, claimed.path, claimed.plainNameHolder, zone));
    if (note) notes.push(note);
    ctx.setRunFields({ rows: result.rows, skippedRecords: result.skipped, reportId, reportVersion: result.reportVersion, format, notes: notes as string[] });
    span.setAttributes({ "transporter.rows": result.rows, "transporter.skipped_records": result.skipped, "transporter.report_bytes": result.bytes });
    if (claimed.plainNameHolder) logger.info({ plainPath, path: claimed.path, holderRunId: claimed.plainNameHolder.runId }, "another window of the task has the report's plain name: named after its window");
    logger.info({ reportKey, rows: result.rows, skipped: result.skipped, bytes: stored.value.bytes, reportVersion: result.reportVersion }, "report written");
    return { reportKey };
  };
}
