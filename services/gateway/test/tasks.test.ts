import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { notificationAlertKey, raiseAlert } from "@transporter/db";
import { createStageWorker, JobProducer, PermanentError } from "@transporter/queue";
import { readyTenant, setupGateway, type TestGateway } from "./helpers.js";

async function until(check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe("tasks", () => {
  let gw: TestGateway;
  let clock = new Date("2026-11-23T12:00:00Z");
  beforeAll(async () => {
    gw = await setupGateway({ deps: { now: () => clock } });
  });
  afterAll(async () => gw.close());

  it("creates a task with its next run in the tenant's zone, and reads it back", async () => {
    const t = await readyTenant(gw);
    const res = await gw.call(t.adminKey, "POST", "/v1/tasks", t.body());
    expect(res.status).toBe(201);
    // Daily 00:00 New York (EST, UTC-5) + 6 h delay: the window ending 2026-11-24T05:00Z runs at 11:00Z.
    expect(res.body.nextRunAt).toBe("2026-11-24T11:00:00.000Z");
    expect(res.body.schedule).toEqual({ frequency: "daily", time: "00:00", dayOfWeek: null, everyMinutes: null, delayMinutes: 360 });
    const read = await gw.call(t.adminKey, "GET", `/v1/tasks/${res.body.id}`);
    expect(read.body).toEqual(res.body);
    const list = await gw.call(t.adminKey, "GET", "/v1/tasks?enabled=true&reportId=messaging-conversations");
    expect(list.body.items.map((i: { id: string }) => i.id)).toEqual([res.body.id]);
    expect((await gw.call(t.adminKey, "GET", "/v1/tasks?enabled=false")).body.items).toEqual([]);
  });

  it("names what is wrong: 400 for bad fields, 409 when the account is not ready", async () => {
    const t = await readyTenant(gw, { withKey: false });
    const other = await readyTenant(gw);
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ reportId: "no-such-report" }, "reportId"],
      [{ format: "pdf" }, "format"],
      [{ reportVersion: 99 }, "reportVersion"],
      [{ schedule: { frequency: "daily", time: "25:00" } }, "schedule.time"],
      [{ schedule: { frequency: "interval", everyMinutes: 7 } }, "schedule.everyMinutes"],
      [{ schedule: { frequency: "weekly", time: "08:00", dayOfWeek: 9 } }, "schedule.dayOfWeek"],
      [{ schedule: { frequency: "daily", time: "08:00", delayMinutes: 2000 } }, "schedule.delayMinutes"],
      // Data Access files are published up to 6 hours after the hour: a shorter delay would miss them.
      [{ reportId: "data-access-agent-activity", format: "ndjson", schedule: { frequency: "interval", everyMinutes: 60, delayMinutes: 120 } }, "schedule.delayMinutes"],
      [{ destinationId: other.destination.id }, "destinationId"],
      [{ sourceId: other.source.id }, "sourceId"],
      [{ options: { fileNamePattern: "reports/{start}" } }, "options.fileNamePattern"],
      [{ options: { fileNamePattern: "{date}" } }, "options.fileNamePattern"],
      [{ options: { fileNamePattern: "export" } }, "options.fileNamePattern"],
      [{ schedule: { frequency: "interval", everyMinutes: 60 }, options: { fileNamePattern: "export_{startDate}" } }, "options.fileNamePattern"],
    ];
    for (const [overrides, path] of cases) {
      const res = await gw.call(t.adminKey, "POST", "/v1/tasks", t.body({ ...overrides, enabled: false }));
      expect(res.status, JSON.stringify(overrides)).toBe(400);
      // The body schema and the task rules name a field alike: "body.<field>".
      expect(res.body.errors.map((e: { path: string }) => e.path), JSON.stringify(res.body)).toContain(`body.${path}`);
    }
    const noKey = await gw.call(t.adminKey, "POST", "/v1/tasks", t.body({ enabled: true }));
    expect(noKey.status).toBe(409);
    expect(noKey.body.detail).toMatch(/encryption/);
    const disabled = await gw.call(t.adminKey, "POST", "/v1/tasks", t.body({ enabled: false }));
    expect(disabled.status).toBe(201);
    expect(disabled.body.nextRunAt).toBeNull();
    expect((await gw.call(t.adminKey, "PATCH", `/v1/tasks/${disabled.body.id}`, { enabled: true })).status).toBe(409);
    const noPermission = await gw.call(t.adminKey, "POST", "/v1/tasks", t.body({ reportId: "admin-users", enabled: false }));
    expect(noPermission.status).toBe(409);
    expect(noPermission.body.detail).toContain("account-config-users");
  });

  it("disables a task whatever went wrong around it: a source that has since lost a permission", async () => {
    const t = await readyTenant(gw);
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) ids.push((await gw.call(t.adminKey, "POST", "/v1/tasks", t.body({ enabled: true }))).body.id);
    // Verifying the source again found the key no longer grants the report's API.
    await gw.prisma.source.update({ where: { id: t.source.id }, data: { permissions: ["engagement-history"] } });
    const edit = await gw.call(t.adminKey, "PATCH", `/v1/tasks/${ids[0]}`, { description: "still checked" });
    expect(edit.status).toBe(409);
    expect(edit.body.detail).toContain("messaging-interactions");
    const patched = await gw.call(t.adminKey, "PATCH", `/v1/tasks/${ids[0]}`, { enabled: false });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ enabled: false, nextRunAt: null });
    const bulk = await gw.call(t.adminKey, "POST", "/v1/tasks/bulk", { action: "disable", ids: [ids[1]] });
    expect(bulk.body.results).toEqual([{ id: ids[1], ok: true, status: 200 }]);
    expect((await gw.prisma.task.findMany({ where: { id: { in: ids } } })).map((task) => task.enabled)).toEqual([false, false]);
    // Enabling again is checked.
    expect((await gw.call(t.adminKey, "POST", "/v1/tasks/bulk", { action: "enable", ids })).body.results.map((r: { status: number }) => r.status)).toEqual([409, 409]);
  });

  it("keeps a file name pattern that suits the schedule, and checks it again when the schedule changes", async () => {
    const t = await readyTenant(gw);
    const created = await gw.call(t.adminKey, "POST", "/v1/tasks", t.body({ options: { fileNamePattern: "conversations_{startDate}", dateFolders: true } }));
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body.options).toEqual({ fileNamePattern: "conversations_{startDate}", dateFolders: true });
    // Several windows a day would share that name: refused, and the task is unchanged.
    const toInterval = await gw.call(t.adminKey, "PATCH", `/v1/tasks/${created.body.id}`, { schedule: { frequency: "interval", everyMinutes: 60 } });
    expect(toInterval.status).toBe(400);
    expect(toInterval.body.errors).toEqual([expect.objectContaining({ path: "body.options.fileNamePattern", message: expect.stringMatching(/\{startTime\}/) })]);
    expect((await gw.call(t.adminKey, "GET", `/v1/tasks/${created.body.id}`)).body.schedule.frequency).toBe("daily");
    const both = await gw.call(t.adminKey, "PATCH", `/v1/tasks/${created.body.id}`, { schedule: { frequency: "interval", everyMinutes: 60 }, options: { fileNamePattern: "conversations_{startDate}_{startTime}" } });
    expect(both.status, JSON.stringify(both.body)).toBe(200);
  });

  it("enforces the task limit atomically: concurrent creates at the limit never both succeed", async () => {
    const t = await readyTenant(gw, { taskLimit: 3 });
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => gw.call(t.adminKey, "POST", "/v1/tasks", t.body({ description: `task ${i}` }))));
    expect(results.filter((r) => r.status === 201)).toHaveLength(3);
    expect(results.filter((r) => r.status === 409)).toHaveLength(5);
    expect(await gw.prisma.task.count({ where: { tenantId: t.tenant.id } })).toBe(3);
    expect((await gw.call(t.adminKey, "GET", "/v1/account")).body.taskCount).toBe(3);
  });

  it("recomputes the next run from now when the schedule, the enabled flag or the time zone changes", async () => {
    const t = await readyTenant(gw, { timezone: "Europe/London" });
    const created = (await gw.call(t.adminKey, "POST", "/v1/tasks", t.body({ schedule: { frequency: "daily", time: "06:00" } }))).body;
    expect(created.nextRunAt).toBe("2026-11-24T06:00:00.000Z");
    const interval = await gw.call(t.adminKey, "PATCH", `/v1/tasks/${created.id}`, { schedule: { frequency: "interval", everyMinutes: 15 } });
    expect(interval.body.nextRunAt).toBe("2026-11-23T12:15:00.000Z");
    const off = await gw.call(t.adminKey, "PATCH", `/v1/tasks/${created.id}`, { enabled: false });
    expect(off.body.nextRunAt).toBeNull();
    clock = new Date("2026-11-23T12:20:00Z");
    const on = await gw.call(t.adminKey, "PATCH", `/v1/tasks/${created.id}`, { enabled: true });
    expect(on.body.nextRunAt).toBe("2026-11-23T12:30:00.000Z");
    await gw.call(t.adminKey, "PATCH", `/v1/tasks/${created.id}`, { schedule: { frequency: "daily", time: "06:00" } });
    await gw.call(t.adminKey, "PATCH", "/v1/account", { timezone: "Asia/Kathmandu" });
    // 06:00 in Kathmandu (UTC+05:45) is 00:15Z; the next one after 12:20Z is on the 24th.
    expect((await gw.call(t.adminKey, "GET", `/v1/tasks/${created.id}`)).body.nextRunAt).toBe("2026-11-24T00:15:00.000Z");
    clock = new Date("2026-11-23T12:00:00Z");
  });

  it("moves the account's time zone and its tasks' schedules in one step: nobody sees the new zone with old positions", async () => {
    const t = await readyTenant(gw);
    const ids: string[] = [];
    for (const time of ["00:00", "06:00"]) ids.push((await gw.call(t.adminKey, "POST", "/v1/tasks", t.body({ schedule: { frequency: "daily", time, delayMinutes: 0 } }))).body.id);
    const { default: pg } = await import("pg");
    const holder = new pg.Client({ connectionString: gw.db.url });
    const observer = new pg.Client({ connectionString: gw.db.url });
    await holder.connect();
    await observer.connect();
    try {
      // Another transaction (a scheduler tick claiming it) holds the task that sorts last.
      const last = [...ids].sort().at(-1)!;
      await holder.query("BEGIN");
      await holder.query(`SELECT id FROM "Task" WHERE id = $1 FOR UPDATE`, [last]);
      const change = gw.call(t.adminKey, "PATCH", "/v1/account", { timezone: "Asia/Tokyo" });
      await new Promise((resolve) => setTimeout(resolve, 500));
      // While the change waits for that task, the rest of the system still sees the old zone.
      const { rows } = await observer.query(`SELECT timezone FROM "Tenant" WHERE id = $1`, [t.tenant.id]);
      expect(rows[0].timezone).toBe("America/New_York");
      await holder.query("COMMIT");
      expect((await change).status).toBe(200);
      const after = await observer.query(`SELECT timezone FROM "Tenant" WHERE id = $1`, [t.tenant.id]);
      expect(after.rows[0].timezone).toBe("Asia/Tokyo");
      // Both tasks now run at their local times in Tokyo (00:00 and 06:00 JST are 15:00Z and 21:00Z).
      const tasks = await gw.prisma.task.findMany({ where: { id: { in: ids } }, select: { nextRunAt: true } });
      expect(tasks.map((task) => task.nextRunAt!.toISOString().slice(11, 16)).sort()).toEqual(["15:00", "21:00"]);
    } finally {
      await holder.end();
      await observer.end();
    }
  });

  /** Starts `requests` one after the other while another connection holds a row (the tenant's, or a task's), then lets them through. */
  async function whileRowHeld<T>(row: { table: "Tenant" | "Task"; id: string }, requests: Array<() => Promise<T>>): Promise<T[]> {
    const { default: pg } = await import("pg");
    const holder = new pg.Client({ connectionString: gw.db.url });
    await holder.connect();
    try {
      await holder.query("BEGIN");
      await holder.query(`SELECT id FROM "${row.table}" WHERE id = $1 FOR UPDATE`, [row.id]);
      const pending: Array<Promise<T>> = [];
      for (const request of requests) {
        pending.push(request());
        await new Promise((resolve) => setTimeout(resolve, 400));
      }
      await holder.query("COMMIT");
      return await Promise.all(pending);
    } finally {
      await holder.end();
    }
  }

  it("two time-zone changes at once apply one after the other: the tasks follow the zone the account ends with", async () => {
    const t = await readyTenant(gw);
    const task = (await gw.call(t.adminKey, "POST", "/v1/tasks", t.body({ schedule: { frequency: "daily", time: "00:00", delayMinutes: 0 } }))).body;
    const [toTokyo, back] = await whileRowHeld({ table: "Tenant", id: t.tenant.id }, [
      () => gw.call(t.adminKey, "PATCH", "/v1/account", { timezone: "Asia/Tokyo" }),
      () => gw.call(t.adminKey, "PATCH", "/v1/account", { timezone: "America/New_York" }),
    ]);
    expect([toTokyo!.status, back!.status]).toEqual([200, 200]);
    expect(back!.body.timezone).toBe("America/New_York");
    // Back in New York: midnight there, as when the task was created.
    expect((await gw.call(t.adminKey, "GET", `/v1/tasks/${task.id}`)).body.nextRunAt).toBe(task.nextRunAt);
    const audit = await gw.call(t.adminKey, "GET", `/v1/audit-events?targetId=${t.tenant.id}`);
    const changes = audit.body.items.filter((e: { action: string }) => e.action === "account.update").map((e: { before: { timezone: string }; after: { timezone: string } }) => [e.before.timezone, e.after.timezone]);
    expect(changes).toEqual([
      ["Asia/Tokyo", "America/New_York"],
      ["America/New_York", "Asia/Tokyo"],
    ]);
  });

  it("a task change and a run being queued for it at once do not deadlock", async () => {
    const t = await readyTenant(gw);
    const task = (await gw.call(t.adminKey, "POST", "/v1/tasks", t.body())).body;
    const { default: pg } = await import("pg");
    const runner = new pg.Client({ connectionString: gw.db.url });
    await runner.connect();
    try {
      // As run now and the scheduler tick do: lock the task, then insert its run (which needs the tenant row's key lock).
      await runner.query("BEGIN");
      await runner.query(`SELECT id FROM "Task" WHERE id = $1 FOR UPDATE`, [task.id]);
      const change = gw.call(t.adminKey, "PATCH", `/v1/tasks/${task.id}`, { description: "renamed while a run is queued" });
      await new Promise((resolve) => setTimeout(resolve, 400));
      await runner.query(
        `INSERT INTO "Run" (id, "tenantId", "taskId", "windowStart", "windowEnd", "scheduledFor", trigger, status, "updatedAt")
         VALUES (gen_random_uuid(), $1, $2, now() - interval '1 day', now(), now(), 'manual', 'PENDING', now())`,
        [t.tenant.id, task.id],
      );
      await runner.query("COMMIT");
      const changed = await change;
      expect(changed.status, JSON.stringify(changed.body)).toBe(200);
      expect(changed.body.description).toBe("renamed while a run is queued");
    } finally {
      await runner.end();
    }
  });

  it("a task enabled while its destination or source is deleted: one of the two is refused", async () => {
    for (const what of ["destination", "source"] as const) {
      const t = await readyTenant(gw);
      const task = (await gw.call(t.adminKey, "POST", "/v1/tasks", t.body({ enabled: false }))).body;
      const target = what === "destination" ? `/v1/destinations/${t.destination.id}` : `/v1/sources/${t.source.id}`;
      // The enable has passed its checks and waits to write the task (held, as a scheduler tick may hold it).
      const [enabled, deleted] = await whileRowHeld({ table: "Task", id: task.id }, [
        () => gw.call(t.adminKey, "PATCH", `/v1/tasks/${task.id}`, { enabled: true }),
        () => gw.call(t.adminKey, "DELETE", target),
      ]);
      expect(enabled!.status).toBe(200);
      expect(deleted!.status).toBe(409);
      const row = what === "destination" ? await gw.prisma.destination.findUniqueOrThrow({ where: { id: t.destination.id } }) : await gw.prisma.source.findUniqueOrThrow({ where: { id: t.source.id } });
      expect(row.deletedAt).toBeNull();
    }
  });

  it("run now and retry racing the task's deletion: the deletion goes first, nothing is queued", async () => {
    const t = await readyTenant(gw);
    for (const ask of ["run now", "retry"] as const) {
      const task = (await gw.call(t.adminKey, "POST", "/v1/tasks", t.body({ enabled: false, description: `racing ${ask}` }))).body;
      const failed = await gw.prisma.run.create({
        data: { tenantId: t.tenant.id, taskId: task.id, windowStart: new Date("2026-11-20T05:00:00Z"), windowEnd: new Date("2026-11-21T05:00:00Z"), scheduledFor: new Date(), trigger: "manual", status: "FAILED" },
      });
      // Both passed their first look at the task; the DELETE gets the task's row first.
      const [deleted, asked] = await whileRowHeld({ table: "Task", id: task.id }, [
        () => gw.call(t.adminKey, "DELETE", `/v1/tasks/${task.id}`),
        () => (ask === "run now" ? gw.call(t.adminKey, "POST", `/v1/tasks/${task.id}/runs`, {}) : gw.call(t.adminKey, "POST", `/v1/runs/${failed.id}/retry`)),
      ]);
      expect(deleted!.status).toBe(204);
      expect(asked!.status, `${ask}: ${JSON.stringify(asked!.body)}`).toBe(ask === "run now" ? 404 : 409);
      expect(await gw.prisma.run.count({ where: { taskId: task.id } }), ask).toBe(1);
    }
  });

  it("bulk: a task named twice in one request (its id in upper and lower case) gets one result", async () => {
    const t = await readyTenant(gw);
    const task = (await gw.call(t.adminKey, "POST", "/v1/tasks", t.body({ enabled: false, description: "named twice" }))).body;
    const res = await gw.call(t.adminKey, "POST", "/v1/tasks/bulk", { action: "delete", ids: [task.id.toUpperCase(), task.id] });
    expect(res.body.results).toEqual([{ id: task.id.toUpperCase(), ok: true, status: 200 }]);
    expect((await gw.prisma.task.findUniqueOrThrow({ where: { id: task.id } })).deletedAt).not.toBeNull();
  });

  it("refuses run now and retry of a disabled task whose destination or source was deleted, instead of a run bound to fail", async () => {
    const t = await readyTenant(gw);
    const task = (await gw.call(t.adminKey, "POST", "/v1/tasks", t.body({ enabled: false }))).body;
    const failed = await gw.prisma.run.create({
      data: { tenantId: t.tenant.id, taskId: task.id, windowStart: new Date("2026-11-20T05:00:00Z"), windowEnd: new Date("2026-11-21T05:00:00Z"), scheduledFor: new Date(), trigger: "manual", status: "FAILED" },
    });
    expect((await gw.call(t.adminKey, "DELETE", `/v1/destinations/${t.destination.id}`)).status).toBe(204);
    const runNow = await gw.call(t.adminKey, "POST", `/v1/tasks/${task.id}/runs`, {});
    expect(runNow.status).toBe(409);
    expect(runNow.body.detail).toMatch(/destination was deleted/);
    const retry = await gw.call(t.adminKey, "POST", `/v1/runs/${failed.id}/retry`);
    expect(retry.status).toBe(409);
    expect(await gw.prisma.run.count({ where: { taskId: task.id } })).toBe(1);
  });

  it("refuses to enable or run a task while the active key has expired, saying how to fix it", async () => {
    const t = await readyTenant(gw);
    const task = (await gw.call(t.adminKey, "POST", "/v1/tasks", t.body({ enabled: false }))).body;
    await gw.prisma.encryptionKey.updateMany({ where: { tenantId: t.tenant.id }, data: { expiresAt: new Date(clock.getTime() - 60_000) } });
    const enable = await gw.call(t.adminKey, "PATCH", `/v1/tasks/${task.id}`, { enabled: true });
    expect(enable.status).toBe(409);
    expect(enable.body.detail).toMatch(/expired on .*upload it again with a new expiry/);
    const runNow = await gw.call(t.adminKey, "POST", `/v1/tasks/${task.id}/runs`, {});
    expect(runNow.status).toBe(409);
    expect(runNow.body.detail).toMatch(/expired/);
    // An enabled task can still be edited meanwhile (renamed, pointed elsewhere): only enabling is refused.
    await gw.prisma.task.update({ where: { id: task.id }, data: { enabled: true } });
    expect((await gw.call(t.adminKey, "PATCH", `/v1/tasks/${task.id}`, { description: "renamed" })).status).toBe(200);
  });

  it("a task saved under an older rule (a Data Access delay under 6 hours) can still be edited, but not given a too-short schedule", async () => {
    const t = await readyTenant(gw);
    await gw.prisma.source.update({ where: { id: t.source.id }, data: { permissions: ["data-access-agent-activity"] } });
    const task = (await gw.call(t.adminKey, "POST", "/v1/tasks", t.body({ reportId: "data-access-agent-activity", format: "ndjson", schedule: { frequency: "daily", time: "00:00", delayMinutes: 360 } }))).body;
    expect(task.id).toBeDefined();
    await gw.prisma.task.update({ where: { id: task.id }, data: { delayMinutes: 60 } });
    expect((await gw.call(t.adminKey, "PATCH", `/v1/tasks/${task.id}`, { description: "renamed" })).status).toBe(200);
    const shorter = await gw.call(t.adminKey, "PATCH", `/v1/tasks/${task.id}`, { schedule: { frequency: "daily", time: "01:00", delayMinutes: 60 } });
    expect(shorter.status).toBe(400);
    // Enabling it again applies today's rules.
    await gw.call(t.adminKey, "PATCH", `/v1/tasks/${task.id}`, { enabled: false });
    expect((await gw.call(t.adminKey, "PATCH", `/v1/tasks/${task.id}`, { enabled: true })).status).toBe(400);
    const bulk = await gw.call(t.adminKey, "POST", "/v1/tasks/bulk", { action: "enable", ids: [task.id] });
    expect(bulk.body.results[0]).toMatchObject({ ok: false, status: 400 });
  });

  it("a change waiting for the tenant's lock sees a disable that went first: enabling with an expired key is still refused", async () => {
    const t = await readyTenant(gw);
    const task = (await gw.call(t.adminKey, "POST", "/v1/tasks", t.body())).body;
    await gw.prisma.encryptionKey.updateMany({ where: { tenantId: t.tenant.id }, data: { expiresAt: new Date(clock.getTime() - 60_000) } });
    const [change, disable] = await whileRowHeld({ table: "Tenant", id: t.tenant.id }, [
      () => gw.call(t.adminKey, "PATCH", `/v1/tasks/${task.id}`, { enabled: true, description: "x" }),
      () => gw.call(t.adminKey, "PATCH", `/v1/tasks/${task.id}`, { enabled: false }),
    ]);
    expect(disable!.status).toBe(200);
    expect(change!.status).toBe(409);
    expect((await gw.prisma.task.findUniqueOrThrow({ where: { id: task.id } })).enabled).toBe(false);
  });

  it("a run's history shows the report, params and format it ran with, not what the task was changed to", async () => {
    const t = await readyTenant(gw);
    const task = (await gw.call(t.adminKey, "POST", "/v1/tasks", t.body({ enabled: false, description: "changed later" }))).body;
    const run = (await gw.call(t.adminKey, "POST", `/v1/tasks/${task.id}/runs`, {})).body;
    // As the stages record it: fetched messaging-conversations v2 with its transcript, wrote CSV.
    await gw.prisma.run.update({ where: { id: run.id }, data: { status: "SUCCEEDED", reportId: "messaging-conversations", reportVersion: 2, params: { includeTranscript: true }, format: "csv", fileName: "changed-later.csv.pgp" } });
    expect((await gw.call(t.adminKey, "PATCH", `/v1/tasks/${task.id}`, { reportId: "messaging-messages", format: "json", params: {} })).status).toBe(200);
    const seen = (await gw.call(t.adminKey, "GET", `/v1/runs/${run.id}`)).body;
    expect(seen).toMatchObject({ reportId: "messaging-conversations", reportVersion: 2, params: { includeTranscript: true }, format: "csv", fileName: "changed-later.csv.pgp" });
  });

  it("bulk actions report a result per id; deleting keeps the task's run history", async () => {
    const t = await readyTenant(gw);
    const a = (await gw.call(t.adminKey, "POST", "/v1/tasks", t.body({ description: "a", enabled: false }))).body;
    const b = (await gw.call(t.adminKey, "POST", "/v1/tasks", t.body({ description: "b", enabled: false }))).body;
    const missing = "6a1c2a3e-0000-4000-8000-000000000000";
    const enable = await gw.call(t.adminKey, "POST", "/v1/tasks/bulk", { action: "enable", ids: [a.id, b.id, missing] });
    expect(enable.body.results).toEqual([
      { id: a.id, ok: true, status: 200 },
      { id: b.id, ok: true, status: 200 },
      { id: missing, ok: false, status: 404, error: "task does not exist" },
    ]);
    const run = (await gw.call(t.adminKey, "POST", `/v1/tasks/${a.id}/runs`, {})).body;
    const del = await gw.call(t.adminKey, "POST", "/v1/tasks/bulk", { action: "delete", ids: [a.id] });
    expect(del.body.results[0].ok).toBe(true);
    expect((await gw.call(t.adminKey, "GET", `/v1/tasks/${a.id}`)).status).toBe(404);
    const history = await gw.call(t.adminKey, "GET", `/v1/runs/${run.id}`);
    expect(history.status).toBe(200);
    expect(history.body.taskDeleted).toBe(true);
    // Not run yet: the task's report and format, as it would run them.
    expect(history.body).toMatchObject({ reportId: "messaging-conversations", format: "csv" });
    const audit = await gw.call(t.adminKey, "GET", `/v1/audit-events?targetId=${a.id}`);
    expect(audit.body.items.map((e: { action: string }) => e.action)).toEqual(["task.delete", "task.enable", "task.create"]);
    // A deleted task's failure alert goes with it: no later success could ever resolve it.
    await gw.prisma.alert.create({ data: { tenantId: t.tenant.id, kind: "run.failed", severity: "error", title: "failed", message: "m", dedupeKey: `run.failed:${b.id}`, taskId: b.id } });
    await gw.call(t.adminKey, "DELETE", `/v1/tasks/${b.id}`);
    expect((await gw.prisma.alert.findFirstOrThrow({ where: { dedupeKey: `run.failed:${b.id}` } })).resolvedAt).not.toBeNull();
  });

  it("run now takes the latest complete window; a given window is checked; retries keep history", async () => {
    const t = await readyTenant(gw);
    const task = (await gw.call(t.adminKey, "POST", "/v1/tasks", t.body())).body;
    const now = await gw.call(t.adminKey, "POST", `/v1/tasks/${task.id}/runs`, {});
    expect(now.status).toBe(202);
    // 12:00Z is 07:00 in New York: the latest complete daily window is 22 Nov 00:00 – 23 Nov 00:00 local.
    expect(now.body).toMatchObject({ windowStart: "2026-11-22T05:00:00.000Z", windowEnd: "2026-11-23T05:00:00.000Z", trigger: "manual", status: "PENDING" });
    const job = await gw.app.deps.queues.queue("fetch").getJob(`${now.body.id}-fetch`);
    expect(job?.data).toMatchObject({ runId: now.body.id, tenantId: t.tenant.id });
    const given = await gw.call(t.adminKey, "POST", `/v1/tasks/${task.id}/runs`, { windowStart: "2026-11-01T00:00:00-04:00", windowEnd: "2026-11-02T00:00:00-05:00" });
    expect(given.status).toBe(202);
    expect(given.body.windowStart).toBe("2026-11-01T04:00:00.000Z");
    for (const body of [
      { windowStart: "2026-11-02T00:00:00Z", windowEnd: "2026-11-01T00:00:00Z" },
      { windowStart: "2026-11-23T00:00:00Z", windowEnd: "2026-11-24T00:00:00Z" },
      { windowStart: "2026-11-01T00:00:00Z" },
      { windowStart: "2026-01-01T00:00:00Z", windowEnd: "2026-11-01T00:00:00Z" },
    ]) {
      expect((await gw.call(t.adminKey, "POST", `/v1/tasks/${task.id}/runs`, body)).status, JSON.stringify(body)).toBe(400);
    }
    expect((await gw.call(t.adminKey, "POST", `/v1/runs/${now.body.id}/retry`)).status).toBe(409);
    await gw.prisma.run.update({ where: { id: now.body.id }, data: { status: "FAILED", error: "deliver: connection reset" } });
    const retry = await gw.call(t.adminKey, "POST", `/v1/runs/${now.body.id}/retry`);
    expect(retry.status).toBe(202);
    expect(retry.body).toMatchObject({ trigger: "retry", retryOfId: now.body.id, windowStart: now.body.windowStart, windowEnd: now.body.windowEnd });
    const history = await gw.call(t.adminKey, "GET", `/v1/runs?taskId=${task.id}`);
    expect(history.body.items.map((r: { id: string }) => r.id)).toEqual([retry.body.id, given.body.id, now.body.id]);
    expect((await gw.call(t.adminKey, "GET", `/v1/runs?taskId=${task.id}&status=FAILED`)).body.items).toHaveLength(1);
    const windowFilter = await gw.call(t.adminKey, "GET", `/v1/runs?taskId=${task.id}&from=2026-11-01T00:00:00Z&to=2026-11-10T00:00:00Z`);
    expect(windowFilter.body.items.map((r: { id: string }) => r.id)).toEqual([given.body.id]);
  });

  it("run now waits for the task's delay, and a window has one run under way at a time", async () => {
    const t = await readyTenant(gw);
    // Daily at 00:00 New York with an 8-hour delay: at 12:00Z (07:00 local) the window that ended
    // at 05:00Z is complete only at 13:00Z, so "now" is the one before it (the scheduler's too).
    const task = (await gw.call(t.adminKey, "POST", "/v1/tasks", t.body({ schedule: { frequency: "daily", time: "00:00", delayMinutes: 480 } }))).body;
    const both = await Promise.all([1, 2].map(() => gw.call(t.adminKey, "POST", `/v1/tasks/${task.id}/runs`, {})));
    expect(both.map((r) => r.status).sort()).toEqual([202, 409]);
    const first = both.find((r) => r.status === 202)!.body;
    const second = both.find((r) => r.status === 409)!.body;
    expect(first).toMatchObject({ windowStart: "2026-11-21T05:00:00.000Z", windowEnd: "2026-11-22T05:00:00.000Z" });
    expect(second).toMatchObject({ runId: first.id });
    expect(second.detail).toContain("under way");
    const early = await gw.call(t.adminKey, "POST", `/v1/tasks/${task.id}/runs`, { windowStart: "2026-11-22T05:00:00Z", windowEnd: "2026-11-23T05:00:00Z" });
    expect(early.status).toBe(409);
    expect(early.body).toMatchObject({ completeAt: "2026-11-23T13:00:00.000Z" });
    // Once the run has failed, one retry goes ahead and a second click finds it under way.
    await gw.prisma.run.update({ where: { id: first.id }, data: { status: "FAILED", error: "deliver: connection reset" } });
    const retries = await Promise.all([1, 2].map(() => gw.call(t.adminKey, "POST", `/v1/runs/${first.id}/retry`)));
    expect(retries.map((r) => r.status).sort()).toEqual([202, 409]);
    expect(await gw.prisma.run.count({ where: { taskId: task.id } })).toBe(2);
    // A finished run does not hold its window: once the retry succeeded, the window can run again.
    await gw.prisma.run.updateMany({ where: { retryOfId: first.id }, data: { status: "SUCCEEDED" } });
    expect((await gw.call(t.adminKey, "POST", `/v1/tasks/${task.id}/runs`, {})).status).toBe(202);
  });

  it("does not retry the entry a long outage left as one span: it names the span and the way to ask for its windows", async () => {
    const t = await readyTenant(gw);
    const task = (await gw.call(t.adminKey, "POST", "/v1/tasks", t.body())).body;
    // What the scheduler records beyond its catch-up limit: one SKIPPED row for the whole gap.
    const span = await gw.prisma.run.create({
      data: {
        tenantId: t.tenant.id, taskId: task.id, windowStart: new Date("2025-11-20T05:00:00Z"), windowEnd: new Date("2026-11-05T05:00:00Z"), scheduledFor: clock,
        trigger: "schedule", status: "SKIPPED", errorCode: "catch_up_limit", error: "the scheduler was down", finishedAt: clock,
      },
    });
    const refused = await gw.call(t.adminKey, "POST", `/v1/runs/${span.id}/retry`);
    expect(refused.status).toBe(409);
    expect(refused.body.detail).toContain("350 days");
    expect(refused.body.detail).toContain(`/v1/tasks/${task.id}/runs`);
    expect(await gw.prisma.run.count({ where: { retryOfId: span.id } })).toBe(0);
    // A skipped window of the schedule's own length is retried as usual.
    const day = await gw.prisma.run.create({
      data: {
        tenantId: t.tenant.id, taskId: task.id, windowStart: new Date("2026-11-05T05:00:00Z"), windowEnd: new Date("2026-11-06T05:00:00Z"), scheduledFor: clock,
        trigger: "schedule", status: "SKIPPED", errorCode: "catch_up_limit", finishedAt: clock,
      },
    });
    expect((await gw.call(t.adminKey, "POST", `/v1/runs/${day.id}/retry`)).status).toBe(202);
  });

  it("downloads a managed file until it expires, then answers 410 with the expiry date", async () => {
    const t = await readyTenant(gw);
    const task = (await gw.call(t.adminKey, "POST", `/v1/tasks`, t.body())).body;
    const run = (await gw.call(t.adminKey, "POST", `/v1/tasks/${task.id}/runs`, {})).body;
    const store = gw.app.deps.managedStore!;
    const path = `tenants/${t.tenant.id}/runs/${run.id}/report.csv.pgp`;
    await store.put(path, (await import("node:stream")).Readable.from([Buffer.from("encrypted-bytes")]));
    await gw.prisma.run.update({ where: { id: run.id }, data: { status: "SUCCEEDED", destinationPath: path, fileName: "report.csv.pgp", fileExpiresAt: new Date("2026-12-21T00:00:00Z") } });
    const file = await gw.app.inject({ url: `/v1/runs/${run.id}/file`, headers: { authorization: `Bearer ${t.adminKey}` } });
    expect(file.statusCode).toBe(200);
    expect(file.body).toBe("encrypted-bytes");
    expect(file.headers["content-disposition"]).toContain("report.csv.pgp");
    clock = new Date("2026-12-22T00:00:00Z");
    const gone = await gw.call(t.adminKey, "GET", `/v1/runs/${run.id}/file`);
    clock = new Date("2026-11-23T12:00:00Z");
    expect(gone.status).toBe(410);
    expect(gone.body.expiredAt).toBe("2026-12-21T00:00:00.000Z");
  });

  it("a managed file missing before its expiry is the platform's fault (500, logged with the run), not 410 with an expiry still to come", async () => {
    const t = await readyTenant(gw);
    const task = (await gw.call(t.adminKey, "POST", `/v1/tasks`, t.body())).body;
    const run = (await gw.call(t.adminKey, "POST", `/v1/tasks/${task.id}/runs`, {})).body;
    // Delivered to managed storage and recorded, and then lost from it well before its expiry.
    const path = `tenants/${t.tenant.id}/runs/${run.id}/report.csv.pgp`;
    await gw.prisma.run.update({ where: { id: run.id }, data: { status: "SUCCEEDED", destinationPath: path, fileName: "report.csv.pgp", fileExpiresAt: new Date("2026-12-21T00:00:00Z") } });
    const lost = await gw.call(t.adminKey, "GET", `/v1/runs/${run.id}/file`);
    expect(lost.status).toBe(500);
    expect(lost.body.detail).toContain("the file is missing from managed storage before its expiry (2026-12-21T00:00:00.000Z)");
    expect(lost.body.expiredAt).toBeUndefined();
    const decrypt = await gw.call(t.adminKey, "POST", `/v1/runs/${run.id}/file/decrypt`, { privateKey: "not read: the file is missing", passphrase: "x" });
    expect(decrypt.status).toBe(500);
    const logged = gw.logs.flatMap((chunk) => chunk.split("\n").filter(Boolean)).map((line) => JSON.parse(line) as { level: number; runId?: string; msg: string }).filter((l) => l.runId === run.id && l.msg.includes("missing from managed storage before its expiry"));
    expect(logged).toHaveLength(2);
    expect(logged.every((l) => l.level === 50)).toBe(true);

    // Removed by retention between the run's read and the store's (its expiry came meanwhile): gone, as ever.
    const store = gw.app.deps.managedStore!;
    const stat = store.stat.bind(store);
    store.stat = async () => {
      clock = new Date("2026-12-22T00:00:00Z");
      await gw.prisma.run.update({ where: { id: run.id }, data: { fileDeletedAt: clock } });
      return null;
    };
    try {
      const gone = await gw.call(t.adminKey, "GET", `/v1/runs/${run.id}/file`);
      expect(gone.status).toBe(410);
      expect(gone.body.expiredAt).toBe("2026-12-21T00:00:00.000Z");
    } finally {
      store.stat = stat;
      clock = new Date("2026-11-23T12:00:00Z");
    }
    // And once its expiry has passed, 410 with the date without looking in the store.
    clock = new Date("2026-12-22T00:00:00Z");
    const after = await gw.call(t.adminKey, "GET", `/v1/runs/${run.id}/file`);
    clock = new Date("2026-11-23T12:00:00Z");
    expect(after.status).toBe(410);
    expect(after.body.expiredAt).toBe("2026-12-21T00:00:00.000Z");
  });

  it("never serves another tenant's managed file through a run that went to the tenant's own storage", async () => {
    const { Readable } = await import("node:stream");
    const store = gw.app.deps.managedStore!;
    // Tenant B's managed file.
    const b = await readyTenant(gw);
    const bTask = (await gw.call(b.adminKey, "POST", `/v1/tasks`, b.body())).body;
    const bRun = (await gw.call(b.adminKey, "POST", `/v1/tasks/${bTask.id}/runs`, {})).body;
    const victimPath = `tenants/${b.tenant.id}/runs/${bRun.id}/report.csv.pgp`;
    await store.put(victimPath, Readable.from([Buffer.from("tenant B's ciphertext")]));
    await gw.prisma.run.update({ where: { id: bRun.id }, data: { status: "SUCCEEDED", destinationPath: victimPath, fileName: "report.csv.pgp", fileExpiresAt: new Date("2026-12-21T00:00:00Z") } });
    // Tenant A's run went to its own S3 bucket with a prefix chosen to record B's managed key as
    // its path (or its own SFTP server answered realpath with it); then A's task moves to managed.
    const a = await readyTenant(gw);
    const aTask = (await gw.call(a.adminKey, "POST", `/v1/tasks`, a.body())).body;
    const aRun = (await gw.call(a.adminKey, "POST", `/v1/tasks/${aTask.id}/runs`, {})).body;
    await gw.prisma.run.update({ where: { id: aRun.id }, data: { status: "SUCCEEDED", destinationPath: victimPath, fileName: "report.csv.pgp", fileExpiresAt: null } });
    const aTaskRow = await gw.prisma.task.findUniqueOrThrow({ where: { id: aTask.id }, include: { destination: true } });
    expect(aTaskRow.destination.kind).toBe("managed");
    const file = await gw.call(a.adminKey, "GET", `/v1/runs/${aRun.id}/file`);
    expect(file.status).toBe(404);
    expect(JSON.stringify(file.body)).not.toContain("tenant B");
    const decrypt = await gw.call(a.adminKey, "POST", `/v1/runs/${aRun.id}/file/decrypt`, { privateKey: "not a key: the route refuses before reading it", passphrase: "x" });
    expect(decrypt.status).toBe(404);
    // B still downloads its own file.
    expect((await gw.app.inject({ url: `/v1/runs/${bRun.id}/file`, headers: { authorization: `Bearer ${b.adminKey}` } })).body).toBe("tenant B's ciphertext");
  });

  it("keeps notification settings, never returns the webhook secret, and checks email templates", async () => {
    const t = await readyTenant(gw);
    const secret = "whsec-0123456789abcdef-secret";
    const created = await gw.call(t.adminKey, "POST", "/v1/tasks", t.body({
      notifications: { webhookUrl: "https://hooks.example.com/transporter", webhookSecret: secret, emails: ["ops@example.com"], on: "always", emailSubject: "{{task}} {{status}}" },
    }));
    expect(created.status).toBe(201);
    expect(created.body.notifications).toEqual({ webhookUrl: "https://hooks.example.com/transporter", emails: ["ops@example.com"], on: "always", emailSubject: "{{task}} {{status}}", webhookSecretSet: true });
    expect(JSON.stringify((await gw.call(t.adminKey, "GET", `/v1/tasks/${created.body.id}`)).body)).not.toContain(secret);
    const row = await gw.prisma.task.findUniqueOrThrow({ where: { id: created.body.id } });
    expect(row.sealedWebhookSecret).not.toContain(secret);
    expect(JSON.stringify(await gw.prisma.auditEvent.findMany({ where: { targetId: created.body.id } }))).not.toContain(secret);
    const badTemplate = await gw.call(t.adminKey, "POST", "/v1/tasks", t.body({ notifications: { emails: ["ops@example.com"], emailSubject: "{{nonsense}}" } }));
    expect(badTemplate.status).toBe(400);
    expect(badTemplate.body.errors[0].path).toContain("emailSubject");
  });

  it("lists alerts and acknowledges one", async () => {
    const t = await readyTenant(gw);
    const alerts = await gw.call(t.adminKey, "GET", "/v1/alerts?state=open");
    expect(alerts.status).toBe(200);
    // Rows were inserted behind the API's back; the reminders still reflect creation time.
    const first = alerts.body.items[0];
    const ack = await gw.call(t.adminKey, "POST", `/v1/alerts/${first.id}/ack`);
    expect(ack.body.state).toBe("acknowledged");
    expect((await gw.call(t.adminKey, "GET", "/v1/alerts?state=acknowledged")).body.items.map((a: { id: string }) => a.id)).toEqual([first.id]);
  });

  it("acknowledges an alert once: a second ack, after or at the same time, keeps who acknowledged it and is not audited again", async () => {
    const t = await readyTenant(gw);
    const other = await gw.call(t.adminKey, "POST", "/v1/api-keys", { name: "second admin", role: "admin" });
    expect(other.status).toBe(201);
    const firstKeyId = (await gw.prisma.apiKey.findFirstOrThrow({ where: { tenantId: t.tenant.id, id: { not: other.body.id } } })).id;
    const alert = (title: string) => gw.prisma.alert.create({ data: { tenantId: t.tenant.id, kind: "run.failed", severity: "error", title, message: "m", dedupeKey: `ack-twice:${title}` } });
    const audited = (id: string) => gw.prisma.auditEvent.findMany({ where: { action: "alert.ack", targetId: id } });

    // One after the other, by two admins.
    const sequential = await alert("sequential");
    const ack = await gw.call(t.adminKey, "POST", `/v1/alerts/${sequential.id}/ack`);
    const again = await gw.call(other.body.key, "POST", `/v1/alerts/${sequential.id}/ack`);
    expect([ack.status, again.status]).toEqual([200, 200]);
    expect(again.body).toEqual(ack.body);
    expect(again.body.state).toBe("acknowledged");
    expect((await gw.prisma.alert.findUniqueOrThrow({ where: { id: sequential.id } })).acknowledgedBy).toBe(firstKeyId);
    expect((await audited(sequential.id)).map((e) => e.actorKeyId)).toEqual([firstKeyId]);

    // At the same time: one acknowledges (and is audited); both answer the alert as stored.
    const concurrent = await alert("concurrent");
    const both = await Promise.all([t.adminKey, other.body.key].map((key: string) => gw.call(key, "POST", `/v1/alerts/${concurrent.id}/ack`)));
    expect(both.map((r) => r.status)).toEqual([200, 200]);
    expect(both[1]!.body).toEqual(both[0]!.body);
    const stored = await gw.prisma.alert.findUniqueOrThrow({ where: { id: concurrent.id } });
    expect(both[0]!.body.acknowledgedAt).toBe(stored.acknowledgedAt!.toISOString());
    expect((await audited(concurrent.id)).map((e) => e.actorKeyId)).toEqual([stored.acknowledgedBy]);

    // Still 404 for an alert that is not the tenant's.
    expect((await gw.call(t.adminKey, "POST", "/v1/alerts/6a1c2a3e-0000-4000-8000-000000000000/ack")).status).toBe(404);
  });
});

describe("a task deleted while its run is under way", () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await setupGateway();
  });
  afterAll(async () => gw.close());

  it("the run still finishes, and failing it raises no alert that nothing could ever resolve", async () => {
    const t = await readyTenant(gw, { timezone: "UTC" });
    const task = (await gw.call(t.adminKey, "POST", "/v1/tasks", t.body({ notifications: { webhookUrl: "https://hooks.example.com/transporter", on: "failure" } }))).body;
    const run = await gw.call(t.adminKey, "POST", `/v1/tasks/${task.id}/runs`, {});
    expect(run.status).toBe(202);
    // The fetch stage takes the run on, and is at work when the task is deleted.
    let entered = false;
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const producer = new JobProducer(gw.redis, gw.config.REDIS_PREFIX, { attempts: 1, backoffMs: 10 });
    const fetcher = createStageWorker({
      stage: "fetch", config: gw.config, prisma: gw.prisma, redis: gw.redis, producer,
      handler: async () => {
        entered = true;
        await held;
        throw new PermanentError("bad_credentials", "the platform refused the API key (wrong secret)");
      },
    });
    try {
      await until(async () => entered);
      expect((await gw.call(t.adminKey, "DELETE", `/v1/tasks/${task.id}`)).status).toBe(204);
      release();
      await until(async () => (await gw.prisma.run.findUniqueOrThrow({ where: { id: run.body.id } })).status === "FAILED");
    } finally {
      release();
      await fetcher.close();
    }
    const failed = await gw.call(t.adminKey, "GET", `/v1/runs/${run.body.id}`);
    expect(failed.body).toMatchObject({ status: "FAILED", errorCode: "bad_credentials", taskDeleted: true });
    expect(failed.body.error).toContain("wrong secret");
    // Its notification is still owed and queued.
    expect(await producer.hasJob("notify", run.body.id)).toBe(true);
    await producer.close();
    // No open alert for a task the tenant can no longer see or retry.
    expect((await gw.call(t.adminKey, "GET", `/v1/tasks/${task.id}`)).status).toBe(404);
    expect((await gw.call(t.adminKey, "POST", `/v1/runs/${run.body.id}/retry`)).status).toBe(409);
    const open = (await gw.call(t.adminKey, "GET", "/v1/alerts?state=open")).body.items as Array<{ kind: string; taskId: string | null }>;
    expect(open.filter((a) => a.taskId === task.id)).toEqual([]);
  });

  it("deleting a task resolves its notification alerts too", async () => {
    const t = await readyTenant(gw, { timezone: "UTC" });
    const task = (await gw.call(t.adminKey, "POST", "/v1/tasks", t.body({ notifications: { webhookUrl: "https://hooks.example.com/transporter", on: "failure" } }))).body;
    for (const channel of ["webhook", "email"] as const) {
      await raiseAlert(gw.prisma, { tenantId: t.tenant.id, kind: `notification.${channel}`, severity: "warning", title: "failed", message: "failed", dedupeKey: notificationAlertKey(channel, task.id), taskId: task.id });
    }
    expect((await gw.call(t.adminKey, "DELETE", `/v1/tasks/${task.id}`)).status).toBe(204);
    expect(await gw.prisma.alert.count({ where: { taskId: task.id, resolvedAt: null } })).toBe(0);
  });
});

describe("tasks on a gateway that allows no insecure endpoints (production)", () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await setupGateway({ config: { ALLOW_INSECURE_ENDPOINTS: "false" } });
  });
  afterAll(async () => gw.close());

  it("refuses a webhook over plain http or into the service's own network, on create and on change", async () => {
    const t = await readyTenant(gw);
    for (const webhookUrl of ["http://hooks.example.com/t", "https://127.0.0.1:5432/", "https://169.254.169.254/latest/meta-data/", "https://10.0.0.5/admin", "https://[::1]:6443/", "https://localhost/hook"]) {
      const res = await gw.call(t.adminKey, "POST", "/v1/tasks", t.body({ notifications: { webhookUrl } }));
      expect(res.status, webhookUrl).toBe(400);
      expect(res.body.errors, webhookUrl).toEqual([{ path: "body.notifications.webhookUrl", message: expect.stringMatching(/https|own network/) }]);
    }
    const task = await gw.call(t.adminKey, "POST", "/v1/tasks", t.body({ notifications: { webhookUrl: "https://hooks.example.com/t" } }));
    expect(task.status).toBe(201);
    // Settings are shown to viewers and audited: a password in the URL is refused, never stored.
    for (const webhookUrl of ["https://hookuser:S3cretHookPassw0rd@hooks.example.com/x", "https://token@hooks.example.com/x"]) {
      const withSecret = await gw.call(t.adminKey, "PATCH", `/v1/tasks/${task.body.id}`, { notifications: { webhookUrl } });
      expect(withSecret.status, webhookUrl).toBe(400);
      expect(withSecret.body.errors, webhookUrl).toEqual([{ path: "body.notifications.webhookUrl", message: expect.stringContaining("webhookSecret") }]);
      expect(JSON.stringify(withSecret.body)).not.toContain("S3cretHookPassw0rd");
    }
    const changed = await gw.call(t.adminKey, "PATCH", `/v1/tasks/${task.body.id}`, { notifications: { webhookUrl: "https://192.168.1.10/hook" } });
    expect(changed.status).toBe(400);
    expect((await gw.prisma.task.findUniqueOrThrow({ where: { id: task.body.id } })).notifications).toMatchObject({ webhookUrl: "https://hooks.example.com/t" });
  });
});
