import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, posix } from "node:path";
import { Readable } from "node:stream";
import type { Job } from "bullmq";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Db, Run, Task, Tenant } from "@transporter/db";
import { createTestDatabase } from "@transporter/db/testing";
import type { TestDatabase } from "@transporter/db/testing";
import type { StageContext } from "@transporter/queue";
import { nextWindow, type Schedule } from "@transporter/schedule";
import { dateSubfolder, FsStagingStore, reportFileName, stagedPath, stagingKey } from "@transporter/storage";
import { createLogger, trace } from "@transporter/telemetry";
import { createTransformHandler } from "../src/index.js";

/**
 * File names across the windows of one task: every window gets its own, whatever the time zone
 * did between them (a tenant's switch, a day a zone skipped), and a window whose plain name is
 * its own keeps it. The stage handler runs as the worker runs it, on a real database.
 */

type Frequency = Schedule["frequency"];
interface Segment {
  zone: string;
  windows: number;
}
interface ScheduledWindow {
  start: Date;
  end: Date;
  /** The tenant's zone when the window was recorded, and the zone after its segment's (the next change). */
  zone: string;
  nextZone: string;
}

/**
 * The windows the scheduler records for a task across zone changes: each segment's first window
 * starts where the recorded ones end (the task's coveredUntil, see planDueWindows) and ends on
 * the schedule's next boundary in the segment's zone.
 */
function history(schedule: Schedule, from: Date, segments: Segment[]): ScheduledWindow[] {
  const windows: ScheduledWindow[] = [];
  let covered = nextWindow(schedule, segments[0]!.zone, from).start;
  for (const [s, { zone, windows: count }] of segments.entries()) {
    const nextZone = segments[s + 1]?.zone ?? zone;
    for (let i = 0; i < count; i++) {
      const end = nextWindow(schedule, zone, covered).end;
      windows.push({ start: covered, end, zone, nextZone });
      covered = end;
    }
  }
  return windows;
}

describe("report file names across a task's windows", () => {
  let db: TestDatabase;
  let prisma: Db;
  let workDir: string;
  let staging: FsStagingStore;
  let transform: ReturnType<typeof createTransformHandler>;
  const logger = createLogger({ name: "transformer-test", level: "silent" });

  beforeAll(async () => {
    workDir = await mkdtemp(join(tmpdir(), "tp-file-names-"));
    db = await createTestDatabase();
    prisma = db.prisma;
    staging = new FsStagingStore(join(workDir, "staging"));
    transform = createTransformHandler({ prisma, staging, pool: null });
  }, 120_000);

  afterAll(async () => {
    await db?.drop();
    await rm(workDir, { recursive: true, force: true });
  });

  async function createTask(frequency: Frequency, options: { fileNamePattern?: string; dateFolders?: boolean }) {
    const tenant = await prisma.tenant.create({ data: { name: "Acme", accountId: String(Math.floor(Math.random() * 1e9)), timezone: "UTC" } });
    const destination = await prisma.destination.create({ data: { tenantId: tenant.id, name: "sftp", kind: "sftp", config: {} } });
    const task = await prisma.task.create({
      data: {
        tenantId: tenant.id,
        description: "Nightly Messaging",
        reportId: "messaging-conversations",
        format: "csv",
        options,
        frequency,
        ...(frequency === "interval" ? { everyMinutes: 60 } : { time: "00:00" }),
        ...(frequency === "weekly" ? { dayOfWeek: 1 } : {}),
        destinationId: destination.id,
      },
    });
    return { tenant, task };
  }

  /** A run of the window as the fetch stage leaves it (raw records staged), in its transform stage. */
  async function fetchedRun(tenant: Tenant, task: Task, window: { start: Date; end: Date }, trigger: "schedule" | "manual" = "schedule"): Promise<Run> {
    const run = await prisma.run.create({
      data: { tenantId: tenant.id, taskId: task.id, windowStart: window.start, windowEnd: window.end, scheduledFor: window.end, trigger, status: "TRANSFORMING", attempts: 1 },
    });
    await staging.put(stagingKey(tenant.id, run.id, "raw", "records.ndjson"), Readable.from([]));
    return run;
  }

  /** One transform attempt of the run with the tenant in `zone`: the report's path below the run's folder. */
  async function transformIn(zone: string, tenant: Tenant, task: Task, run: Run, attempt = 1): Promise<{ path: string; notes: string[] }> {
    const current = await prisma.run.update({ where: { id: run.id }, data: { attempts: attempt } });
    let notes: string[] = [];
    const ctx = {
      run: current,
      task,
      tenant: { ...tenant, timezone: zone },
      payload: { runId: run.id, tenantId: tenant.id, trace: {}, rawKey: stagingKey(tenant.id, run.id, "raw", "records.ndjson") },
      job: {} as Job,
      logger,
      span: trace.getTracer("test").startSpan("transform"),
      setRunFields: (fields: { notes?: string[] }) => void (notes = fields.notes ?? notes),
    } as unknown as StageContext<"transform">;
    const { reportKey } = (await transform(ctx)) as { reportKey: string };
    expect(await staging.stat(reportKey)).not.toBeNull();
    return { path: stagedPath(reportKey, tenant.id, run.id, "report"), notes };
  }

  /** The name every window got before names were told apart: its plain name in `zone`. */
  function plainPath(task: Task, window: { start: Date; end: Date }, zone: string, runId: string): string {
    const options = task.options as { fileNamePattern?: string; dateFolders?: boolean };
    const name = reportFileName({ description: task.description, windowStart: window.start, windowEnd: window.end, format: "csv", zone, encrypted: false, pattern: options.fileNamePattern, reportId: task.reportId, runId });
    return options.dateFolders ? `${dateSubfolder(window.start, zone)}/${name}` : name;
  }

  /** Transforms each window of the history in order, in the zone it was recorded in. */
  async function deliverHistory(frequency: Frequency, options: { fileNamePattern?: string; dateFolders?: boolean }, windows: ScheduledWindow[]) {
    const { tenant, task } = await createTask(frequency, options);
    const results: Array<{ path: string; notes: string[]; run: Run }> = [];
    for (const window of windows) {
      const run = await fetchedRun(tenant, task, window);
      results.push({ ...(await transformIn(window.zone, tenant, task, run)), run });
    }
    return { tenant, task, results };
  }

  const utcThenLosAngeles = (frequency: Frequency, before: number, after: number) =>
    history(frequency === "interval" ? { frequency, everyMinutes: 60 } : { frequency, time: "00:00", dayOfWeek: frequency === "weekly" ? 1 : null }, new Date("2025-12-29T00:00:00Z"), [
      { zone: "UTC", windows: before },
      { zone: "America/Los_Angeles", windows: after },
    ]);

  it("daily {endDate}: the first window after a switch from UTC to Los Angeles gets its start added, every other window its plain name", async () => {
    const windows = utcThenLosAngeles("daily", 4, 2);
    expect(windows[4]).toMatchObject({ start: new Date("2026-01-02T00:00:00Z"), end: new Date("2026-01-02T08:00:00Z"), zone: "America/Los_Angeles" });
    const { results } = await deliverHistory("daily", { fileNamePattern: "daily_{endDate}" }, windows);
    expect(results.map((r) => r.path)).toEqual([
      "daily_2025-12-30.csv",
      "daily_2025-12-31.csv",
      "daily_2026-01-01.csv",
      "daily_2026-01-02.csv",
      "daily_2026-01-02_2026-01-01T1600-0800.csv",
      "daily_2026-01-03.csv",
    ]);
    expect(results[4]!.notes).toContain(
      `transform: report named "daily_2026-01-02_2026-01-01T1600-0800.csv", not "daily_2026-01-02.csv": that name is the file of another window of this task (2025-12-31T1600-0800 – 2026-01-01T1600-0800, run ${results[3]!.run.id})`,
    );
    expect(results[5]!.notes.filter((n) => n.includes("report named"))).toEqual([]);
  });

  it("daily {startDate} with date folders: likewise, in the same folder", async () => {
    const { results } = await deliverHistory("daily", { fileNamePattern: "daily_{startDate}", dateFolders: true }, utcThenLosAngeles("daily", 2, 2));
    expect(results.map((r) => r.path)).toEqual([
      "2025/12/29/daily_2025-12-29.csv",
      "2025/12/30/daily_2025-12-30.csv",
      "2025/12/30/daily_2025-12-30_2025-12-30T1600-0800.csv",
      "2025/12/31/daily_2025-12-31.csv",
    ]);
  });

  it("weekly {endDate}: likewise", async () => {
    const windows = utcThenLosAngeles("weekly", 1, 2);
    const { results } = await deliverHistory("weekly", { fileNamePattern: "weekly_{endDate}" }, windows);
    expect(results.map((r) => r.path)).toEqual(["weekly_2026-01-05.csv", "weekly_2026-01-05_2026-01-04T1600-0800.csv", "weekly_2026-01-12.csv"]);
  });

  it("hourly {startDate}_{startTime}: the 8 windows whose local times repeat after the switch get their start added", async () => {
    // Two days in UTC, then the switch at midnight UTC (16:00 the day before in Los Angeles).
    const windows = utcThenLosAngeles("interval", 48, 12);
    const { results, task } = await deliverHistory("interval", { fileNamePattern: "hourly_{startDate}_{startTime}" }, windows);
    const paths = results.map((r) => r.path);
    expect(new Set(paths).size).toBe(windows.length);
    const renamed = results.filter((r, i) => r.path !== plainPath(task, windows[i]!, windows[i]!.zone, r.run.id));
    expect(renamed.map((r) => r.path)).toEqual(Array.from({ length: 8 }, (_, h) => `hourly_2025-12-30_${16 + h}00_2025-12-30T${16 + h}00-0800.csv`));
  });

  it("a switch the other way (Los Angeles to UTC) repeats no name, and changes none", async () => {
    for (const [frequency, pattern] of [["daily", "daily_{endDate}"], ["daily", "daily_{startDate}"], ["interval", "hourly_{startDate}_{startTime}"]] as const) {
      const schedule: Schedule = frequency === "interval" ? { frequency, everyMinutes: 60 } : { frequency, time: "00:00" };
      const windows = history(schedule, new Date("2026-01-01T05:00:00Z"), [
        { zone: "America/Los_Angeles", windows: frequency === "interval" ? 20 : 3 },
        { zone: "UTC", windows: frequency === "interval" ? 20 : 3 },
      ]);
      const { results, task } = await deliverHistory(frequency, { fileNamePattern: pattern }, windows);
      expect(results.map((r) => r.path)).toEqual(results.map((r, i) => plainPath(task, windows[i]!, windows[i]!.zone, r.run.id)));
    }
  });

  // Apia skipped 2011-12-30 and Kiritimati 1994-12-31 (from UTC-10 to UTC+14): the window of the
  // skipped day's 12:00 ends at the next midnight, and the next window 12 hours later.
  it.each([
    ["Pacific/Apia", "2011-12-31", "2011-12-27T00:00:00Z"],
    ["Pacific/Kiritimati", "1995-01-01", "1994-12-28T00:00:00Z"],
  ])("daily 12:00 {endDate} where %s skipped a day: the two windows ending on %s get two names", async (zone, day, from) => {
    const windows = history({ frequency: "daily", time: "12:00" }, new Date(from), [{ zone, windows: 5 }]);
    const { results } = await deliverHistory("daily", { fileNamePattern: "daily_{endDate}" }, windows);
    const paths = results.map((r) => r.path);
    expect(paths.filter((p) => p.startsWith(`daily_${day}`))).toEqual([`daily_${day}.csv`, `daily_${day}_${day}T0000+1400.csv`]);
    expect(new Set(paths).size).toBe(paths.length);
  });

  it("names a window asked for by hand apart from the schedule's, whichever is transformed first, unless its name holds the whole window", async () => {
    const day = { start: new Date("2026-05-04T00:00Z"), end: new Date("2026-05-05T00:00Z") };
    const halfDay = { start: new Date("2026-05-04T00:00Z"), end: new Date("2026-05-04T12:00Z") };
    {
      const { tenant, task } = await createTask("daily", { fileNamePattern: "conv_{startDate}" });
      // The half-day extract is transformed while the day's scheduled run is still fetching.
      const manual = await transformIn("UTC", tenant, task, await fetchedRun(tenant, task, halfDay, "manual"));
      const scheduled = await transformIn("UTC", tenant, task, await fetchedRun(tenant, task, day));
      expect(manual.path).toBe("conv_2026-05-04_2026-05-04T0000+0000.csv");
      expect(scheduled.path).toBe("conv_2026-05-04.csv");
      // "Run now" asks for a window of the schedule: the plain name, as its scheduled run would have.
      const runNow = await transformIn("UTC", tenant, task, await fetchedRun(tenant, task, { start: new Date("2026-05-05T00:00Z"), end: new Date("2026-05-06T00:00Z") }, "manual"));
      expect(runNow.path).toBe("conv_2026-05-05.csv");
    }
    {
      // The default name holds both instants: no schedule window's can equal it.
      const { tenant, task } = await createTask("daily", {});
      const manual = await fetchedRun(tenant, task, halfDay, "manual");
      expect((await transformIn("UTC", tenant, task, manual)).path).toBe(plainPath(task, halfDay, "UTC", manual.id));
    }
  });

  it("keeps a run's name when its transform is tried again, and a window's name for a retry run of it", async () => {
    const windows = utcThenLosAngeles("daily", 2, 1);
    const { tenant, task, results } = await deliverHistory("daily", { fileNamePattern: "daily_{endDate}" }, windows);
    const renamed = results[2]!;
    expect(renamed.path).toBe("daily_2025-12-31_2025-12-30T1600-0800.csv");
    // The transform attempted again (its first attempt's claim is its own).
    expect((await transformIn("America/Los_Angeles", tenant, task, renamed.run, 2)).path).toBe(renamed.path);
    expect((await transformIn("UTC", tenant, task, results[1]!.run, 2)).path).toBe(results[1]!.path);
    // POST /v1/runs/:id/retry: a new run of the same window replaces the same file.
    const retry = await fetchedRun(tenant, task, { start: renamed.run.windowStart, end: renamed.run.windowEnd }, "manual");
    expect((await transformIn("America/Los_Angeles", tenant, task, retry)).path).toBe(renamed.path);
  });

  const ZONES = ["UTC", "America/Los_Angeles", "Europe/Berlin", "Asia/Kolkata", "Pacific/Apia", "Pacific/Kiritimati", "Pacific/Chatham", "Australia/Lord_Howe", "America/St_Johns", "Asia/Tokyo"];
  const FROM = ["2011-12-26T00:00:00Z", "1994-12-27T00:00:00Z", "2026-03-06T00:00:00Z", "2026-10-23T00:00:00Z", "2026-04-03T00:00:00Z", "2025-12-30T00:00:00Z"];
  const PATTERNS: Record<Frequency, Array<string | undefined>> = {
    daily: [undefined, "d_{startDate}", "d_{endDate}", "{report}-{endDate}", "d_{start}"],
    weekly: [undefined, "w_{startDate}", "w_{endDate}", "w_{end}"],
    interval: [undefined, "h_{startDate}_{startTime}", "h_{endDate}_{endTime}", "h_{start}", "h_{startDate}T{startTime}"],
  };
  const schedules = fc.oneof(
    fc.record({ frequency: fc.constant("daily" as const), time: fc.constantFrom("00:00", "12:00", "23:30", "05:45") }),
    fc.record({ frequency: fc.constant("weekly" as const), time: fc.constantFrom("00:00", "12:00"), dayOfWeek: fc.integer({ min: 1, max: 7 }) }),
    fc.record({ frequency: fc.constant("interval" as const), everyMinutes: fc.constantFrom(60, 180, 360, 720) }),
  );

  it("property: whatever the zones do, a task's windows never share a name, a name of its own is kept, and a retry keeps it", async () => {
    await fc.assert(
      fc.asyncProperty(
        schedules,
        fc.constantFrom(...FROM),
        fc.integer({ min: 0, max: 23 }),
        fc.array(fc.record({ zone: fc.constantFrom(...ZONES), windows: fc.integer({ min: 1, max: 5 }) }), { minLength: 2, maxLength: 3 }),
        fc.nat(),
        fc.boolean(),
        fc.array(fc.tuple(fc.boolean(), fc.nat()), { minLength: 15, maxLength: 15 }),
        async (schedule, from, hours, segments, patternPick, dateFolders, picks) => {
          const patterns = PATTERNS[schedule.frequency];
          const pattern = patterns[patternPick % patterns.length];
          const windows = history(schedule, new Date(Date.parse(from) + hours * 3_600_000), segments);
          const { tenant, task } = await createTask(schedule.frequency, { ...(pattern ? { fileNamePattern: pattern } : {}), dateFolders });
          // Transformed in any order; some only after the next zone change (the run was late).
          const order = windows.map((w, i) => ({ w, zone: picks[i % picks.length]![0] ? w.nextZone : w.zone, key: picks[i % picks.length]![1] })).sort((a, b) => a.key - b.key);
          const done: Array<{ w: ScheduledWindow; zone: string; run: Run; path: string }> = [];
          for (const { w, zone } of order) {
            const run = await fetchedRun(tenant, task, w);
            done.push({ w, zone, run, path: (await transformIn(zone, tenant, task, run)).path });
          }
          // No two windows share a name (nor one that differs only in case).
          expect(new Set(done.map((d) => d.path.toLowerCase())).size).toBe(done.length);
          // A window whose plain name no other window has keeps exactly that name.
          const plain = done.map((d) => plainPath(task, d.w, d.zone, d.run.id));
          for (const [i, d] of done.entries()) {
            if (plain.filter((p) => p.toLowerCase() === plain[i]!.toLowerCase()).length === 1) expect(d.path).toBe(plain[i]);
            else {
              expect(posix.dirname(d.path)).toBe(posix.dirname(plain[i]!));
              expect(posix.basename(d.path).startsWith(posix.basename(plain[i]!).replace(/\.csv$/, ""))).toBe(true);
            }
          }
          // A transform tried again lands on the same name.
          const again = done[picks[0]![1] % done.length]!;
          expect((await transformIn(again.zone, tenant, task, again.run, 2)).path).toBe(again.path);
        },
      ),
      { numRuns: 30 },
    );
  }, 120_000);
});
