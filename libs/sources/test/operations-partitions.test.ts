import fc from "fast-check";
import { agentActivityForWindow, agentStates, directoryFor, queueHealthForWindow, queueHealthMetrics, startSimulator, type Simulator } from "@transporter/simulator";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { createPlatform, type SourceApi } from "../src/index.js";
import { collect, newAccount, SEED } from "./helpers.js";

/**
 * Messaging Operations windows that are off the interval grid (time zones at :30/:45, windows
 * shorter than the interval, manual runs): consecutive windows must together deliver every
 * interval exactly once. An interval belongs to the window its END falls in (from < end ≤ to).
 *
 * Only `Date` is faked (timers stay real), so the request signatures, the simulator and the
 * platform all read one clock that the tests move at will.
 */
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
/** A fixed day far from the real clock: nothing here depends on when the tests run. */
const BASE = Date.UTC(2026, 2, 10);

let sim: Simulator;
beforeAll(async () => {
  vi.useFakeTimers({ toFake: ["Date"] });
  vi.setSystemTime(BASE);
  sim = await startSimulator({ seed: SEED, now: () => Date.now() });
});
afterAll(async () => {
  await sim?.stop();
  vi.useRealTimers();
});

type Api = Extract<SourceApi, "messaging-operations-agent-activity" | "messaging-operations-queue-health">;

function session() {
  const platform = createPlatform({ csdsUrl: sim.url, dataAccessUrl: sim.url, allowInsecure: true, now: () => Date.now(), http: { timeoutMs: 5_000 } });
  const { accountId, credentials } = newAccount(sim);
  const get = async (api: Api, from: number, to: number, intervalMinutes: number) =>
    (await collect(platform.openSource(accountId, credentials).fetch(api, { from: new Date(from), to: new Date(to) }, { params: { intervalMinutes } }))) as Array<Record<string, unknown>>;
  return { accountId, get };
}

const keyOf = (api: Api, r: Record<string, unknown>) => `${r.timestamp}:${api === "messaging-operations-agent-activity" ? r.agentId : r.skillId}`;

/** Every (interval, agent | skill) whose interval ENDS in (from, to], in the connector's order. */
function everyIntervalEndingIn(api: Api, accountId: string, from: number, to: number, intervalMinutes: number): string[] {
  const size = intervalMinutes * MINUTE;
  const dir = directoryFor(accountId, SEED);
  const ids = api === "messaging-operations-agent-activity" ? dir.agents.filter((a) => !a.deleted).map((a) => a.id) : dir.skills.filter((s) => !s.deleted).map((s) => s.id);
  const out: string[] = [];
  for (let end = Math.floor(from / size) * size + size; end <= to; end += size) {
    const stamp = api === "messaging-operations-agent-activity" ? end : end - size;
    for (const id of [...ids].sort((a, b) => a - b)) out.push(`${stamp}:${id}`);
  }
  return out;
}

/** The figures of a whole interval, as the simulator computes them. */
function expectWhole(api: Api, accountId: string, r: Record<string, unknown>) {
  const minutes = r.intervalMinutes as number;
  if (api === "messaging-operations-agent-activity") {
    expect(r.states).toEqual(agentStates(accountId, SEED, r.agentId as number, (r.timestamp as number) - minutes * MINUTE, minutes));
  } else {
    const { timestamp, intervalMinutes: _m, skillId, ...metrics } = r;
    expect(metrics).toEqual(queueHealthMetrics(accountId, SEED, skillId as number, timestamp as number, minutes));
  }
}

/** Window edges: the last edge at a time-zone-like offset past the hour (:00/:15/:30/:45 or anything), then lengths back. */
const edgesArb = fc.record({
  api: fc.constantFrom<Api>("messaging-operations-agent-activity", "messaging-operations-queue-health"),
  intervalMinutes: fc.constantFrom(15, 30, 60),
  nowOffset: fc.integer({ min: 0, max: 24 * HOUR - 1 }), // now, past BASE
  zone: fc.oneof(fc.constantFrom(0, 15, 30, 45).map((m) => m * MINUTE), fc.integer({ min: 0, max: HOUR - 1 })),
  lengths: fc.array(fc.oneof(fc.integer({ min: 1, max: 16 }).map((n) => n * 15), fc.integer({ min: 15, max: 240 })), { minLength: 1, maxLength: 5 }), // minutes
});

function edges(now: number, lag: number, zone: number, lengths: number[]): number[] {
  let last = Math.floor((now - lag) / HOUR) * HOUR + zone;
  if (last > now - lag) last -= HOUR;
  const bounds = [last];
  for (const n of lengths) bounds.unshift(bounds[0]! - n * MINUTE);
  return bounds;
}

describe("consecutive off-grid windows deliver every interval exactly once (property)", () => {
  it("manual runs: all windows fetched at one time, within the look-back", async () => {
    await fc.assert(
      fc.asyncProperty(edgesArb, fc.integer({ min: 0, max: 100 }), async ({ api, intervalMinutes, nowOffset, zone, lengths }, lagMinutes) => {
        const now = BASE + nowOffset;
        vi.setSystemTime(now);
        // At most 5 × 240 minutes + 100 + 60 back: within 1440 minutes less one interval.
        const bounds = edges(now, lagMinutes * MINUTE, zone, lengths);
        const { accountId, get } = session();
        const got: string[] = [];
        for (let w = 0; w + 1 < bounds.length; w++) {
          for (const r of await get(api, bounds[w]!, bounds[w + 1]!, intervalMinutes)) {
            expectWhole(api, accountId, r);
            got.push(keyOf(api, r));
          }
        }
        const want = everyIntervalEndingIn(api, accountId, bounds[0]!, bounds.at(-1)!, intervalMinutes);
        expect(got).toEqual(want); // each once, in order, none missing
        // The simulator's expected records for the covered span are the same.
        const expected = api === "messaging-operations-agent-activity" ? agentActivityForWindow : queueHealthForWindow;
        expect([...expected(accountId, bounds[0]!, bounds.at(-1)!, SEED, intervalMinutes)].map((r) => keyOf(api, r))).toEqual(want);
      }),
      { numRuns: 40 },
    );
  });

  it("scheduled runs: each window fetched when it closes or a few minutes later", async () => {
    await fc.assert(
      fc.asyncProperty(edgesArb, fc.array(fc.integer({ min: 0, max: 10 * MINUTE }), { minLength: 5, maxLength: 5 }), async ({ api, intervalMinutes, nowOffset, zone, lengths }, delays) => {
        const bounds = edges(BASE + nowOffset, 0, zone, lengths);
        const { accountId, get } = session();
        const got: string[] = [];
        for (let w = 0; w + 1 < bounds.length; w++) {
          vi.setSystemTime(bounds[w + 1]! + delays[w]!);
          for (const r of await get(api, bounds[w]!, bounds[w + 1]!, intervalMinutes)) {
            expectWhole(api, accountId, r);
            got.push(keyOf(api, r));
          }
        }
        expect(got).toEqual(everyIntervalEndingIn(api, accountId, bounds[0]!, bounds.at(-1)!, intervalMinutes));
      }),
      { numRuns: 40 },
    );
  });
});

describe("the reviewer's reproductions", () => {
  it("windows at :30 past the hour with 60-minute intervals each hold the interval ending inside them", async () => {
    const H = BASE + 12 * HOUR;
    vi.setSystemTime(H + 7 * MINUTE);
    const { accountId, get } = session();
    const first = await get("messaging-operations-agent-activity", H - 150 * MINUTE, H - 90 * MINUTE, 60);
    const second = await get("messaging-operations-agent-activity", H - 90 * MINUTE, H - 30 * MINUTE, 60);
    expect(new Set(first.map((r) => r.timestamp))).toEqual(new Set([H - 2 * HOUR]));
    expect(new Set(second.map((r) => r.timestamp))).toEqual(new Set([H - HOUR]));
    expect(first).toEqual([...agentActivityForWindow(accountId, H - 150 * MINUTE, H - 90 * MINUTE, SEED, 60)]);
    expect(second).toEqual([...agentActivityForWindow(accountId, H - 90 * MINUTE, H - 30 * MINUTE, SEED, 60)]);
  });

  it("16 consecutive 15-minute windows with 30-minute intervals deliver the 8 intervals once each", async () => {
    const H = BASE + 12 * HOUR;
    vi.setSystemTime(H + 2 * MINUTE);
    const { accountId, get } = session();
    const got: string[] = [];
    for (let w = 16; w > 0; w--) {
      for (const r of await get("messaging-operations-agent-activity", H - w * 15 * MINUTE, H - (w - 1) * 15 * MINUTE, 30)) got.push(keyOf("messaging-operations-agent-activity", r));
    }
    expect(new Set(got.map((k) => Number(k.split(":")[0])))).toEqual(new Set([1, 2, 3, 4, 5, 6, 7, 8].map((n) => H - 4 * HOUR + n * 30 * MINUTE)));
    expect(got).toEqual(everyIntervalEndingIn("messaging-operations-agent-activity", accountId, H - 4 * HOUR, H, 30));
  });

  it("msgqueuehealth: a 15-minute window fetched as it closes does not lose the 30-minute interval still running", async () => {
    const H = BASE + 12 * HOUR;
    const { accountId, get } = session();
    const got: string[] = [];
    for (const [from, to] of [[H, H + 15 * MINUTE], [H + 15 * MINUTE, H + 30 * MINUTE]] as const) {
      vi.setSystemTime(to + 1_000);
      for (const r of await get("messaging-operations-queue-health", from, to, 30)) got.push(keyOf("messaging-operations-queue-health", r));
    }
    expect(got).toEqual(everyIntervalEndingIn("messaging-operations-queue-health", accountId, H, H + 30 * MINUTE, 30));
    expect(got.length).toBeGreaterThan(0);
  });
});
