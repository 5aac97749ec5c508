import { randomUUID } from "node:crypto";
import { poolOf, type Db } from "@transporter/db";
import { createTestDatabase } from "@transporter/db/testing";
import type { TestDatabase } from "@transporter/db/testing";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { claimReportPath, reportFileName, stagingKey } from "../src/index.js";
import { REPORT_PATH_FROM, TAKEN_SQL } from "../src/report-path.js";

let db: TestDatabase;
let prisma: Db;
let tenantId: string;
let destinationId: string;

const HOUR = 3_600_000;

beforeAll(async () => {
  db = await createTestDatabase();
  prisma = db.prisma;
  const tenant = await prisma.tenant.create({ data: { accountId: `acc-${randomUUID().slice(0, 8)}`, name: "Names Co", timezone: "America/Los_Angeles" } });
  tenantId = tenant.id;
  destinationId = (await prisma.destination.create({ data: { tenantId, name: "Bucket", kind: "s3", config: { bucket: "b" } } })).id;
});

afterAll(async () => {
  await db?.drop();
});

async function newTask(): Promise<string> {
  const task = await prisma.task.create({ data: { tenantId, description: "Daily", reportId: "messaging", format: "csv", frequency: "daily", time: "00:00", destinationId, options: { fileNamePattern: "daily_{endDate}" } } });
  return task.id;
}

/** A run in its transform stage (its first attempt). */
async function transformingRun(taskId: string, windowStart: Date, windowEnd: Date) {
  return prisma.run.create({ data: { tenantId, taskId, windowStart, windowEnd, scheduledFor: windowEnd, trigger: "schedule", status: "TRANSFORMING", attempts: 1 } });
}

/** Claims with daily_{endDate} names in `zone`, as the transformer does (for a schedule window unless told). */
function claim(run: { id: string; taskId: string; windowStart: Date; windowEnd: Date; attempts: number }, zone: string, pattern = "daily_{endDate}", mayTakePlainName = true, db: Db = prisma) {
  return claimReportPath(db, {
    tenantId,
    mayTakePlainName,
    taskId: run.taskId,
    runId: run.id,
    attempts: run.attempts,
    windowStart: run.windowStart,
    windowEnd: run.windowEnd,
    pathFor: (variant) => reportFileName({ description: "Daily", windowStart: run.windowStart, windowEnd: run.windowEnd, format: "csv", zone, encrypted: false, pattern, variant }),
  });
}

async function reportKeyOf(runId: string): Promise<string | undefined> {
  const run = await prisma.run.findUniqueOrThrow({ where: { id: runId } });
  return (run.staging as Record<string, string>).reportKey;
}

describe("claimReportPath", () => {
  it("finds the path where stagingKey puts it (the index's expression)", () => {
    const key = stagingKey(randomUUID(), randomUUID(), "report", "2026/01/02/daily.csv");
    expect(key.slice(REPORT_PATH_FROM - 1)).toBe("2026/01/02/daily.csv");
  });

  it("gives a window the plain name, and the next window with that name its start (UTC → Los Angeles)", async () => {
    const taskId = await newTask();
    // Recorded in UTC: (2026-01-01Z, 2026-01-02Z]; after the switch: 2026-01-02T00:00Z → 08:00Z.
    const before = await transformingRun(taskId, new Date("2026-01-01T00:00Z"), new Date("2026-01-02T00:00Z"));
    const after = await transformingRun(taskId, new Date("2026-01-02T00:00Z"), new Date("2026-01-02T08:00Z"));
    const first = await claim(before, "UTC");
    expect(first).toMatchObject({ path: "daily_2026-01-02.csv", variant: 0, plainNameHolder: null, key: stagingKey(tenantId, before.id, "report", "daily_2026-01-02.csv") });
    expect(await reportKeyOf(before.id)).toBe(first.key);
    const second = await claim(after, "America/Los_Angeles");
    expect(second).toMatchObject({ path: "daily_2026-01-02_2026-01-01T1600-0800.csv", variant: 1, plainNameHolder: { runId: before.id, windowStart: before.windowStart, windowEnd: before.windowEnd } });
    expect(await reportKeyOf(after.id)).toBe(second.key);
    // Named again (a retried transform): the same names; a run's own claim does not count.
    expect((await claim(before, "UTC")).path).toBe(first.path);
    expect((await claim(after, "America/Los_Angeles")).path).toBe(second.path);
  });

  it("gives a window asked for by hand its start even when transformed before the schedule's window of that date", async () => {
    const taskId = await newTask();
    const manual = await prisma.run.create({
      data: { tenantId, taskId, windowStart: new Date("2026-03-02T00:00Z"), windowEnd: new Date("2026-03-02T12:00Z"), scheduledFor: new Date("2026-03-02T12:00Z"), trigger: "manual", status: "TRANSFORMING", attempts: 1 },
    });
    const scheduled = await transformingRun(taskId, new Date("2026-03-01T12:00Z"), new Date("2026-03-02T12:00Z"));
    expect((await claim(manual, "UTC", "daily_{endDate}", false)).path).toBe("daily_2026-03-02_2026-03-02T0000+0000.csv");
    expect((await claim(scheduled, "UTC")).path).toBe("daily_2026-03-02.csv");
    // A retry of a window a scheduled run had (the schedule changed since) keeps the plain name.
    const retry = await prisma.run.create({
      data: { tenantId, taskId, windowStart: scheduled.windowStart, windowEnd: scheduled.windowEnd, scheduledFor: scheduled.windowEnd, trigger: "retry", status: "TRANSFORMING", attempts: 1 },
    });
    expect((await claim(retry, "UTC", "daily_{endDate}", false)).path).toBe("daily_2026-03-02.csv");
  });

  it("folds ASCII case only, whatever the database's locale (Turkish lowers I to ı)", async () => {
    const turkish = await createTestDatabase({ create: "TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'tr-TR' LOCALE 'C.UTF-8'" });
    try {
      const tenant = await turkish.prisma.tenant.create({ data: { accountId: `acc-${randomUUID().slice(0, 8)}`, name: "İstanbul", timezone: "UTC" } });
      const destination = await turkish.prisma.destination.create({ data: { tenantId: tenant.id, name: "Bucket", kind: "s3", config: { bucket: "b" } } });
      const task = await turkish.prisma.task.create({ data: { tenantId: tenant.id, description: "Inbox", reportId: "messaging", format: "csv", frequency: "daily", time: "00:00", destinationId: destination.id } });
      const run = (start: string, end: string) =>
        turkish.prisma.run.create({ data: { tenantId: tenant.id, taskId: task.id, windowStart: new Date(start), windowEnd: new Date(end), scheduledFor: new Date(end), trigger: "schedule", status: "TRANSFORMING", attempts: 1 } });
      const first = await run("2026-11-22T00:00Z", "2026-11-23T00:00Z");
      const second = await run("2026-11-23T00:00Z", "2026-11-23T08:00Z");
      const claimIn = (r: typeof first) =>
        claimReportPath(turkish.prisma, {
          tenantId: tenant.id, taskId: task.id, runId: r.id, attempts: 1, windowStart: r.windowStart, windowEnd: r.windowEnd, mayTakePlainName: true,
          pathFor: (variant) => reportFileName({ description: "Inbox", windowStart: r.windowStart, windowEnd: r.windowEnd, format: "csv", zone: "UTC", encrypted: false, pattern: "INBOX_{endDate}", variant }),
        });
      expect((await claimIn(first)).path).toBe("INBOX_2026-11-23.csv");
      expect((await claimIn(second)).path).toBe("INBOX_2026-11-23_2026-11-23T0000+0000.csv");
    } finally {
      await turkish.drop();
    }
  });

  it("lets runs of the same window share a name, and tells case apart as Windows and macOS do not", async () => {
    const taskId = await newTask();
    const start = new Date("2026-03-01T08:00Z");
    const end = new Date("2026-03-02T08:00Z");
    const original = await transformingRun(taskId, start, end);
    const retry = await prisma.run.create({ data: { tenantId, taskId, windowStart: start, windowEnd: end, scheduledFor: end, trigger: "manual", retryOfId: original.id, status: "TRANSFORMING", attempts: 1 } });
    expect((await claim(original, "America/Los_Angeles")).path).toBe("daily_2026-03-02.csv");
    expect((await claim(retry, "America/Los_Angeles")).path).toBe("daily_2026-03-02.csv");
    const other = await transformingRun(taskId, new Date("2026-03-02T00:00Z"), new Date("2026-03-02T12:00Z"));
    expect((await claim(other, "UTC", "DAILY_{endDate}")).path).toBe("DAILY_2026-03-02_2026-03-02T0000+0000.csv");
  });

  it("takes the window's start and end, then a number, when shorter names are taken", async () => {
    const taskId = await newTask();
    const end = new Date("2026-04-02T00:00Z");
    const runs = [];
    // Four windows with one end, two of them with one start.
    for (const start of ["2026-04-01T00:00Z", "2026-04-01T12:00Z", "2026-04-01T12:00:00.5Z", "2026-04-01T12:00:00.75Z"]) runs.push(await transformingRun(taskId, new Date(start), end));
    const paths = [];
    for (const run of runs) paths.push((await claim(run, "UTC")).path);
    expect(paths).toEqual([
      "daily_2026-04-02.csv",
      "daily_2026-04-02_2026-04-01T1200+0000.csv",
      "daily_2026-04-02_2026-04-01T1200+0000_2026-04-02T0000+0000.csv",
      "daily_2026-04-02_2026-04-01T1200+0000_2026-04-02T0000+0000-2.csv",
    ]);
  });

  it("claims nothing for an attempt that no longer holds the run", async () => {
    const taskId = await newTask();
    const run = await transformingRun(taskId, new Date("2026-05-01T00:00Z"), new Date("2026-05-02T00:00Z"));
    await expect(claim({ ...run, attempts: 2 }, "UTC")).rejects.toThrow(/moved on/);
    expect(await reportKeyOf(run.id)).toBeUndefined();
    await prisma.run.update({ where: { id: run.id }, data: { status: "ENCRYPTING", transformFinishedAt: new Date() } });
    await expect(claim(run, "UTC")).rejects.toThrow(/moved on/);
    expect(await reportKeyOf(run.id)).toBeUndefined();
  });

  it("never gives one name to two windows claimed at the same time", async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 2, max: 12 }), fc.integer({ min: 0, max: 3 }), async (windows, delivered) => {
        const taskId = await newTask();
        // Windows ending on 2026-06-02 in Los Angeles, all named daily_2026-06-02; some named before.
        const end = new Date("2026-06-02T12:00Z");
        const runs = await Promise.all(Array.from({ length: windows + delivered }, (_, i) => transformingRun(taskId, new Date(end.getTime() - (i + 1) * HOUR), end)));
        for (const run of runs.slice(0, delivered)) await claim(run, "America/Los_Angeles");
        const claimed = await Promise.all(runs.slice(delivered).map((run) => claim(run, "America/Los_Angeles")));
        const paths = [...(await Promise.all(runs.slice(0, delivered).map((r) => reportKeyOf(r.id)))), ...claimed.map((c) => c.key)].map((key) => key!.split("/").pop()!.toLowerCase());
        expect(new Set(paths).size).toBe(runs.length);
        // Exactly one of the windows has the plain name.
        expect(paths.filter((p) => p === "daily_2026-06-02.csv")).toHaveLength(1);
      }),
      { numRuns: 15 },
    );
  });

  it("finds taken names through the index, not by reading the task's runs", async () => {
    const taskId = await newTask();
    const pool = poolOf(prisma);
    // Two years of a task every 15 minutes, each with its report.
    await pool.query(
      `INSERT INTO "Run" (id, "tenantId", "taskId", "windowStart", "windowEnd", "scheduledFor", trigger, status, staging, "updatedAt")
       SELECT g.id, $1::uuid, $2::uuid, g.w, g.w + interval '15 minutes', g.w, 'schedule', 'SUCCEEDED',
              jsonb_build_object('reportKey', 'tenants/' || $1::text || '/runs/' || g.id || '/report/q_' || to_char(g.w, 'YYYY-MM-DD_HH24MI') || '.csv'), now()
       FROM (SELECT gen_random_uuid() AS id, timestamptz '2024-01-01' + n * interval '15 minutes' AS w FROM generate_series(1, 70000) n) g`,
      [tenantId, taskId],
    );
    await pool.query(`ANALYZE "Run"`);
    const run = await transformingRun(taskId, new Date("2024-06-01T00:00Z"), new Date("2024-06-01T00:30Z"));
    const path = (variant: number) => `q_2024-06-01_0000${variant === 0 ? "" : `_${variant}`}.csv`;
    const { rows } = await pool.query<{ "QUERY PLAN": string }>(`EXPLAIN ${TAKEN_SQL}`, [taskId, run.id, run.windowStart, run.windowEnd, [path(0), path(1)]]);
    expect(rows.map((r) => r["QUERY PLAN"]).join("\n")).toContain("Run_taskId_reportPath_idx");
    const claimed = await claimReportPath(prisma, { tenantId, taskId, runId: run.id, attempts: 1, windowStart: run.windowStart, windowEnd: run.windowEnd, mayTakePlainName: true, pathFor: path });
    expect(claimed.path).toBe("q_2024-06-01_0000_1.csv");
  });
});
