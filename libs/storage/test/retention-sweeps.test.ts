// The retention sweeps at scale and under trouble: how they read the Run table, a store that
// fails, two scheduler replicas sweeping at once, a database lost mid-sweep. Each test has its
// own database, since a sweep looks at every run in it.
import { randomUUID } from "node:crypto";
import { createPrisma, poolOf } from "@transporter/db";
import type { Db } from "@transporter/db";
import { createTestDatabase } from "@transporter/db/testing";
import type { TestDatabase } from "@transporter/db/testing";
import { afterAll, describe, expect, it } from "vitest";
import { sweepManagedFiles, sweepStaging } from "../src/index.js";
import type { StagingStore, SweepLogger, SweepPosition } from "../src/index.js";

const now = new Date("2026-11-23T06:00:00Z");
const HOUR = 60 * 60 * 1000;
const RETENTION_HOURS = 24;

const databases: TestDatabase[] = [];
afterAll(async () => {
  await Promise.all(databases.map((db) => db.drop()));
});

interface Fixture {
  db: TestDatabase;
  prisma: Db;
  tenantId: string;
  taskId: string;
}

async function fixture(): Promise<Fixture> {
  const db = await createTestDatabase();
  databases.push(db);
  const prisma = db.prisma;
  const tenant = await prisma.tenant.create({ data: { accountId: `acc-${randomUUID().slice(0, 8)}`, name: "Sweep Co", timezone: "UTC" } });
  const destination = await prisma.destination.create({ data: { tenantId: tenant.id, name: "Managed", kind: "managed", config: {} } });
  const task = await prisma.task.create({ data: { tenantId: tenant.id, description: "Daily", reportId: "messaging", format: "csv", frequency: "daily", time: "00:00", destinationId: destination.id } });
  return { db, prisma, tenantId: tenant.id, taskId: task.id };
}

/**
 * `count` runs due for both sweeps: a managed file expired a day ago, staging past retention. All
 * share one expiry and one finish time, so paging has to tell them apart by id.
 */
async function dueRuns(f: Fixture, count: number): Promise<string[]> {
  const ids = Array.from({ length: count }, () => randomUUID());
  await f.prisma.run.createMany({
    data: ids.map((id, i) => {
      const windowStart = new Date(Date.UTC(2026, 0, 1) + i * HOUR);
      return {
        id,
        tenantId: f.tenantId,
        taskId: f.taskId,
        windowStart,
        windowEnd: new Date(windowStart.getTime() + HOUR),
        scheduledFor: windowStart,
        trigger: "manual" as const,
        status: "SUCCEEDED" as const,
        finishedAt: new Date(now.getTime() - 2 * RETENTION_HOURS * HOUR),
        destinationPath: `tenants/${f.tenantId}/runs/${id}/report.csv.pgp`,
        fileExpiresAt: new Date(now.getTime() - 24 * HOUR),
      };
    }),
  });
  return ids;
}

/** The run id in a managed or staging key or prefix. */
function runIdOf(key: string): string {
  return /\/runs\/([^/]+)\//.exec(key)?.[1] ?? key;
}

/**
 * A store that only deletes (and records each run it was asked to delete for), optionally slowly
 * or failing for some runs.
 */
function deletingStore(options: { delayMs?: number; fails?: (runId: string) => boolean } = {}) {
  const attempts: string[] = [];
  const remove = async (key: string) => {
    if (options.delayMs) await new Promise((resolve) => setTimeout(resolve, options.delayMs));
    if (options.fails?.(runIdOf(key))) throw new Error("store unavailable");
  };
  const store: StagingStore = {
    put: () => Promise.reject(new Error("not used")),
    get: () => Promise.reject(new Error("not used")),
    stat: async () => null,
    // delete is the managed sweep's first call for a run, deletePrefix the staging sweep's.
    delete: async (key) => {
      attempts.push(runIdOf(key));
      await remove(key);
    },
    deletePrefix: async (prefix) => {
      await remove(prefix);
      return 1;
    },
  };
  return { store, attempts };
}

function recordingLogger(): SweepLogger & { lines: Array<{ level: string; details: Record<string, unknown>; message: string }> } {
  const lines: Array<{ level: string; details: Record<string, unknown>; message: string }> = [];
  return {
    lines,
    info: (details, message) => lines.push({ level: "info", details: details as Record<string, unknown>, message }),
    warn: (details, message) => lines.push({ level: "warn", details: details as Record<string, unknown>, message }),
  };
}

const REMOVED_FILE = "managed file removed by retention";
const REMOVED_STAGING = "staging objects removed by retention";
const stagingRunsLogged = (logger: ReturnType<typeof recordingLogger>) =>
  logger.lines.filter((l) => l.message === REMOVED_STAGING).reduce((sum, l) => sum + (l.details.runs as number), 0);

describe("the sweeps' reads", () => {
  it("go through their partial indexes, not through the whole Run table", async () => {
    const f = await fixture();
    // Many runs swept long ago, and enough due ones for a second page.
    await f.prisma.$executeRaw`
      INSERT INTO "Run" (id, "tenantId", "taskId", "windowStart", "windowEnd", "scheduledFor", trigger, status, "finishedAt",
                         "destinationPath", "fileExpiresAt", "fileDeletedAt", "stagingDeletedAt", "updatedAt")
      SELECT gen_random_uuid(), ${f.tenantId}::uuid, ${f.taskId}::uuid, t, t + interval '1 hour', t, 'manual', 'SUCCEEDED', t,
             'tenants/x/runs/y/old.pgp', t + interval '1 day', t + interval '2 days', t + interval '2 days', now()
      FROM generate_series(1, 20000) AS i, LATERAL (SELECT timestamptz '2024-01-01' + i * interval '1 hour' AS t) AS w`;
    await dueRuns(f, 250);
    await f.prisma.$executeRawUnsafe(`ANALYZE "Run"`);

    // The SQL the sweeps send, seen where the driver adapter hands it to the pool.
    const watched = createPrisma(f.db.url, { poolSize: 1 });
    const pool = poolOf(watched);
    type Query = (config: { text: string; values?: unknown[] }) => Promise<{ rows: Array<Record<string, string>> }>;
    const query = pool.query.bind(pool) as unknown as Query;
    const reads: Array<{ text: string; values: unknown[] }> = [];
    (pool as unknown as { query: Query }).query = (config) => {
      if (/^SELECT\b.*\bFROM "public"\."Run"/s.test(config.text)) reads.push({ text: config.text, values: config.values ?? [] });
      return query(config);
    };
    try {
      const { store } = deletingStore();
      expect((await sweepManagedFiles({ prisma: watched, store, now })).removed).toHaveLength(250);
      expect((await sweepStaging({ prisma: watched, staging: store, now, retentionHours: RETENTION_HOURS })).runs).toHaveLength(250);

      const plans = await Promise.all(
        reads.map(async (read) => {
          const { rows } = await query({ text: `EXPLAIN ${read.text}`, values: read.values });
          return { sweep: /"finishedAt" <=/.test(read.text) ? "staging" : "managed", plan: rows.map((row) => row["QUERY PLAN"]).join("\n") };
        }),
      );
      // A first page and a page after the cursor, for each sweep.
      expect(plans.filter((p) => p.sweep === "managed").length).toBeGreaterThanOrEqual(2);
      expect(plans.filter((p) => p.sweep === "staging").length).toBeGreaterThanOrEqual(2);
      for (const { sweep, plan } of plans) {
        expect(plan).not.toMatch(/Seq Scan/);
        expect(plan).toContain(sweep === "managed" ? '"Run_fileExpiresAt_id_idx"' : '"Run_finishedAt_id_idx"');
      }
    } finally {
      await watched.$disconnect();
    }
  });
});

describe("failing deletes", () => {
  it("a store down: each sweep gives up after a bounded number of failures, reports them, and leaves every run for the next sweep", async () => {
    const f = await fixture();
    await dueRuns(f, 3000);
    const { store, attempts } = deletingStore({ fails: () => true });

    const logger = recordingLogger();
    const managed = await sweepManagedFiles({ prisma: f.prisma, store, now, logger });
    expect(managed.removed).toEqual([]);
    expect(managed.failed.length).toBeGreaterThan(0);
    expect(managed.failed.length).toBeLessThanOrEqual(50);
    expect(attempts).toHaveLength(managed.failed.length);
    expect(logger.lines.filter((l) => l.level === "warn" && l.message === "managed file could not be removed; retrying at the next sweep")).toHaveLength(managed.failed.length);
    expect(logger.lines.some((l) => l.level === "warn" && /stopped after too many failures/.test(l.message))).toBe(true);

    const stagingLogger = recordingLogger();
    const staging = await sweepStaging({ prisma: f.prisma, staging: store, now, retentionHours: RETENTION_HOURS, logger: stagingLogger });
    expect(staging.runs).toEqual([]);
    expect(staging.failed.length).toBeGreaterThan(0);
    expect(staging.failed.length).toBeLessThanOrEqual(50);
    expect(stagingLogger.lines.some((l) => l.level === "warn" && /stopped after too many failures/.test(l.message))).toBe(true);

    expect(await f.prisma.run.count({ where: { fileDeletedAt: null, stagingDeletedAt: null } })).toBe(3000);
  });

  it("failures spread among successes are stepped over, each run tried once, until a per-sweep cap", async () => {
    const f = await fixture();
    const ids = await dueRuns(f, 1000);
    // One run in three fails (scattered: the sweep goes by id): never many in a row, but more
    // than one sweep collects.
    const failing = new Set(ids.filter((_, i) => i % 3 === 0));
    const { store, attempts } = deletingStore({ fails: (runId) => failing.has(runId) });

    const first = await sweepManagedFiles({ prisma: f.prisma, store, now });
    expect(new Set(attempts).size).toBe(attempts.length);
    expect(first.failed.length).toBeGreaterThanOrEqual(100);
    expect(first.failed.length).toBeLessThanOrEqual(200);
    expect(first.failed.length).toBeLessThan(failing.size);
    expect(first.failed.every((r) => failing.has(r.runId))).toBe(true);
    expect(first.removed.every((r) => !failing.has(r.runId))).toBe(true);
    expect(first.removed.length + first.failed.length).toBe(attempts.length);

    // The store is back: the next sweeps finish the work.
    const { store: working } = deletingStore();
    const second = await sweepManagedFiles({ prisma: f.prisma, store: working, now });
    expect(second.failed).toEqual([]);
    expect(first.removed.length + second.removed.length).toBe(1000);
    expect(await f.prisma.run.count({ where: { fileDeletedAt: null } })).toBe(0);
  });

  it("a few failing runs at the head do not stop the sweep: it pages past them (ties on the time broken by id)", async () => {
    const f = await fixture();
    const ids = await dueRuns(f, 450);
    const failing = new Set([...ids].sort().slice(0, 5));
    const { store } = deletingStore({ fails: (runId) => failing.has(runId) });
    const result = await sweepStaging({ prisma: f.prisma, staging: store, now, retentionHours: RETENTION_HOURS });
    expect(result.failed.map((r) => r.runId).sort()).toEqual([...failing].sort());
    expect(result.runs).toHaveLength(445);
    expect(await f.prisma.run.count({ where: { stagingDeletedAt: null } })).toBe(5);
  });
});

describe("runs that keep failing at the front of the order", () => {
  it("do not hold up the runs behind them: the next sweep goes on after the last run tried, the one after starts from the front", async () => {
    const f = await fixture();
    const ids = [...(await dueRuns(f, 30))].sort();
    // The first 25 in the sweeps' order (one expiry and finish time: by id) always fail.
    const failing = new Set(ids.slice(0, 25));
    const { store } = deletingStore({ fails: (runId) => failing.has(runId) });

    for (const sweep of ["managed", "staging"] as const) {
      const run = (startAfter: SweepPosition | null) =>
        sweep === "managed"
          ? sweepManagedFiles({ prisma: f.prisma, store, now, startAfter }).then((r) => ({ done: r.removed.map((x) => x.runId), failed: r.failed.map((x) => x.runId), resumeAfter: r.resumeAfter }))
          : sweepStaging({ prisma: f.prisma, staging: store, now, retentionHours: RETENTION_HOURS, startAfter }).then((r) => ({ done: r.runs.map((x) => x.runId), failed: r.failed.map((x) => x.runId), resumeAfter: r.resumeAfter }));
      const first = await run(null);
      expect(first.done).toEqual([]);
      expect(first.failed).toEqual(ids.slice(0, 20));
      expect(first.resumeAfter?.id).toBe(ids[19]);

      const second = await run(first.resumeAfter);
      expect(second.failed).toEqual(ids.slice(20, 25));
      expect(second.done).toEqual(ids.slice(25));
      expect(second.resumeAfter).toBeNull();

      // From the front again: the failing runs are tried again first.
      const third = await run(second.resumeAfter);
      expect(third.failed).toEqual(ids.slice(0, 20));
    }
    expect(await f.prisma.run.count({ where: { fileDeletedAt: null } })).toBe(25);
    expect(await f.prisma.run.count({ where: { stagingDeletedAt: null } })).toBe(25);
  });
});

describe("two sweeps at once (two scheduler replicas)", () => {
  it("report and log each removal once between them", async () => {
    const f = await fixture();
    const ids = await dueRuns(f, 10);
    const { store } = deletingStore({ delayMs: 15 });

    const loggers = [recordingLogger(), recordingLogger()];
    const managed = await Promise.all(loggers.map((logger) => sweepManagedFiles({ prisma: f.prisma, store, now, logger })));
    expect(managed.flatMap((r) => r.failed)).toEqual([]);
    expect(managed.flatMap((r) => r.removed.map((x) => x.runId)).sort()).toEqual([...ids].sort());
    expect(loggers.flatMap((l) => l.lines).filter((l) => l.message === REMOVED_FILE)).toHaveLength(10);

    const stagingLoggers = [recordingLogger(), recordingLogger()];
    const staging = await Promise.all(
      stagingLoggers.map((logger) => sweepStaging({ prisma: f.prisma, staging: store, now, retentionHours: RETENTION_HOURS, logger })),
    );
    expect(staging.flatMap((r) => r.runs.map((x) => x.runId)).sort()).toEqual([...ids].sort());
    expect(stagingLoggers.reduce((sum, logger) => sum + stagingRunsLogged(logger), 0)).toBe(10);
  });
});

describe("a sweep cut short by the database", () => {
  /** The same client, but run.findMany fails from its second call on (the connection lost after the first batch). */
  function losingConnection(prisma: Db): Db {
    let calls = 0;
    const run = new Proxy(prisma.run, {
      get(target, property) {
        if (property !== "findMany") return Reflect.get(target, property);
        return (args: unknown) => {
          calls += 1;
          if (calls >= 2) return Promise.reject(new Error("Connection terminated unexpectedly"));
          return (target.findMany as (args: unknown) => Promise<unknown>)(args);
        };
      },
    });
    return new Proxy(prisma, { get: (target, property) => (property === "run" ? run : Reflect.get(target, property)) });
  }

  it("has already logged what it removed before the failure", async () => {
    const f = await fixture();
    await dueRuns(f, 250);
    const { store } = deletingStore();

    const logger = recordingLogger();
    await expect(sweepManagedFiles({ prisma: losingConnection(f.prisma), store, now, logger })).rejects.toThrow("Connection terminated");
    const marked = await f.prisma.run.findMany({ where: { fileDeletedAt: { not: null } }, select: { id: true } });
    expect(marked.length).toBeGreaterThan(0);
    const logged = logger.lines.filter((l) => l.message === REMOVED_FILE).map((l) => l.details.runId as string);
    expect(logged.sort()).toEqual(marked.map((r) => r.id).sort());

    const stagingLogger = recordingLogger();
    await expect(
      sweepStaging({ prisma: losingConnection(f.prisma), staging: store, now, retentionHours: RETENTION_HOURS, logger: stagingLogger }),
    ).rejects.toThrow("Connection terminated");
    const swept = await f.prisma.run.count({ where: { stagingDeletedAt: { not: null } } });
    expect(swept).toBeGreaterThan(0);
    expect(stagingRunsLogged(stagingLogger)).toBe(swept);
  });
});
