/**
 * Errors of the report catalogue and the transform. Each has a stable `code`; `permanent`
 * errors cannot be fixed by retrying (the pipeline fails the run at once).
 */
export class ReportError extends Error {
  readonly code: string;
  readonly permanent: boolean;
  constructor(code: string, message: string, permanent = true) {
    super(message);
    this.name = new.target.name;
    this.code = code;
    this.permanent = permanent;
  }
}

/** A task names a report, version or format the catalogue does not have; `field` says which. */
export class UnknownReportError extends ReportError {
  readonly field: "reportId" | "reportVersion" | "format";
  constructor(field: "reportId" | "reportVersion" | "format", message: string) {
    super(`report.unknown_${field === "reportId" ? "report" : field === "reportVersion" ? "version" : "format"}`, message);
    this.field = field;
  }
}

/** The task's params do not fit the report version's parameter schema. */
export class InvalidReportParamsError extends ReportError {
  readonly problems: { path: string; message: string }[];
  constructor(problems: { path: string; message: string }[]) {
    super("report.invalid_params", `invalid report params: ${problems.map((p) => `${p.path}: ${p.message}`).join("; ")}`);
    this.problems = problems;
  }
}

/** One source record the definition cannot read; `path` names the offending field. */
export class MalformedRecordError extends ReportError {
  readonly path: string;
  constructor(path: string, reason: string) {
    super("report.malformed_record", path ? `${path}: ${reason}` : reason);
    this.path = path;
  }
}

/** The report's policy is `fail` and a record could not be read. */
export class MalformedInputError extends ReportError {
  readonly line: number;
  constructor(line: number, reason: string) {
    super("report.malformed_input", `record on line ${line} cannot be read: ${reason}`);
    this.line = line;
  }
}
