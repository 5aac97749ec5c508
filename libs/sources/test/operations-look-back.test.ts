import { agentActivityForWindow, queueHealthForWindow, startSimulator, type Simulator } from "@transporter/simulator";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { createPlatform, type SourceApi } from "../src/index.js";
import { collect, failure, newAccount, SEED } from "./helpers.js";

/**
 * Messaging Operations only looks back 1440 minutes. A window whose first interval starts before
 * the data the API can give at fetch time (a daily window fetched after it closes) cannot be
 * delivered whole: it is refused (unsupported_window, permanent), never delivered without its
 * first interval while the run succeeds.
 *
 * Only `Date` is faked, so the request signatures, the simulator and the platform read one clock.
 */
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
/** A day boundary far from the real clock: nothing here depends on when the tests run. */
const MIDNIGHT = Date.UTC(2026, 2, 11);

let sim: Simulator;
beforeAll(async () => {
  vi.useFakeTimers({ toFake: ["Date"] });
  vi.setSystemTime(MIDNIGHT);
  sim = await startSimulator({ seed: SEED, now: () => Date.now() });
});
afterAll(async () => {
  await sim?.stop();
  vi.useRealTimers();
});

type Api = Extract<SourceApi, "messaging-operations-agent-activity" | "messaging-operations-queue-health">;

/** Fetches [from, to) at `now` with `intervalMinutes`. */
async function fetchAt(api: Api, now: number, from: number, to: number, intervalMinutes: number) {
  vi.setSystemTime(now);
  const platform = createPlatform({ csdsUrl: sim.url, dataAccessUrl: sim.url, allowInsecure: true, now: () => Date.now(), http: { timeoutMs: 5_000 } });
  const { accountId, credentials } = newAccount(sim);
  const result = collect(platform.openSource(accountId, credentials).fetch(api, { from: new Date(from), to: new Date(to) }, { params: { intervalMinutes } }));
  return { accountId, result: result as Promise<Array<Record<string, unknown>>> };
}

const expected = (api: Api) => (api === "messaging-operations-agent-activity" ? agentActivityForWindow : queueHealthForWindow);

describe("a window whose first interval is out of the 24-hour look-back", () => {
  it("agentactivity: a daily window fetched a minute after it closes is refused, not delivered with 287 of its 288 intervals", async () => {
    const from = MIDNIGHT - DAY;
    const { result } = await fetchAt("messaging-operations-agent-activity", MIDNIGHT + MINUTE, from, MIDNIGHT, 5);
    const error = await failure(result);
    expect(error).toMatchObject({ code: "unsupported_window", permanent: true });
    expect(error.message).toContain("only looks back 24 hours");
    // Names the interval that cannot be served (the window's first, 00:00–00:05) and the way out.
    expect(error.message).toContain(`first 5-minute interval, starting at ${new Date(from).toISOString()}`);
    expect(error.message).toContain("schedule this report in shorter windows or with less delay");
  });

  it.each([1, 10, 15])("agentactivity: 15-minute intervals, a daily window fetched %i minutes late is refused, not short of its first quarter hour", async (late) => {
    const { result } = await fetchAt("messaging-operations-agent-activity", MIDNIGHT + late * MINUTE, MIDNIGHT - DAY, MIDNIGHT, 15);
    expect(await failure(result)).toMatchObject({ code: "unsupported_window", permanent: true });
  });

  it("agentactivity: off the grid (60-minute intervals, a window at :20), the interval crossing the window's start is out of reach: refused", async () => {
    // Data from 00:07 the day before (now 00:07, 1440 minutes back); the window starts 00:20 the
    // day before, within the data, but its first interval (00:00–01:00) starts before it.
    const now = MIDNIGHT + 7 * MINUTE;
    const { result } = await fetchAt("messaging-operations-agent-activity", now, MIDNIGHT - DAY + 20 * MINUTE, MIDNIGHT - 2 * HOUR, 60);
    const error = await failure(result);
    expect(error).toMatchObject({ code: "unsupported_window", permanent: true });
    expect(error.message).toContain(`starting at ${new Date(MIDNIGHT - DAY).toISOString()}`);
  });

  it("msgqueuehealth: an interval the API no longer gives (a daily window fetched one interval late) is refused, not left out", async () => {
    // The simulator counts msgqueuehealth intervals on the interval grid: at 00:15, 1440 minutes
    // back reach 00:15 the day before, and the window's first interval (00:00–00:15) is not given.
    const { result } = await fetchAt("messaging-operations-queue-health", MIDNIGHT + 15 * MINUTE, MIDNIGHT - DAY, MIDNIGHT, 15);
    expect(await failure(result)).toMatchObject({ code: "unsupported_window", permanent: true });
  });
});

describe("windows that fit keep working", () => {
  it.each<[Api, number]>([
    ["messaging-operations-agent-activity", 5],
    ["messaging-operations-agent-activity", 15],
    ["messaging-operations-queue-health", 15],
  ])("%s (%i-minute intervals): a daily window fetched the moment it closes is delivered whole", async (api, intervalMinutes) => {
    const from = MIDNIGHT - DAY;
    const { accountId, result } = await fetchAt(api, MIDNIGHT, from, MIDNIGHT, intervalMinutes);
    const records = await result;
    const want = [...expected(api)(accountId, from, MIDNIGHT, SEED, intervalMinutes)];
    expect(new Set(records.map((r) => r.timestamp)).size).toBe(DAY / (intervalMinutes * MINUTE));
    expect(records).toEqual(want);
  });

  it.each<[Api, number]>([
    ["messaging-operations-agent-activity", 15],
    ["messaging-operations-queue-health", 15],
    ["messaging-operations-agent-activity", 60],
  ])("%s (%i-minute intervals): a 12-hour window fetched 5 minutes after it closes is delivered whole", async (api, intervalMinutes) => {
    const from = MIDNIGHT - 12 * HOUR;
    const { accountId, result } = await fetchAt(api, MIDNIGHT + 5 * MINUTE, from, MIDNIGHT, intervalMinutes);
    expect(await result).toEqual([...expected(api)(accountId, from, MIDNIGHT, SEED, intervalMinutes)]);
  });

  it("agentactivity: a window whose first interval starts right where the API's data starts is delivered whole", async () => {
    // 1440 minutes back from now (00:00) is 00:00 the day before; the window starts at 00:10, and
    // its first interval (00:00–00:15) is whole in the response.
    const from = MIDNIGHT - DAY + 10 * MINUTE;
    const to = MIDNIGHT - 2 * HOUR;
    const { accountId, result } = await fetchAt("messaging-operations-agent-activity", MIDNIGHT, from, to, 15);
    const records = await result;
    expect(records[0]).toMatchObject({ timestamp: MIDNIGHT - DAY + 15 * MINUTE });
    expect(records).toEqual([...agentActivityForWindow(accountId, from, to, SEED, 15)]);
  });
});
