import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPrisma, poolOf } from "../src/client.js";
import { raiseAlert } from "../src/alerts.js";
import { activeEncryptionKey, encryptionKeyExists, liveDestination, liveSource } from "../src/pipeline-reads.js";
import { beginStage, completeRun, failStuckRun, finishStage, skipUnstartedRun, startRefusal, type StageRunFields } from "../src/run-stages.js";
import { createTestDatabase, type TestDatabase } from "../src/testing.js";

// The pipeline's hand-written SQL must return exactly what the model API returns and write
// exactly what it would, for one tenant's rows only.
describe("run stages in SQL", () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => db.drop());

  let seq = 0;
  async function seed() {
    const { prisma } = db;
    const accountId = `acc${++seq}`;
    const tenant = await prisma.tenant.create({ data: { accountId, name: `Brand ${accountId}`, timezone: "America/New_York" } });
    const key = await prisma.encryptionKey.create({
      data: { tenantId: tenant.id, publicKey: "armored", fingerprint: `FP${accountId}`, algorithm: "curve25519", origin: "generated", active: true, expiresAt: new Date("2030-01-01T00:00:00Z") },
    });
    const source = await prisma.source.create({
      data: { tenantId: tenant.id, name: "LP", kind: "liveperson", accountId, sealedCredentials: "v1.k.n.c", permissions: ["messaging-interactions"], verifiedAt: new Date() },
    });
    const destination = await prisma.destination.create({ data: { tenantId: tenant.id, name: "S3", kind: "s3", config: { bucket: "b", prefix: "x/" }, sealedCredentials: "v1.a.b.c" } });
    const task = await prisma.task.create({
      data: {
        tenantId: tenant.id, description: "Every 15 minutes", reportId: "messaging-conversations", format: "csv", frequency: "interval", everyMinutes: 15,
        params: { skills: [1, 2] }, options: { csvBom: true }, notifications: {}, sourceId: source.id, destinationId: destination.id, enabled: true,
        nextRunAt: new Date("2026-11-23T10:30:00.456Z"),
      },
    });
    const run = await prisma.run.create({
      data: {
        tenantId: tenant.id, taskId: task.id, windowStart: new Date("2026-11-23T10:00:00Z"), windowEnd: new Date("2026-11-23T10:15:00Z"),
        scheduledFor: new Date("2026-11-23T10:15:00Z"), trigger: "schedule", notes: ["earlier note"], bytes: 9_007_199_254_740_993n, staging: { raw: "k" },
      },
    });
    return { tenant, key, source, destination, task, run };
  }

  it("the fetch stage claims a queued run exactly when startRefusal lets it start, and says why not", async () => {
    const cases = [];
    for (const disabled of [false, true]) for (const deleted of [false, true]) for (const enabled of [false, true]) for (const trigger of ["schedule", "manual", "retry"] as const) cases.push({ disabled, deleted, enabled, trigger });
    for (const c of cases) {
      const { tenant, task, run } = await seed();
      await db.prisma.tenant.update({ where: { id: tenant.id }, data: { disabled: c.disabled } });
      await db.prisma.task.update({ where: { id: task.id }, data: { enabled: c.enabled, deletedAt: c.deleted ? new Date() : null } });
      await db.prisma.run.update({ where: { id: run.id }, data: { trigger: c.trigger } });
      const refusal = startRefusal({ trigger: c.trigger }, { enabled: c.enabled, deletedAt: c.deleted ? new Date() : null }, { disabled: c.disabled });
      const begun = await beginStage(db.prisma, { runId: run.id, tenantId: tenant.id, stage: "fetch", at: new Date() });
      const stored = await db.prisma.run.findUniqueOrThrow({ where: { id: run.id } });
      if (refusal) {
        expect(begun, JSON.stringify(c)).toEqual({ state: "refused", refusal });
        expect(stored).toMatchObject({ status: "PENDING", attempts: 0, fetchStartedAt: null });
      } else {
        expect(begun.state, JSON.stringify(c)).toBe("started");
        expect(stored).toMatchObject({ status: "FETCHING", attempts: 1 });
      }
    }
    // A skip decided just before the task was enabled again is not written: the job's retry claims the run.
    {
      const { tenant, task, run } = await seed();
      await db.prisma.task.update({ where: { id: task.id }, data: { enabled: false } });
      const begun = await beginStage(db.prisma, { runId: run.id, tenantId: tenant.id, stage: "fetch", at: new Date() });
      expect(begun.state).toBe("refused");
      await db.prisma.task.update({ where: { id: task.id }, data: { enabled: true } });
      if (begun.state === "refused") await expect(skipUnstartedRun(db.prisma, { runId: run.id, refusal: begun.refusal, at: new Date() })).rejects.toThrow(/may start after all/);
      expect(await db.prisma.run.findUniqueOrThrow({ where: { id: run.id } })).toMatchObject({ status: "PENDING" });
      expect((await beginStage(db.prisma, { runId: run.id, tenantId: tenant.id, stage: "fetch", at: new Date() })).state).toBe("started");
    }
    // A run under way is never refused: its fetch retried after the task was deleted goes on.
    const { tenant, task, run } = await seed();
    await db.prisma.run.update({ where: { id: run.id }, data: { status: "FETCHING", attempts: 1 } });
    await db.prisma.task.update({ where: { id: task.id }, data: { deletedAt: new Date() } });
    expect((await beginStage(db.prisma, { runId: run.id, tenantId: tenant.id, stage: "fetch", at: new Date() })).state).toBe("started");
  });

  it("claims a run for a stage and returns the run, task, destination kind and tenant as the model API reads them", async () => {
    const { tenant, task, run } = await seed();
    const at = new Date("2026-11-23T10:16:00.123Z");
    const begun = await beginStage(db.prisma, { runId: run.id, tenantId: tenant.id, stage: "transform", at });
    expect(begun.state).toBe("started");
    if (begun.state !== "started") return;
    const stored = await db.prisma.run.findUniqueOrThrow({ where: { id: run.id }, include: { task: { include: { destination: { select: { kind: true } } } }, tenant: true } });
    const { task: storedTask, tenant: storedTenant, ...storedRun } = stored;
    expect(begun.run).toStrictEqual(storedRun);
    expect(begun.task).toStrictEqual(storedTask);
    expect(begun.tenant).toStrictEqual(storedTenant);
    expect(begun.task.destination).toEqual({ kind: "s3" });
    expect(storedRun).toMatchObject({ status: "TRANSFORMING", transformStartedAt: at, attempts: 1, updatedAt: at });
    expect(storedTask.id).toBe(task.id);

    await beginStage(db.prisma, { runId: run.id, tenantId: tenant.id, stage: "transform", at });
    expect((await db.prisma.run.findUniqueOrThrow({ where: { id: run.id } })).attempts).toBe(2);

    // A run of a task deleted meanwhile still finishes; its task reads back with the deletion time.
    const deleted = await db.prisma.task.update({ where: { id: task.id }, data: { deletedAt: new Date("2026-11-23T10:16:30.789Z"), nextRunAt: null } });
    const again = await beginStage(db.prisma, { runId: run.id, tenantId: tenant.id, stage: "encrypt", at });
    expect(again.state === "started" && again.task).toStrictEqual({ ...deleted, destination: { kind: "s3" } });
  });

  it("leaves finished runs alone and does not find another tenant's run", async () => {
    const a = await seed();
    const b = await seed();
    const at = new Date();
    expect(await beginStage(db.prisma, { runId: a.run.id, tenantId: b.tenant.id, stage: "fetch", at })).toEqual({ state: "missing" });
    expect(await beginStage(db.prisma, { runId: crypto.randomUUID(), tenantId: a.tenant.id, stage: "fetch", at })).toEqual({ state: "missing" });
    for (const status of ["SUCCEEDED", "FAILED", "SKIPPED"] as const) {
      await db.prisma.run.update({ where: { id: a.run.id }, data: { status } });
      expect(await beginStage(db.prisma, { runId: a.run.id, tenantId: a.tenant.id, stage: "deliver", at })).toEqual({ state: "finished", status });
    }
    const untouched = await db.prisma.run.findUniqueOrThrow({ where: { id: a.run.id } });
    expect(untouched).toMatchObject({ attempts: 0, deliverStartedAt: null, fetchStartedAt: null });
  });

  it("never moves a run back: a stale job of an earlier stage leaves a run a later stage has", async () => {
    const { tenant, run } = await seed();
    const at = new Date("2026-11-23T10:16:00Z");
    for (const stage of ["fetch", "transform", "encrypt", "deliver"] as const) {
      expect((await beginStage(db.prisma, { runId: run.id, tenantId: tenant.id, stage, at })).state).toBe("started");
    }
    const delivering = await db.prisma.run.findUniqueOrThrow({ where: { id: run.id } });
    for (const stage of ["fetch", "transform", "encrypt"] as const) {
      expect(await beginStage(db.prisma, { runId: run.id, tenantId: tenant.id, stage, at: new Date() })).toEqual({ state: "passed", status: "DELIVERING" });
    }
    expect(await db.prisma.run.findUniqueOrThrow({ where: { id: run.id } })).toStrictEqual(delivering);
    // The stage that has it may claim it again (a retry, a stalled job run again).
    expect((await beginStage(db.prisma, { runId: run.id, tenantId: tenant.id, stage: "deliver", at })).state).toBe("started");
  });

  it("writes every stage field with its type, the finish time and the staging keys", async () => {
    const { run } = await seed();
    await db.prisma.run.update({ where: { id: run.id }, data: { status: "ENCRYPTING" } });
    const at = new Date("2026-11-23T10:17:00.5Z");
    const fields: Required<StageRunFields> = {
      records: 101, sourceCalls: 3, reportId: "messaging-conversations", reportVersion: 2, params: { skillIds: [7], "ünïcode": "✓" }, format: "csv", rows: 99, skippedRecords: 2, notes: ["a \"quoted\" note", "ünïcode ✓"],
      keyFingerprint: "ABCD", fileName: "report.csv.pgp", destinationPath: "x/report.csv.pgp", bytes: 9_007_199_254_740_993n,
      checksum: "f".repeat(64), fileExpiresAt: new Date("2026-12-23T00:00:00Z"), fileDeletedAt: null,
    };
    expect(await finishStage(db.prisma, { runId: run.id, stage: "encrypt", fields, staging: { raw: "r", report: "p" }, at })).toBe(true);
    const stored = await db.prisma.run.findUniqueOrThrow({ where: { id: run.id } });
    expect(stored).toMatchObject({ ...fields, encryptFinishedAt: at, staging: { raw: "r", report: "p" }, updatedAt: at, status: "ENCRYPTING" });

    // Absent fields keep their value.
    await db.prisma.run.update({ where: { id: run.id }, data: { status: "FETCHING" } });
    await finishStage(db.prisma, { runId: run.id, stage: "fetch", fields: { records: 5 }, staging: {}, at });
    expect(await db.prisma.run.findUniqueOrThrow({ where: { id: run.id } })).toMatchObject({ records: 5, rows: 99, notes: fields.notes, fetchFinishedAt: at });

    // Only while the stage has the run: a run failed meanwhile is left as it is.
    await db.prisma.run.update({ where: { id: run.id }, data: { status: "FAILED" } });
    expect(await finishStage(db.prisma, { runId: run.id, stage: "transform", fields: { rows: 1 }, staging: {}, at })).toBe(false);
    expect(await db.prisma.run.findUniqueOrThrow({ where: { id: run.id } })).toMatchObject({ status: "FAILED", rows: 99, transformFinishedAt: null });
  });

  it("refuses a field no stage writes", async () => {
    const { run } = await seed();
    const fields = { status: "SUCCEEDED" } as unknown as StageRunFields;
    await expect(finishStage(db.prisma, { runId: run.id, stage: "fetch", fields, staging: {}, at: new Date() })).rejects.toThrow(/"status" is not a field/);
  });

  it("marks a run succeeded and resolves its task's open failure alert only, in one statement", async () => {
    const a = await seed();
    const b = await seed();
    const key = `run.failed:${a.task.id}`;
    for (const t of [a, b]) {
      await raiseAlert(db.prisma, { tenantId: t.tenant.id, kind: "run.failed", severity: "error", title: "failed", message: "m", dedupeKey: key, taskId: t.task.id });
    }
    await raiseAlert(db.prisma, { tenantId: a.tenant.id, kind: "run.failed", severity: "error", title: "other", message: "m", dedupeKey: "run.failed:other", taskId: a.task.id });
    await db.prisma.run.update({ where: { id: a.run.id }, data: { status: "DELIVERING", error: "deliver attempt 1 of 3: timeout", errorCode: "timeout" } });

    const at = new Date("2026-11-23T10:20:00Z");
    expect(await completeRun(db.prisma, { runId: a.run.id, fields: { bytes: 123n, checksum: "c" }, staging: { encrypted: "e" }, resolveAlertKey: key, notify: true, at })).toBe(true);
    expect(await db.prisma.run.findUniqueOrThrow({ where: { id: a.run.id } })).toMatchObject({
      status: "SUCCEEDED", deliveredAt: at, finishedAt: at, bytes: 123n, checksum: "c", error: null, errorCode: null, staging: { encrypted: "e" },
      // The notification it owes, committed with the outcome.
      notificationDueAt: at,
    });
    const alerts = await db.prisma.alert.findMany({ where: { tenantId: { in: [a.tenant.id, b.tenant.id] } } });
    const state = (tenantId: string, dedupeKey: string) => alerts.find((x) => x.tenantId === tenantId && x.dedupeKey === dedupeKey)?.resolvedAt;
    expect(state(a.tenant.id, key)).toEqual(at);
    expect(state(a.tenant.id, "run.failed:other")).toBeNull();
    expect(state(b.tenant.id, key)).toBeNull();

    // A run that does not exist resolves nothing.
    await completeRun(db.prisma, { runId: crypto.randomUUID(), fields: {}, staging: {}, resolveAlertKey: "run.failed:other", notify: false, at });
    expect((await db.prisma.alert.findFirstOrThrow({ where: { tenantId: a.tenant.id, dedupeKey: "run.failed:other" } })).resolvedAt).toBeNull();
  });

  it("fails a stuck run of a deleted task with its reason and notification, but raises no alert, even when the delete commits while it waits", async () => {
    const pool = poolOf(db.prisma);
    const openAlerts = (taskId: string) => db.prisma.alert.count({ where: { taskId, resolvedAt: null } });
    const stuck = async (t: Awaited<ReturnType<typeof seed>>) =>
      db.prisma.run.update({ where: { id: t.run.id }, data: { status: "DELIVERING" }, select: { id: true, status: true, updatedAt: true } });
    const fail = (run: Awaited<ReturnType<typeof stuck>>) =>
      failStuckRun(pool, { runId: run.id, status: run.status, updatedAt: run.updatedAt, stage: "deliver", message: "the deliver job failed", errorCode: "job_failed", notify: true, at: new Date() });

    // A task still there: the failure raises its alert.
    const live = await seed();
    expect(await fail(await stuck(live))).toEqual({ tenantId: live.tenant.id, taskId: live.task.id });
    expect(await openAlerts(live.task.id)).toBe(1);

    // Deleted before: the run fails as any, with nothing left open that no success could resolve.
    const gone = await seed();
    const goneRun = await stuck(gone);
    await db.prisma.task.update({ where: { id: gone.task.id }, data: { deletedAt: new Date(), enabled: false } });
    expect(await fail(goneRun)).toEqual({ tenantId: gone.tenant.id, taskId: gone.task.id });
    const failed = await db.prisma.run.findUniqueOrThrow({ where: { id: goneRun.id } });
    expect(failed).toMatchObject({ status: "FAILED", error: "deliver: the deliver job failed", errorCode: "job_failed" });
    expect(failed.notificationDueAt).toEqual(failed.finishedAt);
    expect(await openAlerts(gone.task.id)).toBe(0);

    // Deleted meanwhile: the delete holds the task's row (FOR UPDATE, as the gateway's does) and has
    // resolved its alert, not yet committed. The failure waits for it and then sees the task deleted.
    const racing = await seed();
    const racingRun = await stuck(racing);
    const deleter = await pool.connect();
    try {
      await deleter.query("BEGIN");
      await deleter.query(`SELECT id FROM "Task" WHERE id = $1 FOR UPDATE`, [racing.task.id]);
      await deleter.query(`UPDATE "Task" SET "deletedAt" = now(), enabled = false WHERE id = $1`, [racing.task.id]);
      await deleter.query(`UPDATE "Alert" SET "resolvedAt" = now() WHERE "tenantId" = $1 AND "dedupeKey" = $2 AND "resolvedAt" IS NULL`, [racing.tenant.id, `run.failed:${racing.task.id}`]);
      let settled = false;
      const failing = fail(racingRun).finally(() => (settled = true));
      // Until the failure waits on a lock (or, were nothing to stop it, is done).
      for (const until = Date.now() + 10_000; !settled && Date.now() < until; ) {
        const { rows } = await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`);
        if (rows[0]!.n > 0) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      await deleter.query("COMMIT");
      expect(await failing).toEqual({ tenantId: racing.tenant.id, taskId: racing.task.id });
    } finally {
      deleter.release();
    }
    expect(await db.prisma.run.findUniqueOrThrow({ where: { id: racingRun.id } })).toMatchObject({ status: "FAILED", errorCode: "job_failed" });
    expect(await openAlerts(racing.task.id)).toBe(0);
  });

  it("reads a stage's source, destination and keys as the model API does, within the tenant and not deleted", async () => {
    const a = await seed();
    const b = await seed();
    expect(await liveSource(db.prisma, a.tenant.id, a.source.id)).toStrictEqual({ ...(await db.prisma.source.findUnique({ where: { id: a.source.id } })), accountOfAnotherTenant: false });
    expect(await liveDestination(db.prisma, a.tenant.id, a.destination.id)).toStrictEqual(await db.prisma.destination.findUnique({ where: { id: a.destination.id } }));
    expect(await activeEncryptionKey(db.prisma, a.tenant.id)).toStrictEqual(await db.prisma.encryptionKey.findUnique({ where: { id: a.key.id } }));
    expect(await encryptionKeyExists(db.prisma, a.key.id)).toBe(true);

    expect(await liveSource(db.prisma, b.tenant.id, a.source.id)).toBeNull();
    expect(await liveDestination(db.prisma, b.tenant.id, a.destination.id)).toBeNull();

    const deletedAt = new Date();
    await db.prisma.source.update({ where: { id: a.source.id }, data: { deletedAt } });
    await db.prisma.destination.update({ where: { id: a.destination.id }, data: { deletedAt } });
    await db.prisma.encryptionKey.update({ where: { id: a.key.id }, data: { deletedAt } });
    expect(await liveSource(db.prisma, a.tenant.id, a.source.id)).toBeNull();
    expect(await liveDestination(db.prisma, a.tenant.id, a.destination.id)).toBeNull();
    expect(await activeEncryptionKey(db.prisma, a.tenant.id)).toBeNull();
    expect(await encryptionKeyExists(db.prisma, a.key.id)).toBe(false);
    await db.prisma.encryptionKey.update({ where: { id: b.key.id }, data: { active: false } });
    expect(await activeEncryptionKey(db.prisma, b.tenant.id)).toBeNull();
  });
});

describe("the pool under the pipeline's SQL", () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => db.drop());

  it("outlives the server closing an idle connection before Prisma ever connected, and reports it", async () => {
    const reported: string[] = [];
    const prisma = createPrisma(db.url, { poolSize: 2, onIdleError: (error) => reported.push(error.message) });
    try {
      // The pipeline's hot path: plain SQL on the pool, no model call (Prisma has not connected).
      const read = () => beginStage(prisma, { runId: crypto.randomUUID(), tenantId: crypto.randomUUID(), stage: "fetch", at: new Date() });
      expect(await read()).toEqual({ state: "missing" });
      const pool = poolOf(prisma);
      expect(pool.idleCount).toBeGreaterThan(0);
      const admin = new pg.Client({ connectionString: db.url });
      await admin.connect();
      try {
        await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`);
      } finally {
        await admin.end();
      }
      for (let i = 0; i < 100 && reported.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 20));
      expect(reported[0]).toMatch(/terminating connection/);
      // A new connection serves the next query.
      expect(await read()).toEqual({ state: "missing" });
    } finally {
      await prisma.$disconnect();
    }
  });
});
