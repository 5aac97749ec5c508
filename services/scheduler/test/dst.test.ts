import type { Schedule } from "@transporter/schedule";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { Clock, iso, MINUTE, runsOf, setup, type Env } from "./helpers.js";

// The scheduler ticks every 5 simulated minutes across each zone's DST change; the windows it
// writes must be the ones worked out by hand below (UTC instants).
// New York 2026: 03-08 02:00 EST → 03:00 EDT (07:00Z); 11-01 02:00 EDT → 01:00 EST (06:00Z).
// London 2026: 03-29 01:00 GMT → 02:00 BST (01:00Z); 10-25 02:00 BST → 01:00 GMT (01:00Z).
// Lord Howe 2026: 04-05 02:00 +11 → 01:30 +10:30 (04-04 15:00Z); 10-04 02:00 +10:30 → 02:30 +11 (10-03 15:30Z).

type Case = { s: Schedule; expected: [start: string, end: string][]; between?: [string, string] };

const TICK = 5 * MINUTE;

describe("DST transitions on a simulated clock", () => {
  let env: Env;
  beforeAll(async () => {
    env = await setup("sched-dst");
  });
  afterAll(async () => env.close());
  beforeEach(async () => env.reset());

  async function simulate(zone: string, from: string, to: string, cases: Case[]) {
    const clock = new Clock(Date.parse(from));
    const owner = await env.tenant(zone);
    const ids = [];
    for (const c of cases) ids.push(await env.task(owner, c.s, zone, clock.now()));
    const scheduler = env.scheduler({ now: clock.now });
    while (clock.now().getTime() < Date.parse(to)) {
      clock.advance(TICK);
      await scheduler.tick();
    }
    for (const [i, c] of cases.entries()) {
      const runs = await runsOf(env.pool, ids[i]);
      const [lo, hi] = (c.between ?? [from, to]).map((t) => Date.parse(t)) as [number, number];
      const shown = runs.filter((r) => r.windowEnd.getTime() > lo && r.windowEnd.getTime() <= hi);
      expect(shown.map((r) => [iso(r.windowStart), iso(r.windowEnd)]), `${zone} ${JSON.stringify(c.s)}`).toEqual(c.expected);
      for (const r of runs) {
        // Created by the first tick at or after the window's runAt.
        expect(r.createdAt.getTime() - r.scheduledFor.getTime()).toBeGreaterThanOrEqual(0);
        expect(r.createdAt.getTime() - r.scheduledFor.getTime()).toBeLessThan(TICK);
        expect(r.scheduledFor.getTime()).toBe(r.windowEnd.getTime() + (c.s.delayMinutes ?? 0) * MINUTE);
      }
    }
  }

  it("America/New_York, spring forward", async () => {
    await simulate("America/New_York", "2026-03-06T12:00:00Z", "2026-03-09T12:00:00Z", [
      {
        s: { frequency: "daily", time: "02:30" },
        expected: [
          ["2026-03-06T07:30:00.000Z", "2026-03-07T07:30:00.000Z"],
          ["2026-03-07T07:30:00.000Z", "2026-03-08T07:00:00.000Z"],
          ["2026-03-08T07:00:00.000Z", "2026-03-09T06:30:00.000Z"],
        ],
      },
      {
        s: { frequency: "interval", everyMinutes: 60 },
        between: ["2026-03-08T04:00:00Z", "2026-03-08T09:00:00Z"],
        expected: [
          ["2026-03-08T04:00:00.000Z", "2026-03-08T05:00:00.000Z"],
          ["2026-03-08T05:00:00.000Z", "2026-03-08T06:00:00.000Z"],
          ["2026-03-08T06:00:00.000Z", "2026-03-08T07:00:00.000Z"],
          ["2026-03-08T07:00:00.000Z", "2026-03-08T08:00:00.000Z"],
          ["2026-03-08T08:00:00.000Z", "2026-03-08T09:00:00.000Z"],
        ],
      },
      {
        s: { frequency: "daily", time: "00:00", delayMinutes: 360 },
        expected: [
          ["2026-03-06T05:00:00.000Z", "2026-03-07T05:00:00.000Z"],
          ["2026-03-07T05:00:00.000Z", "2026-03-08T05:00:00.000Z"],
          ["2026-03-08T05:00:00.000Z", "2026-03-09T04:00:00.000Z"],
        ],
      },
    ]);
  });

  it("America/New_York, fall back", async () => {
    await simulate("America/New_York", "2026-10-31T12:00:00Z", "2026-11-02T12:00:00Z", [
      {
        s: { frequency: "daily", time: "01:30" },
        expected: [
          ["2026-10-31T05:30:00.000Z", "2026-11-01T05:30:00.000Z"],
          ["2026-11-01T05:30:00.000Z", "2026-11-02T06:30:00.000Z"],
        ],
      },
      {
        s: { frequency: "interval", everyMinutes: 60 },
        between: ["2026-11-01T03:00:00Z", "2026-11-01T08:00:00Z"],
        expected: [
          ["2026-11-01T03:00:00.000Z", "2026-11-01T04:00:00.000Z"],
          ["2026-11-01T04:00:00.000Z", "2026-11-01T05:00:00.000Z"],
          ["2026-11-01T05:00:00.000Z", "2026-11-01T07:00:00.000Z"],
          ["2026-11-01T07:00:00.000Z", "2026-11-01T08:00:00.000Z"],
        ],
      },
    ]);
  });

  it("Europe/London, both changes", async () => {
    await simulate("Europe/London", "2026-03-27T12:00:00Z", "2026-03-30T12:00:00Z", [
      {
        s: { frequency: "daily", time: "01:30" },
        expected: [
          ["2026-03-27T01:30:00.000Z", "2026-03-28T01:30:00.000Z"],
          ["2026-03-28T01:30:00.000Z", "2026-03-29T01:00:00.000Z"],
          ["2026-03-29T01:00:00.000Z", "2026-03-30T00:30:00.000Z"],
        ],
      },
    ]);
    await simulate("Europe/London", "2026-10-24T12:00:00Z", "2026-10-26T12:00:00Z", [
      {
        s: { frequency: "interval", everyMinutes: 30 },
        between: ["2026-10-24T23:00:00Z", "2026-10-25T02:30:00Z"],
        expected: [
          ["2026-10-24T23:00:00.000Z", "2026-10-24T23:30:00.000Z"],
          ["2026-10-24T23:30:00.000Z", "2026-10-25T00:00:00.000Z"],
          ["2026-10-25T00:00:00.000Z", "2026-10-25T00:30:00.000Z"],
          ["2026-10-25T00:30:00.000Z", "2026-10-25T02:00:00.000Z"],
          ["2026-10-25T02:00:00.000Z", "2026-10-25T02:30:00.000Z"],
        ],
      },
      {
        s: { frequency: "daily", time: "01:30", delayMinutes: 15 },
        expected: [
          ["2026-10-24T00:30:00.000Z", "2026-10-25T00:30:00.000Z"],
          ["2026-10-25T00:30:00.000Z", "2026-10-26T01:30:00.000Z"],
        ],
      },
    ]);
  });

  it("Australia/Lord_Howe, 30-minute changes", async () => {
    await simulate("Australia/Lord_Howe", "2026-10-02T12:00:00Z", "2026-10-04T20:00:00Z", [
      {
        s: { frequency: "daily", time: "02:15" },
        expected: [
          ["2026-10-01T15:45:00.000Z", "2026-10-02T15:45:00.000Z"],
          ["2026-10-02T15:45:00.000Z", "2026-10-03T15:30:00.000Z"],
          ["2026-10-03T15:30:00.000Z", "2026-10-04T15:15:00.000Z"],
        ],
      },
      {
        s: { frequency: "interval", everyMinutes: 30 },
        between: ["2026-10-03T14:00:00Z", "2026-10-03T16:00:00Z"],
        expected: [
          ["2026-10-03T14:00:00.000Z", "2026-10-03T14:30:00.000Z"],
          ["2026-10-03T14:30:00.000Z", "2026-10-03T15:00:00.000Z"],
          ["2026-10-03T15:00:00.000Z", "2026-10-03T15:30:00.000Z"],
          ["2026-10-03T15:30:00.000Z", "2026-10-03T16:00:00.000Z"],
        ],
      },
    ]);
    await simulate("Australia/Lord_Howe", "2026-04-03T12:00:00Z", "2026-04-05T20:00:00Z", [
      {
        s: { frequency: "daily", time: "01:45" },
        expected: [
          ["2026-04-02T14:45:00.000Z", "2026-04-03T14:45:00.000Z"],
          ["2026-04-03T14:45:00.000Z", "2026-04-04T14:45:00.000Z"],
          ["2026-04-04T14:45:00.000Z", "2026-04-05T15:15:00.000Z"],
        ],
      },
      {
        s: { frequency: "interval", everyMinutes: 30 },
        between: ["2026-04-04T13:30:00Z", "2026-04-04T16:00:00Z"],
        expected: [
          ["2026-04-04T13:30:00.000Z", "2026-04-04T14:00:00.000Z"],
          ["2026-04-04T14:00:00.000Z", "2026-04-04T14:30:00.000Z"],
          ["2026-04-04T14:30:00.000Z", "2026-04-04T15:30:00.000Z"],
          ["2026-04-04T15:30:00.000Z", "2026-04-04T16:00:00.000Z"],
        ],
      },
    ]);
  });
});
