import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { localDaysOf } from "../src/run-requests.js";
import { readyTenant, setupGateway, type TestGateway } from "./helpers.js";

/**
 * A window asked for through the API (a given window, a retry) spans at most 31 days, counted in
 * the account's local calendar days: a 31-day month is one window whatever its hours (October in
 * London has 745 with its fall-back, March 743 with its spring-forward).
 */
describe("a window asked for spans at most 31 local days", () => {
  let gw: TestGateway;
  const clock = new Date("2026-11-23T12:00:00Z");
  beforeAll(async () => {
    gw = await setupGateway({ deps: { now: () => clock } });
  });
  afterAll(async () => gw.close());

  const hours = (w: { windowStart: string; windowEnd: string }) => (Date.parse(w.windowEnd) - Date.parse(w.windowStart)) / 3_600_000;

  it("counts no day a zone skipped: 31 real days across Samoa's missing 2011-12-30 are 31", () => {
    // 2011-12-29 00:00 -10:00 to 2012-01-30 00:00 +14:00: 32 dates on the calendar, one of which never was.
    const window = { start: new Date("2011-12-29T10:00:00Z"), end: new Date("2012-01-29T10:00:00Z") };
    expect(localDaysOf(window, "Pacific/Apia")).toBe(31);
    expect(localDaysOf({ start: window.start, end: new Date(window.end.getTime() + 60_000) }, "Pacific/Apia")).toBeGreaterThan(31);
    expect(localDaysOf({ start: new Date("2026-10-01T00:00:00+01:00"), end: new Date("2026-11-01T00:00:00Z") }, "Europe/London")).toBe(31);
  });

  it("takes a whole local month across a fall-back, and refuses one local minute more", async () => {
    // [zone, a 31-day local month across its fall-back, its hours]
    const cases: Array<[string, { windowStart: string; windowEnd: string }, number]> = [
      ["Europe/London", { windowStart: "2026-10-01T00:00:00+01:00", windowEnd: "2026-11-01T00:00:00+00:00" }, 745],
      ["America/New_York", { windowStart: "2026-10-05T00:00:00-04:00", windowEnd: "2026-11-05T00:00:00-05:00" }, 745],
      // Lord Howe Island goes back 30 minutes, Troll 2 hours.
      ["Australia/Lord_Howe", { windowStart: "2026-03-10T00:00:00+11:00", windowEnd: "2026-04-10T00:00:00+10:30" }, 744.5],
      ["Antarctica/Troll", { windowStart: "2026-10-01T00:00:00+02:00", windowEnd: "2026-11-01T00:00:00+00:00" }, 746],
      // No DST: 31 days are 744 hours.
      ["Asia/Tokyo", { windowStart: "2026-10-01T00:00:00+09:00", windowEnd: "2026-11-01T00:00:00+09:00" }, 744],
    ];
    for (const [timezone, window, length] of cases) {
      expect(hours(window), timezone).toBe(length);
      const t = await readyTenant(gw, { timezone });
      const task = (await gw.call(t.adminKey, "POST", "/v1/tasks", t.body())).body;
      const runs = `/v1/tasks/${task.id}/runs`;
      const month = await gw.call(t.adminKey, "POST", runs, window);
      expect(month.status, `${timezone}: ${JSON.stringify(month.body)}`).toBe(202);
      const longer = await gw.call(t.adminKey, "POST", runs, { ...window, windowEnd: new Date(Date.parse(window.windowEnd) + 60_000).toISOString() });
      expect(longer.status, timezone).toBe(400);
      expect(longer.body.detail).toContain("at most 31 days");
      expect(longer.body.errors).toEqual([{ path: "body.windowEnd", message: "window longer than 31 days" }]);
    }
  });

  it("takes a month across a spring-forward (743 hours, 31 local days) and 31 days of 24 hours, but no more", async () => {
    const t = await readyTenant(gw, { timezone: "Europe/London" });
    const task = (await gw.call(t.adminKey, "POST", "/v1/tasks", t.body())).body;
    const runs = `/v1/tasks/${task.id}/runs`;
    expect((await gw.call(t.adminKey, "POST", runs, { windowStart: "2026-03-01T00:00:00Z", windowEnd: "2026-04-01T00:00:00+01:00" })).status).toBe(202);
    // 744 hours end at 01:00 on 1 April: 31 days of 24 hours (and an hour more of London time).
    expect((await gw.call(t.adminKey, "POST", runs, { windowStart: "2026-03-01T00:00:00Z", windowEnd: "2026-04-01T01:00:00+01:00" })).status).toBe(202);
    expect((await gw.call(t.adminKey, "POST", runs, { windowStart: "2026-03-01T00:00:00Z", windowEnd: "2026-04-01T01:01:00+01:00" })).status).toBe(400);
    expect((await gw.call(t.adminKey, "POST", runs, { windowStart: "2026-07-01T00:00:00+01:00", windowEnd: "2026-08-01T00:00:00+01:00" })).status).toBe(202);
  });

  it("retries a failed run of a whole local month, and names a longer span in local days", async () => {
    const t = await readyTenant(gw, { timezone: "Europe/London" });
    const task = (await gw.call(t.adminKey, "POST", "/v1/tasks", t.body())).body;
    const run = (windowStart: string, windowEnd: string, status: "FAILED" | "SKIPPED") =>
      gw.prisma.run.create({ data: { tenantId: t.tenant.id, taskId: task.id, windowStart: new Date(windowStart), windowEnd: new Date(windowEnd), scheduledFor: clock, trigger: "manual", status, finishedAt: clock } });
    // October: 745 hours, 31 days in London.
    const october = await run("2026-09-30T23:00:00Z", "2026-11-01T00:00:00Z", "FAILED");
    const retry = await gw.call(t.adminKey, "POST", `/v1/runs/${october.id}/retry`);
    expect(retry.status, JSON.stringify(retry.body)).toBe(202);
    expect(retry.body).toMatchObject({ windowStart: "2026-09-30T23:00:00.000Z", windowEnd: "2026-11-01T00:00:00.000Z" });
    // 32 local days (and 769 hours): too long.
    const span = await run("2026-09-30T23:00:00Z", "2026-11-02T00:00:00Z", "SKIPPED");
    const refused = await gw.call(t.adminKey, "POST", `/v1/runs/${span.id}/retry`);
    expect(refused.status).toBe(409);
    expect(refused.body.detail).toContain("covers 32 days");
    expect(refused.body.detail).toContain("at most 31");
  });
});
