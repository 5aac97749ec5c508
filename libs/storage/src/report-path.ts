import { poolOf, type Db } from "@transporter/db";
import { stagingKey } from "./staging/keys.js";

/** A run's report path to be fixed by its transform stage (see claimReportPath). */
export interface ReportPathClaim {
  tenantId: string;
  taskId: string;
  runId: string;
  /** The run's attempts as the transform attempt claiming it left them: a stale attempt fixes nothing. */
  attempts: number;
  windowStart: Date;
  windowEnd: Date;
  /**
   * Whether the window may take the plain name, as the caller knows: it is one the task's
   * schedule makes as it stands (what "run now" asks for), or the plain name holds the whole
   * window (both instants, or the run's id) so no other window's can equal it. Otherwise, and
   * unless a scheduled run of the task had this very window, it was asked for by hand and never
   * takes the plain name (see claimReportPath).
   */
  mayTakePlainName: boolean;
  /**
   * The run's report path below its staging folder (`[YYYY/MM/DD/]name.<format>`) for a name
   * variant: 0 is the plain name, 1, 2… the ones that tell the window apart (reportFileName's
   * `variant`). Must give different paths for different variants.
   */
  pathFor(variant: number): string;
}

export interface ClaimedReportPath {
  /** The path fixed for the run's report, and its staging key (recorded as the run's `reportKey`). */
  path: string;
  key: string;
  /** The variant taken (0: the plain name). */
  variant: number;
  /** When the plain name was taken: the run of another window whose file has it. */
  plainNameHolder: { runId: string; windowStart: Date; windowEnd: Date } | null;
}

/**
 * Where the path starts in a run's report key, `tenants/<uuid>/runs/<uuid>/report/<path>`
 * (1-based, as SQL's substr counts): the expression of the index "Run_taskId_reportPath_idx"
 * (migration 20261124060000_run_report_path_index), which the look-up below must repeat exactly.
 */
export const REPORT_PATH_FROM = "tenants/".length + 36 + "/runs/".length + 36 + "/report/".length + 1;

/** ASCII letters lowered, as `lower(… COLLATE "C")` does in the look-up; nothing else changed. */
const asciiLower = (path: string) => path.replace(/[A-Z]+/g, (letters) => letters.toLowerCase());

/** Whether a scheduled run of the task has had exactly this window (a retry's, after a schedule change). */
const SCHEDULED_SQL = `
  SELECT 1 FROM "Run" WHERE "taskId" = $1::uuid AND trigger = 'schedule' AND "windowStart" = $2::timestamptz AND "windowEnd" = $3::timestamptz LIMIT 1`;

/** Variants looked up per statement (in practice the first one or two are free). */
const VARIANTS_PER_LOOKUP = 4;

/**
 * The report paths (lower case) among `$5` that runs of task `$1` other than `$2`, for another
 * window than ($3, $4], have recorded: their `reportKey` is `tenants/<tenant>/runs/<run>/report/<path>`.
 * Compared without case: SFTP servers on Windows and macOS file systems do not tell case apart.
 * ASCII case only (keys are ASCII), under the "C" collation: with the database's own, `lower`
 * follows its locale (Turkish lowers "I" to "ı") and would match nothing lowered here.
 * Runs of the same window (a retry, a run requested for it) share its name: their file is the
 * same data, and replacing it is what they are for.
 */
export const TAKEN_SQL = `
  SELECT r.id, r."windowStart", r."windowEnd", lower(substr(r.staging ->> 'reportKey', ${REPORT_PATH_FROM}) COLLATE "C") AS path
  FROM "Run" r
  WHERE r."taskId" = $1::uuid AND r.staging ? 'reportKey'
    AND lower(substr(r.staging ->> 'reportKey', ${REPORT_PATH_FROM}) COLLATE "C") = ANY($5::text[])
    AND starts_with(r.staging ->> 'reportKey', 'tenants/' || r."tenantId" || '/runs/' || r.id || '/report/')
    AND r.id <> $2::uuid
    AND NOT (r."windowStart" = $3::timestamptz AND r."windowEnd" = $4::timestamptz)`;

/**
 * Fixes the path of a run's report before the transform stage writes it, so that no two windows
 * of a task share a file name: a destination writes by name, and the later file would replace
 * the earlier one. The plain name is taken unless a run of another window of the task has it
 * already (a time-zone change makes the first window after it start at the old zone's boundary;
 * a zone that skipped a day gives two windows one date; a changed pattern can repeat an earlier
 * window's name); then the first variant no such run has. A window asked for by hand that is not
 * one of the schedule's starts at the first variant: the plain name is its scheduled neighbour's
 * (a half-day extract would otherwise take the daily file's name when transformed first). Every
 * schedule window whose name is its own keeps the name it always had.
 *
 * The path is recorded on the run (`staging.reportKey`, where the stage's output goes) in the
 * same transaction as the check, under a lock per task: two runs of one task transformed at once
 * cannot both take one name, and a later run sees the names of every run before it, finished or
 * not, delivered before this rule or not. A retry of the transform names the run again (its own
 * earlier claim does not count); the stages after it keep the path staged with the report.
 * Throws when the attempt no longer holds the run (another attempt or a later stage has it).
 */
export async function claimReportPath(prisma: Db, claim: ReportPathClaim): Promise<ClaimedReportPath> {
  const client = await poolOf(prisma).connect();
  let broken: Error | undefined;
  try {
    await client.query("BEGIN");
    await client.query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", [`transporter:report-name:${claim.taskId}`]);
    let chosen: { path: string; variant: number } | undefined;
    let plainNameHolder: ClaimedReportPath["plainNameHolder"] = null;
    const scheduled = claim.mayTakePlainName || ((await client.query(SCHEDULED_SQL, [claim.taskId, claim.windowStart, claim.windowEnd])).rowCount ?? 0) > 0;
    // The plain name names the schedule's windows: one asked for by hand always carries its
    // start, whichever is transformed first (a half-day extract is never "conv_2026-11-23").
    const firstVariant = scheduled ? 0 : 1;
    for (let first = firstVariant; !chosen; first += VARIANTS_PER_LOOKUP) {
      const paths = Array.from({ length: VARIANTS_PER_LOOKUP }, (_, i) => claim.pathFor(first + i));
      const { rows } = await client.query<{ id: string; windowStart: Date; windowEnd: Date; path: string }>(TAKEN_SQL, [
        claim.taskId,
        claim.runId,
        claim.windowStart,
        claim.windowEnd,
        paths.map(asciiLower),
      ]);
      const taken = new Set(rows.map((r) => r.path));
      if (first === 0) {
        const holder = rows.find((r) => r.path === asciiLower(paths[0]!));
        if (holder) plainNameHolder = { runId: holder.id, windowStart: holder.windowStart, windowEnd: holder.windowEnd };
      }
      const free = paths.findIndex((p) => !taken.has(asciiLower(p)));
      if (free >= 0) chosen = { path: paths[free]!, variant: first + free };
    }
    const key = stagingKey(claim.tenantId, claim.runId, "report", chosen.path);
    const { rowCount } = await client.query(
      `UPDATE "Run" SET staging = staging || jsonb_build_object('reportKey', $2::text), "updatedAt" = now()
       WHERE id = $1::uuid AND status = 'TRANSFORMING' AND attempts = $3::int AND "transformFinishedAt" IS NULL`,
      [claim.runId, key, claim.attempts],
    );
    if (!rowCount) throw new Error(`run ${claim.runId} moved on while its report was being named (another attempt or a later stage has it); nothing was written`);
    await client.query("COMMIT");
    return { path: chosen.path, key, variant: chosen.variant, plainNameHolder };
  } catch (error) {
    await client.query("ROLLBACK").catch((rollback: Error) => void (broken = rollback));
    throw error;
  } finally {
    // A connection whose rollback failed is in an unknown state: it is closed, not reused.
    client.release(broken);
  }
}
