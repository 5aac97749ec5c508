/**
 * What a notification says about a finished run. The webhook posts it as JSON; the email
 * templates read their placeholders from it. Never holds secrets: only what the history shows.
 */
export interface RunSummary {
  tenantId: string;
  taskId: string;
  /** The task's description, as the tenant named it. */
  task: string;
  runId: string;
  status: string;
  trigger: string;
  /** ISO 8601 instants of the data window. */
  windowStart: string;
  windowEnd: string;
  fileName: string | null;
  destinationPath: string | null;
  bytes: number | null;
  checksum: string | null;
  records: number | null;
  error: { code: string | null; message: string } | null;
  notes: string[];
  finishedAt: string | null;
}

/** The values `{{placeholders}}` in email templates can use. */
export function summaryValues(summary: RunSummary): Record<string, string> {
  return {
    task: summary.task,
    status: summary.status,
    window: `${summary.windowStart} – ${summary.windowEnd}`,
    windowStart: summary.windowStart,
    windowEnd: summary.windowEnd,
    file: summary.fileName ?? "",
    path: summary.destinationPath ?? "",
    bytes: summary.bytes === null ? "" : String(summary.bytes),
    records: summary.records === null ? "" : String(summary.records),
    checksum: summary.checksum ?? "",
    error: summary.error?.message ?? "",
    errorCode: summary.error?.code ?? "",
    runId: summary.runId,
    taskId: summary.taskId,
    trigger: summary.trigger,
    finishedAt: summary.finishedAt ?? "",
    notes: summary.notes.join("; "),
  };
}

export const TEMPLATE_PLACEHOLDERS: readonly string[] = Object.keys(
  summaryValues({
    tenantId: "",
    taskId: "",
    task: "",
    runId: "",
    status: "",
    trigger: "",
    windowStart: "",
    windowEnd: "",
    fileName: null,
    destinationPath: null,
    bytes: null,
    checksum: null,
    records: null,
    error: null,
    notes: [],
    finishedAt: null,
  }),
);
