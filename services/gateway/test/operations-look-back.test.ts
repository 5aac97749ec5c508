import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { windowsBetween } from "@transporter/schedule";
import { readyTenant, setupGateway, type TestGateway } from "./helpers.js";

/**
 * Messaging Operations only looks back 1440 minutes from when a run fetches. A task whose window +
 * delay + interval + 5 minutes of scheduling lag reach further would lose (or fail) its window's
 * first interval on every run: it is refused up front (400 naming `schedule`), like a Data Access
 * task with too short a delay. So is a run asked for a window that starts too far back. Windows
 * follow the account's local time: the one across a fall-back is longer by the zone's shift.
 */
describe("reports with a look-back limit (Messaging Operations: 24 hours)", () => {
  let gw: TestGateway;
  const clock = new Date("2026-11-23T12:00:00Z");
  beforeAll(async () => {
    gw = await setupGateway({ deps: { now: () => clock } });
  });
  afterAll(async () => gw.close());

  async function operationsTenant(timezone = "America/New_York") {
    const t = await readyTenant(gw, { timezone });
    await gw.prisma.source.update({
      where: { id: t.source.id },
      data: { permissions: ["messaging-interactions", "messaging-operations-agent-activity", "messaging-operations-queue-health"] },
    });
    const wfm = (overrides: Record<string, unknown> = {}) => t.body({ reportId: "wfm-agent-activity", format: "csv", schedule: { frequency: "interval", everyMinutes: 60, delayMinutes: 0 }, ...overrides });
    return { ...t, wfm };
  }

  const schedulePaths = (body: { errors?: Array<{ path: string }> }) => (body.errors ?? []).map((e) => e.path);

  it("lists each report's look-back in the catalogue", async () => {
    const t = await readyTenant(gw);
    const items = (await gw.call(t.adminKey, "GET", "/v1/reports")).body.items as Array<{ id: string; maxLookBackMinutes: number | null }>;
    for (const id of ["wfm-agent-activity", "wfm-queue-health", "wfm-agent-activity-raw", "wfm-queue-health-raw"]) {
      expect(items.find((r) => r.id === id)?.maxLookBackMinutes, id).toBe(1440);
    }
    expect(items.find((r) => r.id === "messaging-conversations")?.maxLookBackMinutes).toBeNull();
    expect((await gw.call(t.adminKey, "GET", "/v1/reports/wfm-queue-health")).body.maxLookBackMinutes).toBe(1440);
  });

  it("refuses daily and weekly schedules, naming schedule, the sum and the way out", async () => {
    const t = await operationsTenant();
    for (const reportId of ["wfm-agent-activity", "wfm-queue-health", "wfm-agent-activity-raw", "wfm-queue-health-raw"]) {
      const format = reportId.endsWith("-raw") ? "ndjson" : "csv";
      for (const schedule of [
        { frequency: "daily", time: "00:00", delayMinutes: 0 },
        { frequency: "daily", time: "06:00", delayMinutes: 360 },
        { frequency: "weekly", time: "00:00", dayOfWeek: 1, delayMinutes: 0 },
      ]) {
        const res = await gw.call(t.adminKey, "POST", "/v1/tasks", t.wfm({ reportId, format, schedule }));
        expect(res.status, `${reportId} ${JSON.stringify(schedule)}`).toBe(400);
        expect(schedulePaths(res.body)).toEqual(["body.schedule"]);
      }
    }
    const daily = await gw.call(t.adminKey, "POST", "/v1/tasks", t.wfm({ schedule: { frequency: "daily", time: "00:00" } }));
    const message = daily.body.errors[0].message as string;
    // 1440 (daily) + 60 (New York's fall-back) + 0 delay + 15 (the default interval) + 5 (scheduling lag) = 1520.
    expect(message).toContain("only looks back 1440 minutes");
    expect(message).toContain("a 1440-minute window (daily) + 60 minutes when America/New_York's clocks go back + 0 minutes of delay + one 15-minute interval");
    expect(message).toContain("+ 5 minutes allowed for scheduling lag = 1520 minutes");
    expect(message).toContain("an interval schedule of at most 720 minutes");
    expect(await gw.prisma.task.count({ where: { tenantId: t.tenant.id } })).toBe(0);
  });

  it("accepts interval schedules up to the limit, counting the interval the params ask for (UTC: no fall-back)", async () => {
    const t = await operationsTenant("UTC");
    const cases: Array<[Record<string, unknown>, Record<string, unknown>, number]> = [
      // 720 + 700 + 15 (default interval) + 5 = 1440: fits exactly.
      [{ frequency: "interval", everyMinutes: 720, delayMinutes: 700 }, {}, 201],
      [{ frequency: "interval", everyMinutes: 720, delayMinutes: 701 }, {}, 400],
      // 720 + 655 + 60 + 5 = 1440, and one minute more.
      [{ frequency: "interval", everyMinutes: 720, delayMinutes: 655 }, { intervalMinutes: 60 }, 201],
      [{ frequency: "interval", everyMinutes: 720, delayMinutes: 656 }, { intervalMinutes: 60 }, 400],
      [{ frequency: "interval", everyMinutes: 15, delayMinutes: 0 }, { intervalMinutes: 5 }, 201],
      // A 1440-minute interval is a day: too long whatever the delay.
      [{ frequency: "interval", everyMinutes: 1440, delayMinutes: 0 }, { intervalMinutes: 5 }, 400],
    ];
    for (const [schedule, params, status] of cases) {
      const res = await gw.call(t.adminKey, "POST", "/v1/tasks", t.wfm({ schedule, params, enabled: false }));
      expect(res.status, `${JSON.stringify(schedule)} ${JSON.stringify(params)}: ${JSON.stringify(res.body)}`).toBe(status);
      if (status === 400) expect(schedulePaths(res.body)).toEqual(["body.schedule"]);
    }
    // Reports without the limit keep their daily schedules.
    expect((await gw.call(t.adminKey, "POST", "/v1/tasks", t.body({ schedule: { frequency: "daily", time: "00:00", delayMinutes: 0 } }))).status).toBe(201);
  });

  it("refuses an update that makes the runs reach too far: schedule, params (interval) or report changed", async () => {
    const t = await operationsTenant("UTC");
    const task = (await gw.call(t.adminKey, "POST", "/v1/tasks", t.wfm({ schedule: { frequency: "interval", everyMinutes: 720, delayMinutes: 600 } }))).body;
    expect(task.id).toBeDefined();
    const url = `/v1/tasks/${task.id}`;
    const daily = await gw.call(t.adminKey, "PATCH", url, { schedule: { frequency: "daily", time: "00:00", delayMinutes: 0 } });
    expect(daily.status).toBe(400);
    expect(schedulePaths(daily.body)).toEqual(["body.schedule"]);
    // 720 + 600 + 60 + 5 = 1385 fits; with a 700-minute delay (1485) it does not.
    expect((await gw.call(t.adminKey, "PATCH", url, { params: { intervalMinutes: 60 } })).status).toBe(200);
    expect((await gw.call(t.adminKey, "PATCH", url, { schedule: { frequency: "interval", everyMinutes: 720, delayMinutes: 700 } })).status).toBe(400);
    await gw.call(t.adminKey, "PATCH", url, { params: { intervalMinutes: 15 } });
    expect((await gw.call(t.adminKey, "PATCH", url, { schedule: { frequency: "interval", everyMinutes: 720, delayMinutes: 700 } })).status).toBe(200);
    // 720 + 700 + 60 + 5 = 1485: the interval alone makes it too long.
    const params = await gw.call(t.adminKey, "PATCH", url, { params: { intervalMinutes: 60 } });
    expect(params.status).toBe(400);
    expect(schedulePaths(params.body)).toEqual(["body.schedule"]);
    expect((await gw.prisma.task.findUniqueOrThrow({ where: { id: task.id } })).params).toEqual({ intervalMinutes: 15 });
    // A daily task of another report cannot become one of these.
    const conversations = (await gw.call(t.adminKey, "POST", "/v1/tasks", t.body({ description: "Daily conversations", schedule: { frequency: "daily", time: "00:00", delayMinutes: 0 } }))).body;
    const switched = await gw.call(t.adminKey, "PATCH", `/v1/tasks/${conversations.id}`, { reportId: "wfm-queue-health" });
    expect(switched.status).toBe(400);
    expect(schedulePaths(switched.body)).toEqual(["body.schedule"]);
  });

  it("allows for the zone's fall-back: a window across it is longer by the zone's shift", async () => {
    // 720 + delay + 15 (default interval) + 5 (lag) + the shift must fit 1440: the longest delay per zone.
    const cases: Array<[string, number]> = [
      ["Asia/Tokyo", 700],
      ["America/New_York", 640],
      ["Europe/London", 640],
      ["Australia/Lord_Howe", 670],
      ["Antarctica/Troll", 580],
    ];
    for (const [timezone, delayMinutes] of cases) {
      const t = await operationsTenant(timezone);
      const schedule = (delay: number) => ({ frequency: "interval", everyMinutes: 720, delayMinutes: delay });
      const fits = await gw.call(t.adminKey, "POST", "/v1/tasks", t.wfm({ reportId: "wfm-queue-health", schedule: schedule(delayMinutes), params: { intervalMinutes: 15 } }));
      expect(fits.status, `${timezone}: ${JSON.stringify(fits.body)}`).toBe(201);
      const over = await gw.call(t.adminKey, "POST", "/v1/tasks", t.wfm({ reportId: "wfm-queue-health", schedule: schedule(delayMinutes + 1), params: { intervalMinutes: 15 } }));
      expect(over.status, timezone).toBe(400);
      expect(schedulePaths(over.body)).toEqual(["body.schedule"]);
      const message = over.body.errors[0].message as string;
      const shift = 700 - delayMinutes;
      expect(message).toContain(shift > 0 ? `a 720-minute window + ${shift} minutes when ${timezone}'s clocks go back + ${delayMinutes + 1} minutes of delay` : `a 720-minute window + ${delayMinutes + 1} minutes of delay`);
      expect(message).toContain("= 1441 minutes, more than 1440");
    }
  });

  it("refuses 720 minutes with 700 of delay in New York: on 1 November its window is 780 minutes", async () => {
    const t = await operationsTenant();
    const schedule = { frequency: "interval", everyMinutes: 720, delayMinutes: 700 } as const;
    // The window the Messaging Operations connector refused: 00:00 EDT to 12:00 EST.
    const [stretched] = windowsBetween(schedule, "America/New_York", new Date("2026-11-01T16:59:00Z"), new Date("2026-11-01T17:00:00Z"));
    expect(stretched).toMatchObject({ start: new Date("2026-11-01T04:00:00Z"), end: new Date("2026-11-01T17:00:00Z") });
    const res = await gw.call(t.adminKey, "POST", "/v1/tasks", t.wfm({ reportId: "wfm-queue-health", schedule, params: { intervalMinutes: 15 } }));
    expect(res.status).toBe(400);
    expect(res.body.detail).toContain("schedule: report wfm-queue-health reads an API that only looks back 1440 minutes");
    expect(res.body.detail).toContain("= 1500 minutes");
    // The way out allows for the fall-back too.
    expect(res.body.detail).toContain("a 720-minute window + 60 minutes when America/New_York's clocks go back + 700 minutes of delay");
    expect(res.body.detail).toContain("at most 480 minutes (everyMinutes) with this delay");
  });

  it("a task saved (disabled) before the account has a zone is checked in the zone when enabled", async () => {
    const t = await operationsTenant();
    await gw.prisma.tenant.update({ where: { id: t.tenant.id }, data: { timezone: null } });
    const task = await gw.call(t.adminKey, "POST", "/v1/tasks", t.wfm({ schedule: { frequency: "interval", everyMinutes: 720, delayMinutes: 700 }, params: {}, enabled: false }));
    expect(task.status).toBe(201);
    expect((await gw.call(t.adminKey, "PATCH", "/v1/account", { timezone: "America/New_York" })).status).toBe(200);
    const enable = await gw.call(t.adminKey, "PATCH", `/v1/tasks/${task.body.id}`, { enabled: true });
    expect(enable.status).toBe(400);
    expect(schedulePaths(enable.body)).toEqual(["body.schedule"]);
  });

  it("refuses a zone change that would break an enabled task, naming it; disabled tasks are checked when enabled", async () => {
    const t = await operationsTenant("UTC");
    const create = async (description: string, delayMinutes: number) =>
      (await gw.call(t.adminKey, "POST", "/v1/tasks", t.wfm({ description, reportId: "wfm-queue-health", schedule: { frequency: "interval", everyMinutes: 720, delayMinutes }, params: { intervalMinutes: 15 } }))).body as { id: string };
    // Fits UTC only; fits a 60-minute fall-back but not Troll's 120.
    const tight = await create("Queue health, tight", 700);
    const roomy = await create("Queue health, roomy", 640);
    const zone = (timezone: string) => gw.call(t.adminKey, "PATCH", "/v1/account", { timezone });
    const newYork = await zone("America/New_York");
    expect(newYork.status).toBe(409);
    expect(newYork.body.taskIds).toEqual([tight.id]);
    expect(newYork.body.detail).toContain(`task ${tight.id} ("Queue health, tight")`);
    expect(newYork.body.detail).toContain("60 minutes when America/New_York's clocks go back");
    expect(newYork.body.detail).not.toContain(roomy.id);
    expect((await zone("Australia/Lord_Howe")).body.taskIds).toEqual([tight.id]);
    expect((await zone("Antarctica/Troll")).body.taskIds).toEqual([tight.id, roomy.id]);
    // Nothing changed: the zone, its audit trail and the tasks' next runs.
    expect((await gw.call(t.adminKey, "GET", "/v1/account")).body.timezone).toBe("UTC");
    expect(await gw.prisma.auditEvent.count({ where: { tenantId: t.tenant.id, action: "account.update" } })).toBe(0);
    // A zone without DST is fine.
    expect((await zone("Asia/Tokyo")).status).toBe(200);
    // Disabled, the tight task does not hold the zone back; enabling it there is refused with the reason.
    expect((await gw.call(t.adminKey, "PATCH", `/v1/tasks/${tight.id}`, { enabled: false })).status).toBe(200);
    expect((await zone("America/New_York")).status).toBe(200);
    const enable = await gw.call(t.adminKey, "PATCH", `/v1/tasks/${tight.id}`, { enabled: true });
    expect(enable.status).toBe(400);
    expect(enable.body.errors[0].message).toContain("60 minutes when America/New_York's clocks go back");
  });

  it("a zone change is not held back by a task that did not fit before (saved under older rules)", async () => {
    const t = await operationsTenant("UTC");
    const task = (await gw.call(t.adminKey, "POST", "/v1/tasks", t.wfm())).body;
    await gw.prisma.task.update({ where: { id: task.id }, data: { frequency: "daily", time: "00:00", everyMinutes: null, delayMinutes: 0 } });
    expect((await gw.call(t.adminKey, "PATCH", "/v1/account", { timezone: "Europe/London" })).status).toBe(200);
  });

  it("a task saved before the rule (daily) can still be renamed, but not changed or enabled again as it is", async () => {
    const t = await operationsTenant();
    const task = (await gw.call(t.adminKey, "POST", "/v1/tasks", t.wfm())).body;
    await gw.prisma.task.update({ where: { id: task.id }, data: { frequency: "daily", time: "00:00", everyMinutes: null, delayMinutes: 0 } });
    const url = `/v1/tasks/${task.id}`;
    expect((await gw.call(t.adminKey, "PATCH", url, { description: "renamed" })).status).toBe(200);
    expect((await gw.call(t.adminKey, "PATCH", url, { params: { agentIds: [7] } })).status).toBe(200);
    expect((await gw.call(t.adminKey, "PATCH", url, { params: { agentIds: [7], intervalMinutes: 30 } })).status).toBe(400);
    await gw.call(t.adminKey, "PATCH", url, { enabled: false });
    expect((await gw.call(t.adminKey, "PATCH", url, { enabled: true })).status).toBe(400);
  });

  it("refuses a run of a window that starts further back than the look-back allows now", async () => {
    const t = await operationsTenant();
    const task = (await gw.call(t.adminKey, "POST", "/v1/tasks", t.wfm({ schedule: { frequency: "interval", everyMinutes: 60, delayMinutes: 0 } }))).body;
    const runs = `/v1/tasks/${task.id}/runs`;
    const minutesAgo = (n: number) => new Date(clock.getTime() - n * 60_000).toISOString();
    // 1420 minutes back + 15 (interval) + 5 (lag) = 1440: the furthest a window may start.
    const old = await gw.call(t.adminKey, "POST", runs, { windowStart: minutesAgo(1421), windowEnd: minutesAgo(1361) });
    expect(old.status).toBe(400);
    expect(old.body.errors.map((e: { path: string }) => e.path)).toEqual(["body.windowStart"]);
    expect(old.body.detail).toContain("only looks back 1440 minutes");
    expect(old.body.detail).toContain(`at or after ${minutesAgo(1420)}`);
    const yesterday = await gw.call(t.adminKey, "POST", runs, { windowStart: "2026-11-22T00:00:00Z", windowEnd: "2026-11-23T00:00:00Z" });
    expect(yesterday.status).toBe(400);
    expect(await gw.prisma.run.count({ where: { taskId: task.id } })).toBe(0);
    const fits = await gw.call(t.adminKey, "POST", runs, { windowStart: minutesAgo(1420), windowEnd: minutesAgo(1360) });
    expect(fits.status).toBe(202);
    expect((await gw.call(t.adminKey, "POST", runs, {})).status).toBe(202);
    // A failed run whose window has since passed out of reach is not retried either.
    const failed = await gw.prisma.run.create({
      data: { tenantId: t.tenant.id, taskId: task.id, windowStart: new Date(minutesAgo(1500)), windowEnd: new Date(minutesAgo(1440)), scheduledFor: clock, trigger: "schedule", status: "FAILED", finishedAt: clock },
    });
    const retry = await gw.call(t.adminKey, "POST", `/v1/runs/${failed.id}/retry`);
    expect(retry.status).toBe(409);
    expect(retry.body.detail).toContain("only looks back 1440 minutes");
  });
});
