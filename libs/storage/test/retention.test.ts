import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import type { Db } from "@transporter/db";
import { createTestDatabase } from "@transporter/db/testing";
import type { TestDatabase } from "@transporter/db/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FsStagingStore, managedFileKey, stagingKey, sweepManagedFiles, sweepStaging } from "../src/index.js";
import type { StagingStore, SweepLogger } from "../src/index.js";

let db: TestDatabase;
let prisma: Db;
let root: string;
let tenantId: string;
let managedTaskId: string;
let s3TaskId: string;

const now = new Date("2026-11-23T06:00:00Z");
const DAY = 24 * 60 * 60 * 1000;

beforeAll(async () => {
  db = await createTestDatabase();
  prisma = db.prisma;
  root = await mkdtemp(path.join(tmpdir(), "retention-"));
  const tenant = await prisma.tenant.create({ data: { accountId: `acc-${randomUUID().slice(0, 8)}`, name: "Retention Co", timezone: "Europe/Paris" } });
  tenantId = tenant.id;
  const managed = await prisma.destination.create({ data: { tenantId, name: "Managed", kind: "managed", config: {} } });
  const s3 = await prisma.destination.create({ data: { tenantId, name: "Bucket", kind: "s3", config: { bucket: "b" } } });
  const task = (destinationId: string) => ({ tenantId, description: "Daily", reportId: "messaging", format: "csv", frequency: "daily" as const, time: "00:00", destinationId });
  managedTaskId = (await prisma.task.create({ data: task(managed.id) })).id;
  s3TaskId = (await prisma.task.create({ data: task(s3.id) })).id;
});

afterAll(async () => {
  await db?.drop();
  await rm(root, { recursive: true, force: true });
});

let windowOffset = 0;
async function createRun(data: Record<string, unknown> & { taskId?: string }) {
  windowOffset += 1;
  const windowStart = new Date(Date.UTC(2026, 0, 1) + windowOffset * DAY);
  return prisma.run.create({
    data: {
      tenantId,
      taskId: data.taskId ?? managedTaskId,
      windowStart,
      windowEnd: new Date(windowStart.getTime() + DAY),
      scheduledFor: windowStart,
      trigger: "schedule",
      ...data,
    },
  });
}

async function putFile(store: StagingStore, key: string): Promise<void> {
  await store.put(key, Readable.from([Buffer.from(`content of ${key}`)]));
}

function recordingLogger(): SweepLogger & { lines: Array<{ level: string; details: object; message: string }> } {
  const lines: Array<{ level: string; details: object; message: string }> = [];
  return {
    lines,
    info: (details, message) => lines.push({ level: "info", details, message }),
    warn: (details, message) => lines.push({ level: "warn", details, message }),
  };
}

describe("sweepManagedFiles", () => {
  it("removes expired files, marks their runs, keeps the rest, and a second sweep does nothing", async () => {
    const store = new FsStagingStore(path.join(root, "managed"));
    const expiredId = randomUUID();
    const expiredPath = managedFileKey({ tenantId, runId: expiredId }, "old.csv.pgp");
    await putFile(store, expiredPath);
    // What a delivery cut mid-write may leave in the run's folder.
    const strayPath = managedFileKey({ tenantId, runId: expiredId }, "old.csv.pgp.partial-1");
    await putFile(store, strayPath);
    const expired = await createRun({ id: expiredId, status: "SUCCEEDED", destinationPath: expiredPath, deliveredAt: new Date(now.getTime() - 30 * DAY), fileExpiresAt: new Date(now.getTime() - 2 * DAY) });

    const freshId = randomUUID();
    const freshPath = managedFileKey({ tenantId, runId: freshId }, "new.csv.pgp");
    await putFile(store, freshPath);
    const fresh = await createRun({ id: freshId, status: "SUCCEEDED", destinationPath: freshPath, deliveredAt: now, fileExpiresAt: new Date(now.getTime() + 28 * DAY) });

    // Delivered to S3 and SFTP by a task that has since moved to managed storage: those files
    // never had an expiry and are not in the managed store; the task's destination today says nothing.
    const movedS3 = await createRun({ status: "SUCCEEDED", destinationPath: "exports/moved.csv.pgp", deliveredAt: new Date(now.getTime() - 40 * DAY) });
    const movedSftp = await createRun({ status: "SUCCEEDED", destinationPath: "/home/acme/drop/moved.csv.pgp", deliveredAt: new Date(now.getTime() - 40 * DAY) });

    // An S3 delivery without an expiry: not ours to remove.
    const s3Run = await createRun({ taskId: s3TaskId, status: "SUCCEEDED", destinationPath: "exports/s3.csv.pgp", deliveredAt: new Date(now.getTime() - 60 * DAY) });

    // Already swept earlier, the file is gone: never looked at again.
    const swept = await createRun({ status: "SUCCEEDED", destinationPath: "tenants/x/runs/y/gone.pgp", fileExpiresAt: new Date(now.getTime() - 5 * DAY), fileDeletedAt: new Date(now.getTime() - 4 * DAY) });

    const logger = recordingLogger();
    const result = await sweepManagedFiles({ prisma, store, now, logger });
    expect(result.failed).toEqual([]);
    expect(result.removed.map((r) => r.runId)).toEqual([expired.id]);
    expect(await store.stat(expiredPath)).toBeNull();
    expect(await store.stat(strayPath)).toBeNull();
    expect(await store.stat(freshPath)).not.toBeNull();

    const after = await prisma.run.findMany({ where: { id: { in: [expired.id, fresh.id, movedS3.id, movedSftp.id, s3Run.id, swept.id] } } });
    const deletedAt = Object.fromEntries(after.map((r) => [r.id, r.fileDeletedAt?.toISOString() ?? null]));
    expect(deletedAt).toEqual({
      [expired.id]: now.toISOString(),
      [fresh.id]: null,
      [movedS3.id]: null,
      [movedSftp.id]: null,
      [s3Run.id]: null,
      [swept.id]: new Date(now.getTime() - 4 * DAY).toISOString(),
    });
    expect(logger.lines.filter((l) => l.message === "managed file removed by retention").map((l) => (l.details as { path: string }).path).sort()).toEqual([expiredPath]);

    const again = await sweepManagedFiles({ prisma, store, now });
    expect(again).toEqual({ removed: [], failed: [], resumeAfter: null });
  });

  it("marks a run whose file is already gone, and leaves a run whose delete fails for the next sweep", async () => {
    const base = new FsStagingStore(path.join(root, "managed-2"));
    const goneId = randomUUID();
    const gone = await createRun({ id: goneId, status: "SUCCEEDED", destinationPath: managedFileKey({ tenantId, runId: goneId }, "gone.pgp"), fileExpiresAt: new Date(now.getTime() - DAY) });
    const stuckId = randomUUID();
    const stuckPath = managedFileKey({ tenantId, runId: stuckId }, "stuck.pgp");
    await putFile(base, stuckPath);
    const stuck = await createRun({ id: stuckId, status: "SUCCEEDED", destinationPath: stuckPath, fileExpiresAt: new Date(now.getTime() - DAY) });

    const failing: StagingStore = {
      put: (k, b) => base.put(k, b),
      get: (k) => base.get(k),
      stat: (k) => base.stat(k),
      deletePrefix: (p) => base.deletePrefix(p),
      delete: async (k) => {
        if (k === stuckPath) throw new Error("store unavailable");
        return base.delete(k);
      },
    };
    const first = await sweepManagedFiles({ prisma, store: failing, now });
    expect(first.removed.map((r) => r.runId)).toEqual([gone.id]);
    expect(first.failed).toEqual([{ runId: stuck.id, tenantId, error: "store unavailable" }]);
    expect((await prisma.run.findUniqueOrThrow({ where: { id: stuck.id } })).fileDeletedAt).toBeNull();

    const second = await sweepManagedFiles({ prisma, store: base, now });
    expect(second.removed.map((r) => r.runId)).toEqual([stuck.id]);
    expect(await base.stat(stuckPath)).toBeNull();
  });
});

describe("sweepStaging", () => {
  it("removes the staging objects of runs finished before the retention, and only those", async () => {
    const staging = new FsStagingStore(path.join(root, "staging"));
    const runWithObjects = async (data: Record<string, unknown>) => {
      const id = randomUUID();
      const keys = { raw: stagingKey(tenantId, id, "raw", "records.ndjson"), report: stagingKey(tenantId, id, "report", "report.csv"), encrypted: stagingKey(tenantId, id, "encrypted", "report.csv.pgp") };
      for (const key of Object.values(keys)) await putFile(staging, key);
      const run = await createRun({ id, staging: keys, ...data });
      return { run, keys };
    };
    const oldSuccess = await runWithObjects({ status: "SUCCEEDED", finishedAt: new Date(now.getTime() - 48 * 60 * 60 * 1000) });
    const oldFailure = await runWithObjects({ status: "FAILED", finishedAt: new Date(now.getTime() - 25 * 60 * 60 * 1000) });
    const recent = await runWithObjects({ status: "SUCCEEDED", finishedAt: new Date(now.getTime() - 60 * 60 * 1000) });
    const running = await runWithObjects({ status: "DELIVERING" });
    // A key recorded outside the run's prefix (written by an older layout) goes too.
    const skippedId = randomUUID();
    const strayKey = `legacy/${skippedId}/records.ndjson`;
    await putFile(staging, strayKey);
    const skipped = await createRun({ id: skippedId, status: "SKIPPED", finishedAt: new Date(now.getTime() - 72 * 60 * 60 * 1000), staging: { raw: strayKey } });

    const result = await sweepStaging({ prisma, staging, now, retentionHours: 24 });
    expect(result.failed).toEqual([]);
    const byRun = Object.fromEntries(result.runs.map((r) => [r.runId, r.objects]));
    expect(byRun).toEqual({ [oldSuccess.run.id]: 3, [oldFailure.run.id]: 3, [skipped.id]: 1 });
    for (const key of [...Object.values(oldSuccess.keys), ...Object.values(oldFailure.keys), strayKey]) expect(await staging.stat(key)).toBeNull();
    for (const key of [...Object.values(recent.keys), ...Object.values(running.keys)]) expect(await staging.stat(key)).not.toBeNull();

    const marked = await prisma.run.findMany({ where: { stagingDeletedAt: { not: null } }, select: { id: true } });
    expect(marked.map((r) => r.id).sort()).toEqual([oldSuccess.run.id, oldFailure.run.id, skipped.id].sort());
    expect(await sweepStaging({ prisma, staging, now, retentionHours: 24 })).toEqual({ runs: [], failed: [], resumeAfter: null });
  });

  it("removes what a cut-off managed delivery left in the run's folder once the run has finished without a kept file", async () => {
    const staging = new FsStagingStore(path.join(root, "staging-2"));
    const managed = new FsStagingStore(path.join(root, "managed-2"));
    const oldFinish = new Date(now.getTime() - 48 * 60 * 60 * 1000);
    // A delivery killed mid-write leaves the store's temporary file (and whatever it wrote) behind.
    const leftover = async (runId: string) => {
      const key = managedFileKey({ tenantId, runId }, "report.csv.pgp");
      await putFile(managed, key);
      return key;
    };
    const failedId = randomUUID();
    const failedKey = await leftover(failedId);
    await createRun({ id: failedId, status: "FAILED", finishedAt: oldFinish, deliverStartedAt: oldFinish });
    // A run that delivered to managed storage keeps its file until its own expiry.
    const keptId = randomUUID();
    const keptKey = await leftover(keptId);
    await createRun({ id: keptId, status: "SUCCEEDED", finishedAt: oldFinish, deliverStartedAt: oldFinish, destinationPath: keptKey, fileExpiresAt: new Date(now.getTime() + DAY) });
    // A run still delivering is left alone.
    const deliveringId = randomUUID();
    const deliveringKey = await leftover(deliveringId);
    await createRun({ id: deliveringId, status: "DELIVERING", deliverStartedAt: oldFinish });

    const result = await sweepStaging({ prisma, staging, managed, now, retentionHours: 24 });
    expect(result.failed).toEqual([]);
    expect(await managed.stat(failedKey)).toBeNull();
    expect(await managed.stat(keptKey)).not.toBeNull();
    expect(await managed.stat(deliveringKey)).not.toBeNull();
  });
});
