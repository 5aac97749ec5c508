import fc from "fast-check";
import { agentActivityForWindow, queueHealthForWindow, startSimulator, type Simulator } from "@transporter/simulator";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { keepsInterval } from "../src/connectors/operations.js";
import { createPlatform, type Platform } from "../src/index.js";
import { collect, newAccount, SEED } from "./helpers.js";

/**
 * Which Messaging Operations intervals a window keeps. agentactivity documents each interval's
 * `timestamp` as the interval's END (07:30–08:00 → 08:00; intervals rounded up to 5 minutes, the
 * earliest holding only the remainder of the timeframe); msgqueuehealth documents its START.
 *
 * The simulator and the platform share one clock here. It stays within the simulator's OAuth
 * skew allowance of the real clock (requests are signed with the real time).
 */
const MINUTE = 60_000;
const FIVE = 5 * MINUTE;
const HOUR = 60 * MINUTE;

let clock = Date.now();
let sim: Simulator;
let platform: Platform;
beforeAll(async () => {
  sim = await startSimulator({ seed: SEED, now: () => clock });
  platform = createPlatform({ csdsUrl: sim.url, dataAccessUrl: sim.url, allowInsecure: true, now: () => clock, http: { timeoutMs: 5_000 } });
});
afterAll(async () => {
  await sim?.stop();
});

/** A clock `minutes` past a 5-minute mark, within 2.5 minutes of the real time. */
function clockAt(minutesPastGrid: number): number {
  return Math.round((Date.now() - minutesPastGrid * MINUTE) / FIVE) * FIVE + minutesPastGrid * MINUTE;
}

/** The real time, nudged off the `step` grid. */
function offGrid(step: number): number {
  const now = Date.now();
  return now % step === 0 ? now + 1 : now;
}

async function fetchAgentActivity(accountId: string, credentials: Parameters<Platform["openSource"]>[1], from: number, to: number, intervalMinutes: number) {
  return (await collect(platform.openSource(accountId, credentials).fetch("messaging-operations-agent-activity", { from: new Date(from), to: new Date(to) }, { params: { intervalMinutes } }))) as Array<Record<string, unknown>>;
}

describe("keepsInterval", () => {
  const i = 10 * MINUTE;
  const from = Date.UTC(2026, 9, 5, 7, 50);
  const to = Date.UTC(2026, 9, 5, 8, 0);
  const dataFrom = Date.UTC(2026, 9, 5, 7, 47);

  it("END timestamps: keeps an interval ending in (from, to], so consecutive windows share out every interval once", () => {
    expect(keepsInterval("end", from, i, from, to, dataFrom)).toBe(false); // ends exactly at from: the previous window's
    expect(keepsInterval("end", to, i, from, to, dataFrom)).toBe(true); // ends exactly at to: the window's last interval
    expect(keepsInterval("end", to + i, i, from, to, dataFrom)).toBe(false); // rounded up past "now": still running
    expect(keepsInterval("end", Number.NaN, i, from, to, dataFrom)).toBe(false);
    // Window edges off the interval grid (a :30/:45 time zone, a window shorter than the interval):
    // an interval crossing `from` belongs to this window, one crossing `to` to the next.
    // (Before: both were dropped, by both windows.)
    const whole = from - i; // data reaching back far enough for the interval crossing `from` to be whole
    expect(keepsInterval("end", from + 5 * MINUTE, i, from, to, whole)).toBe(true); // crosses from
    expect(keepsInterval("end", to + 5 * MINUTE, i, from, to, whole)).toBe(false); // crosses to
    expect(keepsInterval("end", from + 5 * MINUTE, i, from, from + 6 * MINUTE, whole)).toBe(true); // window shorter than the interval
    expect(keepsInterval("end", from + 5 * MINUTE, i, from + 6 * MINUTE, to, whole)).toBe(false); // … not again by the next one
  });

  it("END timestamps: never keeps the partial earliest interval as a whole one", () => {
    // Data starts at 07:52 (now − timeframe): the interval ending 08:00 holds only 8 minutes.
    expect(keepsInterval("end", to, i, from, to, from + 2 * MINUTE)).toBe(false);
    expect(keepsInterval("end", to, i, from, to, from)).toBe(true);
    // Data starts at 07:47: the interval 07:45–07:55 crossing `from` holds only 8 minutes.
    expect(keepsInterval("end", from + 5 * MINUTE, i, from, to, dataFrom)).toBe(false);
  });

  it("START timestamps (msgqueuehealth): kept when the interval ENDS in (from, to], like agentactivity's", () => {
    // On the grid: the intervals lying inside the window, as before.
    expect(keepsInterval("start", from, i, from, to, dataFrom)).toBe(true);
    expect(keepsInterval("start", to, i, from, to, dataFrom)).toBe(false);
    expect(keepsInterval("start", from - i, i, from, to, dataFrom)).toBe(false);
    // Off the grid (before: kept when it STARTED inside the window, so an interval still running
    // when a window was fetched just after closing was lost by that window and by the next):
    expect(keepsInterval("start", from - 5 * MINUTE, i, from, to, dataFrom)).toBe(true); // crosses from
    expect(keepsInterval("start", to - 5 * MINUTE, i, from, to, dataFrom)).toBe(false); // crosses to: the next window's
  });
});

describe("agentactivity windows (END timestamps) against the simulator", () => {
  it("the documented example: now 08:07, 10-minute intervals, window 07:50–08:00 keeps only 07:50–08:00", async () => {
    clock = clockAt(2); // hh:m7 or hh:m2, like 08:07
    const to = Math.floor(clock / (10 * MINUTE)) * 10 * MINUTE; // 08:00
    const from = to - 10 * MINUTE; // 07:50
    const { accountId, credentials } = newAccount(sim);
    const records = await fetchAgentActivity(accountId, credentials, from, to, 10);
    expect(records.length).toBeGreaterThan(0);
    // The interval ending at `from` (07:40–07:50) is left out, the one ending at `to` is kept,
    // and the running one (rounded up to 08:10) is not.
    expect(new Set(records.map((r) => r.timestamp))).toEqual(new Set([to]));
    expect(records).toEqual([...agentActivityForWindow(accountId, from, to, SEED, 10)]);
  });

  it("an interval ending exactly at `from` is excluded and one ending exactly at `to` is included", async () => {
    clock = offGrid(15 * MINUTE);
    const to = Math.floor(clock / (15 * MINUTE)) * 15 * MINUTE - 2 * HOUR;
    const from = to - HOUR;
    const { accountId, credentials } = newAccount(sim);
    const stamps = new Set((await fetchAgentActivity(accountId, credentials, from, to, 15)).map((r) => r.timestamp));
    expect(stamps.has(from)).toBe(false);
    expect(stamps.has(to)).toBe(true);
    expect([...stamps].sort()).toEqual([from + 15 * MINUTE, from + 30 * MINUTE, from + 45 * MINUTE, to]);
  });

  it("refuses a daily window fetched just after it closes rather than deliver it without its first interval", async () => {
    // A moment after the window closes, the API's 24-hour look-back starts that moment into the
    // window: its first interval is only partly in the data. (Before: left out, the run succeeding
    // with the window short of its first interval.)
    clock = offGrid(15 * MINUTE);
    const to = Math.floor(clock / (15 * MINUTE)) * 15 * MINUTE;
    const from = to - 24 * HOUR;
    const { accountId, credentials } = newAccount(sim);
    const error = await fetchAgentActivity(accountId, credentials, from, to, 15).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ code: "unsupported_window", permanent: true });
  });

  it("consecutive windows aligned to 5 minutes together hold every interval exactly once (property)", async () => {
    const { accountId, credentials } = newAccount(sim);
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: -200_000, max: 200_000 }), // now, in ms around the real time (within the OAuth skew allowance)
        fc.constantFrom(5, 15), // interval minutes; window bounds are multiples of it (so of 5 minutes)
        fc.integer({ min: 0, max: 30 }), // the last window ends this many intervals before now's interval
        fc.array(fc.integer({ min: 1, max: 8 }), { minLength: 1, maxLength: 6 }), // window lengths in intervals
        async (nowOffset, intervalMinutes, lag, lengths) => {
          clock = Date.now() + nowOffset;
          const step = intervalMinutes * MINUTE;
          const end = (Math.floor(clock / step) - lag) * step;
          const bounds = [end];
          for (const n of lengths) bounds.unshift(bounds[0]! - n * step);
          const got: string[] = [];
          for (let w = 0; w + 1 < bounds.length; w++) {
            for (const r of await fetchAgentActivity(accountId, credentials, bounds[w]!, bounds[w + 1]!, intervalMinutes)) {
              expect(r.timestamp as number).toBeGreaterThanOrEqual(bounds[w]! + step);
              expect(r.timestamp as number).toBeLessThanOrEqual(bounds[w + 1]!);
              got.push(`${r.timestamp}:${r.agentId}`);
            }
          }
          const want = [...agentActivityForWindow(accountId, bounds[0]!, end, SEED, intervalMinutes)].map((r) => `${r.timestamp}:${r.agentId}`);
          expect(want.length).toBeGreaterThan(0);
          expect(got).toEqual(want); // each once, in order, none missing
        },
      ),
      { numRuns: 25 },
    );
  });
});

describe("msgqueuehealth windows (START timestamps) against the simulator", () => {
  it("keeps the intervals starting inside the window, as before", async () => {
    clock = offGrid(15 * MINUTE);
    const to = Math.floor(clock / (15 * MINUTE)) * 15 * MINUTE - HOUR;
    const from = to - HOUR;
    const { accountId, credentials } = newAccount(sim);
    const records = (await collect(platform.openSource(accountId, credentials).fetch("messaging-operations-queue-health", { from: new Date(from), to: new Date(to) }))) as Array<Record<string, unknown>>;
    expect(new Set(records.map((r) => r.timestamp))).toEqual(new Set([from, from + 15 * MINUTE, from + 30 * MINUTE, from + 45 * MINUTE]));
    expect(records).toEqual([...queueHealthForWindow(accountId, from, to, SEED, 15)]);
  });
});
