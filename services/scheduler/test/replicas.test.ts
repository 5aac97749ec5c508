import { windowsBetween, type Schedule } from "@transporter/schedule";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Clock, DAY, fetchJobRunIds, iso, MINUTE, runsOf, setup, type Env } from "./helpers.js";

describe("two scheduler replicas over the same tasks", () => {
  let env: Env;
  beforeAll(async () => {
    // Small batches so the two replicas interleave within one tick.
    env = await setup("sched-replicas", { SCHEDULER_BATCH_SIZE: "3" });
  });
  afterAll(async () => env.close());

  it("create each window exactly once and enqueue each run once", async () => {
    const start = new Date("2026-03-07T00:00:00Z");
    const clock = new Clock(start.getTime());
    const cases: { s: Schedule; zone: string }[] = [
      { s: { frequency: "interval", everyMinutes: 15 }, zone: "America/New_York" },
      { s: { frequency: "interval", everyMinutes: 30, delayMinutes: 20 }, zone: "Europe/London" },
      { s: { frequency: "interval", everyMinutes: 60 }, zone: "Asia/Kathmandu" },
      { s: { frequency: "daily", time: "02:30" }, zone: "America/New_York" },
      { s: { frequency: "daily", time: "00:00", delayMinutes: 90 }, zone: "Pacific/Chatham" },
      { s: { frequency: "interval", everyMinutes: 45 }, zone: "Australia/Lord_Howe" },
    ];
    const tasks: { id: string; s: Schedule; zone: string }[] = [];
    for (const { s, zone } of cases) {
      const owner = await env.tenant(zone);
      for (let i = 0; i < 3; i++) tasks.push({ id: await env.task(owner, s, zone, start), s, zone });
    }
    const a = env.scheduler({ now: clock.now });
    const b = env.scheduler({ now: clock.now });

    // Two days (across New York's spring-forward) in 10-minute steps, both replicas ticking at once.
    const end = new Date(start.getTime() + 2 * DAY);
    const claimed = { a: 0, b: 0 };
    while (clock.now() < end) {
      clock.advance(10 * MINUTE);
      const [ra, rb] = await Promise.all([a.tick(), b.tick()]);
      claimed.a += ra.due;
      claimed.b += rb.due;
    }
    // Both replicas did part of the work.
    expect(claimed.a).toBeGreaterThan(0);
    expect(claimed.b).toBeGreaterThan(0);

    const runs = await runsOf(env.pool);
    for (const task of tasks) {
      const expected = windowsBetween(task.s, task.zone, new Date(start.getTime() - (task.s.delayMinutes ?? 0) * MINUTE), new Date(end.getTime() - (task.s.delayMinutes ?? 0) * MINUTE));
      const actual = runs.filter((r) => r.taskId === task.id);
      expect(actual.map((r) => [iso(r.windowStart), iso(r.windowEnd), iso(r.scheduledFor)])).toEqual(
        expected.map((w) => [iso(w.start), iso(w.end), iso(w.runAt)]),
      );
      expect(actual.every((r) => r.status === "PENDING" && r.enqueuedAt !== null)).toBe(true);
    }
    const jobRunIds = await fetchJobRunIds(a);
    expect(jobRunIds.length).toBe(runs.length);
    expect(new Set(jobRunIds)).toEqual(new Set(runs.map((r) => r.id)));
  });
});
