import type { z } from "zod";
import { findReport, getReport } from "./catalogue.js";
import { UnknownReportError } from "./errors.js";

export interface ReportProblem {
  path: string;
  message: string;
}

export interface TaskReportChoice {
  reportId: unknown;
  reportVersion?: unknown;
  format: unknown;
  params?: unknown;
}

/** zod issues as `{ path, message }` with paths under `params` ("params.skillIds.0"). */
export function paramProblems(error: z.ZodError, prefix = "params"): ReportProblem[] {
  return error.issues.map((issue) => ({
    path: [prefix, ...issue.path.map(String)].join("."),
    message: issue.message,
  }));
}

/**
 * Checks a task's report choice against the catalogue: report id, version ("latest" or a
 * published number), format and params. Returns the problems (empty when the choice is valid),
 * each naming the field, so the API can answer 400 with them.
 */
export function validateTaskReport(choice: TaskReportChoice): ReportProblem[] {
  if (typeof choice.reportId !== "string" || !findReport(choice.reportId)) {
    return [{ path: "reportId", message: `unknown report ${JSON.stringify(choice.reportId)}` }];
  }
  const requested = choice.reportVersion ?? "latest";
  if (typeof requested !== "string" && typeof requested !== "number") {
    return [{ path: "reportVersion", message: 'must be "latest" or a version number' }];
  }
  let resolved: ReturnType<typeof getReport>;
  try {
    resolved = getReport(choice.reportId, requested);
  } catch (err) {
    if (err instanceof UnknownReportError) return [{ path: err.field, message: err.message }];
    throw err;
  }
  const problems: ReportProblem[] = [];
  const { version } = resolved;
  if (typeof choice.format !== "string" || !(version.formats as readonly string[]).includes(choice.format)) {
    problems.push({ path: "format", message: `must be one of ${version.formats.join(", ")} for ${choice.reportId} v${version.version}` });
  }
  const parsed = version.params.safeParse(choice.params ?? {});
  if (!parsed.success) problems.push(...paramProblems(parsed.error));
  return problems;
}
