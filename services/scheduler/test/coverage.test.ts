import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { resumeAfterChange } from "@transporter/schedule";
import { Clock, iso, runsOf, setup, type Env } from "./helpers.js";

/** The tick continues each task's windows from Task.coveredUntil and keeps it up to date. */
describe("coverage: consecutive scheduled windows touch", () => {
  let env: Env;
  beforeAll(async () => {
    env = await setup("sched-coverage", { SCHEDULER_CATCH_UP_DAYS: "1" });
  });
  afterAll(async () => env.close());
  beforeEach(async () => env.reset());

  async function coveredUntil(taskId: string): Promise<string | null> {
    const { rows } = await env.pool.query<{ coveredUntil: Date | null }>(`SELECT "coveredUntil" FROM "Task" WHERE id = $1`, [taskId]);
    return rows[0]!.coveredUntil ? iso(rows[0]!.coveredUntil) : null;
  }

  /** A UTC task every 15 minutes, created at 09:50, whose scheduler ticked at 10:16 (09:45–10:00 and 10:00–10:15 recorded). */
  async function quarterHourTaskTickedAt1016() {
    const owner = await env.tenant("UTC");
    const clock = new Clock(Date.parse("2026-11-23T09:50:00Z"));
    const id = await env.task(owner, { frequency: "interval", everyMinutes: 15 }, "UTC", clock.now());
    const scheduler = env.scheduler({ now: clock.now });
    clock.set("2026-11-23T10:16:00Z");
    await scheduler.tick();
    return { id, clock, scheduler };
  }

  it("records where the windows end, and starts the next window there", async () => {
    const { id, clock, scheduler } = await quarterHourTaskTickedAt1016();
    expect(await coveredUntil(id)).toBe("2026-11-23T10:15:00.000Z");
    // The schedule becomes hourly (as the gateway writes it: next run of the first window ending after 10:15).
    await env.pool.query(`UPDATE "Task" SET "everyMinutes" = 60, "nextRunAt" = '2026-11-23T11:00:00Z' WHERE id = $1`, [id]);
    clock.set("2026-11-23T11:01:00Z");
    await scheduler.tick();
    expect((await runsOf(env.pool, id)).map((r) => [iso(r.windowStart), iso(r.windowEnd)])).toEqual([
      ["2026-11-23T09:45:00.000Z", "2026-11-23T10:00:00.000Z"],
      ["2026-11-23T10:00:00.000Z", "2026-11-23T10:15:00.000Z"],
      ["2026-11-23T10:15:00.000Z", "2026-11-23T11:00:00.000Z"],
    ]);
    expect(await coveredUntil(id)).toBe("2026-11-23T11:00:00.000Z");
  });

  it("a window already covered is not recorded again; nextRunAt still moves on", async () => {
    const owner = await env.tenant("UTC");
    const clock = new Clock(Date.parse("2026-11-23T11:01:00Z"));
    const id = await env.task(owner, { frequency: "interval", everyMinutes: 60 }, "UTC", new Date("2026-11-23T10:30:00Z"));
    await env.pool.query(`UPDATE "Task" SET "coveredUntil" = '2026-11-23T11:00:00Z' WHERE id = $1`, [id]);
    const result = await env.scheduler({ now: clock.now }).tick();
    expect(result).toMatchObject({ due: 1, created: 0, skipped: 0 });
    expect(await runsOf(env.pool, id)).toEqual([]);
    const { rows } = await env.pool.query<{ nextRunAt: Date }>(`SELECT "nextRunAt" FROM "Task" WHERE id = $1`, [id]);
    expect(iso(rows[0]!.nextRunAt)).toBe("2026-11-23T12:00:00.000Z");
  });

  it("catch-up beyond the limit: the SKIPPED span starts at coveredUntil and the rows tile up to now", async () => {
    const owner = await env.tenant("UTC");
    const clock = new Clock(Date.parse("2026-11-23T09:00:00Z"));
    // Daily at 08:00 since a change; the previous windows ended at 06:00 on the 18th.
    const id = await env.task(owner, { frequency: "daily", time: "08:00" }, "UTC", new Date("2026-11-18T07:00:00Z"));
    await env.pool.query(`UPDATE "Task" SET "coveredUntil" = '2026-11-18T06:00:00Z' WHERE id = $1`, [id]);
    await env.scheduler({ now: clock.now }).tick();
    const runs = await runsOf(env.pool, id);
    expect(iso(runs[0]!.windowStart)).toBe("2026-11-18T06:00:00.000Z");
    expect(runs[0]!.status).toBe("SKIPPED");
    for (let i = 1; i < runs.length; i++) expect(iso(runs[i]!.windowStart)).toBe(iso(runs[i - 1]!.windowEnd));
    expect(runs.filter((r) => r.status === "PENDING").map((r) => [iso(r.windowStart), iso(r.windowEnd)])).toEqual([["2026-11-22T08:00:00.000Z", "2026-11-23T08:00:00.000Z"]]);
    expect(await coveredUntil(id)).toBe("2026-11-23T08:00:00.000Z");
  });

  it("a window sharing its start with an earlier, different one is still recorded (the key includes windowEnd)", async () => {
    const { id, clock, scheduler } = await quarterHourTaskTickedAt1016();
    // Disabled, then enabled again as hourly: it starts afresh, with a plain window from 10:00.
    await env.pool.query(`UPDATE "Task" SET "everyMinutes" = 60, "nextRunAt" = '2026-11-23T11:00:00Z', "coveredUntil" = NULL WHERE id = $1`, [id]);
    clock.set("2026-11-23T11:01:00Z");
    expect((await scheduler.tick()).created).toBe(1);
    expect((await runsOf(env.pool, id)).map((r) => [iso(r.windowStart), iso(r.windowEnd)]).at(-1)).toEqual(["2026-11-23T10:00:00.000Z", "2026-11-23T11:00:00.000Z"]);
    // The same window again is still inserted only once.
    await env.pool.query(`UPDATE "Task" SET "nextRunAt" = '2026-11-23T11:00:00Z', "coveredUntil" = NULL WHERE id = $1`, [id]);
    expect((await scheduler.tick()).created).toBe(0);
    expect(await runsOf(env.pool, id)).toHaveLength(3);
  });

  it("a disabled account's tasks skip the disabled period, and keep their coverage: a later schedule change never reaches back over delivered windows", async () => {
    const owner = await env.tenant("UTC");
    const clock = new Clock(Date.parse("2026-03-09T12:00:00Z"));
    const id = await env.task(owner, { frequency: "daily", time: "00:00" }, "UTC", clock.now());
    const scheduler = env.scheduler({ now: clock.now });
    clock.set("2026-03-10T00:00:05Z");
    await scheduler.tick();
    expect(await coveredUntil(id)).toBe("2026-03-10T00:00:00.000Z");

    await env.pool.query(`UPDATE "Tenant" SET disabled = true WHERE id = $1`, [owner.tenantId]);
    clock.set("2026-03-11T00:00:05Z");
    await scheduler.tick();
    // Nothing run; the window 03-10 → 03-11 is not covered, nor reached back over later.
    expect(await runsOf(env.pool, id)).toHaveLength(1);
    expect(await coveredUntil(id)).toBe("2026-03-11T00:00:00.000Z");

    // Enabled again; the admin makes the task weekly (Friday 00:00), as the gateway writes it.
    await env.pool.query(`UPDATE "Tenant" SET disabled = false WHERE id = $1`, [owner.tenantId]);
    const { rows } = await env.pool.query<{ nextRunAt: Date; coveredUntil: Date | null }>(`SELECT "nextRunAt", "coveredUntil" FROM "Task" WHERE id = $1`, [id]);
    const next = resumeAfterChange(
      { schedule: { frequency: "daily", time: "00:00" }, timeZone: "UTC", nextRunAt: rows[0]!.nextRunAt, coveredUntil: rows[0]!.coveredUntil },
      { schedule: { frequency: "weekly", time: "00:00", dayOfWeek: 5 }, timeZone: "UTC" },
      new Date("2026-03-11T02:00:00Z"),
    );
    await env.pool.query(`UPDATE "Task" SET frequency = 'weekly', "dayOfWeek" = 5, "nextRunAt" = $2, "coveredUntil" = $3 WHERE id = $1`, [id, next.nextRunAt, next.coveredUntil]);
    clock.set("2026-03-13T00:00:05Z");
    await scheduler.tick();
    expect((await runsOf(env.pool, id)).map((r) => [iso(r.windowStart), iso(r.windowEnd)])).toEqual([
      ["2026-03-09T00:00:00.000Z", "2026-03-10T00:00:00.000Z"],
      ["2026-03-11T00:00:00.000Z", "2026-03-13T00:00:00.000Z"],
    ]);
  });
});
