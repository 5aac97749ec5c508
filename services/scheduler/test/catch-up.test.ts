import { windowsBetween, type Schedule } from "@transporter/schedule";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { Clock, DAY, fetchJobRunIds, iso, MINUTE, runsOf, setup, type Env } from "./helpers.js";

describe("catch-up after downtime", () => {
  let env: Env;
  beforeAll(async () => {
    env = await setup("sched-catchup");
  });
  afterAll(async () => env.close());
  beforeEach(async () => env.reset());

  const stoppedAt = new Date("2026-11-20T12:00:00Z");
  const restartedAt = new Date(stoppedAt.getTime() + 3 * DAY + 7 * MINUTE);

  const cases: { s: Schedule; zone: string }[] = [
    { s: { frequency: "daily", time: "06:00" }, zone: "UTC" },
    { s: { frequency: "daily", time: "00:00", delayMinutes: 360 }, zone: "America/New_York" },
    { s: { frequency: "interval", everyMinutes: 60 }, zone: "Europe/London" },
    { s: { frequency: "interval", everyMinutes: 15 }, zone: "Asia/Kathmandu" },
    { s: { frequency: "weekly", dayOfWeek: 1, time: "09:00" }, zone: "Europe/Dublin" },
  ];

  async function stopForThreeDays(catchUpDays: string) {
    const clock = new Clock(stoppedAt.getTime());
    const tasks: { id: string; s: Schedule; zone: string }[] = [];
    for (const { s, zone } of cases) tasks.push({ id: await env.task(await env.tenant(zone), s, zone, stoppedAt), s, zone });
    const scheduler = env.scheduler({ now: clock.now }, { SCHEDULER_CATCH_UP_DAYS: catchUpDays });
    expect((await scheduler.tick()).due).toBe(0);
    clock.set(restartedAt); // three days without a tick
    const result = await scheduler.tick();
    expect(result.due).toBe(tasks.length);
    return { clock, tasks, scheduler, result };
  }

  function missed(task: { s: Schedule; zone: string }) {
    const delay = (task.s.delayMinutes ?? 0) * MINUTE;
    return windowsBetween(task.s, task.zone, new Date(stoppedAt.getTime() - delay), new Date(restartedAt.getTime() - delay));
  }

  it("runs each missed window once, oldest first, within the default 7 days", async () => {
    const { clock, tasks, scheduler } = await stopForThreeDays("7");
    const jobOrder = await fetchJobRunIds(scheduler);
    for (const task of tasks) {
      const runs = await runsOf(env.pool, task.id);
      const expected = missed(task);
      expect(expected.length).toBeGreaterThan(0);
      expect(runs.map((r) => [iso(r.windowStart), iso(r.windowEnd), r.status])).toEqual(expected.map((w) => [iso(w.start), iso(w.end), "PENDING"]));
      // Enqueued oldest window first.
      const positions = runs.map((r) => jobOrder.indexOf(r.id));
      expect(positions.every((p) => p >= 0)).toBe(true);
      expect([...positions].sort((x, y) => x - y)).toEqual(positions);
    }
    const counts = Object.fromEntries(await Promise.all(tasks.map(async (t) => [t.s.frequency + (t.s.everyMinutes ?? ""), (await runsOf(env.pool, t.id)).length])));
    expect(counts).toEqual({ daily: 3, interval60: 72, interval15: 288, weekly: 1 });
    // Caught up: the next tick owes nothing.
    clock.advance(MINUTE);
    expect((await scheduler.tick()).created).toBe(0);
  });

  it("beyond the limit runs the newest windows and records the older ones as SKIPPED, leaving no gap", async () => {
    const { tasks, scheduler } = await stopForThreeDays("1");
    const jobs = new Set(await fetchJobRunIds(scheduler));
    for (const task of tasks) {
      const runs = await runsOf(env.pool, task.id);
      const expected = missed(task);
      const pending = runs.filter((r) => r.status === "PENDING");
      const skipped = runs.filter((r) => r.status === "SKIPPED");
      const limit = task.s.frequency === "interval" ? 1440 / task.s.everyMinutes! : 1;
      // The newest `limit` windows run, exactly as the schedule defines them.
      expect(pending.map((r) => [iso(r.windowStart), iso(r.windowEnd)])).toEqual(expected.slice(-limit).map((w) => [iso(w.start), iso(w.end)]));
      expect(pending.every((r) => jobs.has(r.id))).toBe(true);
      expect(skipped.every((r) => !jobs.has(r.id) && /are caught up/.test(r.error ?? ""))).toBe(true);
      // History shows the whole gap: skipped and pending rows tile it without holes or overlaps.
      expect(iso(runs[0]!.windowStart)).toBe(iso(expected[0]!.start));
      for (let i = 1; i < runs.length; i++) expect(iso(runs[i]!.windowStart)).toBe(iso(runs[i - 1]!.windowEnd));
      expect(iso(runs.at(-1)!.windowEnd)).toBe(iso(expected.at(-1)!.end));
      if (expected.length > limit) expect(skipped.length).toBeGreaterThan(0);
    }
    const daily = await runsOf(env.pool, tasks[0]!.id);
    expect(daily.map((r) => [r.status, iso(r.windowEnd)])).toEqual([
      ["SKIPPED", "2026-11-21T06:00:00.000Z"],
      ["SKIPPED", "2026-11-22T06:00:00.000Z"],
      ["PENDING", "2026-11-23T06:00:00.000Z"],
    ]);
    expect(daily[0]!.error).toBe("Missed while the scheduler was not running; only the latest 1 window(s) (1 day(s)) are caught up.");
  });
});
