import { createHmac, randomBytes } from "node:crypto";
import OAuth from "oauth-1.0a";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { agentActivityForWindow, agentActivityIntervals, agentStates, queueHealthForWindow, startSimulator, type Simulator } from "../src/index.js";

/**
 * Messaging Operations interval timestamps as each method documents them: agentactivity gives the
 * interval's END ("the UTC timestamp in milliseconds representing the end time of the interval";
 * rounded up to 5 minutes, the earliest interval holding only the remainder of the timeframe);
 * msgqueuehealth gives its START.
 */
const MINUTE = 60_000;
const creds = { consumerKey: "ck-" + randomBytes(4).toString("hex"), consumerSecret: "cs", token: "tk", tokenSecret: "ts" };
const account = "665544";
const SEED = "sim-ops-tests";
/** The simulator's clock (requests are signed at the same time): 08:07 as in the documentation. */
const NOW = Date.UTC(2026, 2, 26, 8, 7);
let sim: Simulator;

function signed(url: string): Record<string, string> {
  const oauth = new OAuth({
    consumer: { key: creds.consumerKey, secret: creds.consumerSecret },
    signature_method: "HMAC-SHA1",
    hash_function: (base, key) => createHmac("sha1", key).update(base).digest("base64"),
  });
  oauth.getTimeStamp = () => Math.floor(NOW / 1000);
  return { ...oauth.toHeader(oauth.authorize({ url, method: "GET" }, { key: creds.token, secret: creds.tokenSecret })) } as Record<string, string>;
}

interface State {
  id: number;
  value: { total: number };
}
interface Block {
  timestamp: number;
  metricsData: { agentsMetrics: { metricsPerAgent: Record<string, State[]> }; skillsMetrics: Record<string, unknown> };
}

async function get(path: string): Promise<{ metricsByIntervals: Block[] }> {
  const url = `${sim.url}/operations/api/account/${account}/${path}`;
  const res = await fetch(url, { headers: signed(url) });
  expect(res.status).toBe(200);
  return (await res.json()) as { metricsByIntervals: Block[] };
}

beforeAll(async () => {
  sim = await startSimulator({ seed: SEED, now: () => NOW });
  sim.control.registerAccount(account, creds);
});
afterAll(async () => {
  await sim?.stop();
});

describe("agentactivity intervals", () => {
  it("follows the documented example: now 08:07, timeframe=20, interval=10 → 08:10, 08:00, 07:50 (07:47–07:50 only)", () => {
    const base = Date.UTC(2026, 2, 26, 8, 7);
    expect(agentActivityIntervals(base, 20, 10)).toEqual([
      { timestamp: Date.UTC(2026, 2, 26, 8, 10), dataFrom: Date.UTC(2026, 2, 26, 8, 0), dataTo: base },
      { timestamp: Date.UTC(2026, 2, 26, 8, 0), dataFrom: Date.UTC(2026, 2, 26, 7, 50), dataTo: Date.UTC(2026, 2, 26, 8, 0) },
      { timestamp: Date.UTC(2026, 2, 26, 7, 50), dataFrom: Date.UTC(2026, 2, 26, 7, 47), dataTo: Date.UTC(2026, 2, 26, 7, 50) },
    ]);
    // On the grid nothing is rounded and nothing is partial.
    const on = Date.UTC(2026, 2, 26, 8, 0);
    expect(agentActivityIntervals(on, 20, 10).map((i) => [i.timestamp, i.dataTo - i.dataFrom])).toEqual([
      [on, 10 * MINUTE],
      [on - 10 * MINUTE, 10 * MINUTE],
    ]);
  });

  it("serves interval END timestamps, the running interval rounded up and the earliest partial", async () => {
    const body = await get("agentactivity?timeframe=20&agentIds=all&interval=10&v=1");
    const grid = NOW - 7 * MINUTE; // "08:00"
    const stamps = body.metricsByIntervals.map((b) => b.timestamp);
    expect(stamps).toEqual([grid + 10 * MINUTE, grid, grid - 10 * MINUTE]);
    const loggedIn = (block: Block) => Object.values(block.metricsData.agentsMetrics.metricsPerAgent).map((states) => states.find((s) => s.id === -1)!.value.total);
    // 08:00–08:10 holds 7 minutes so far; 07:40–07:50 holds only 07:47–07:50.
    for (const t of loggedIn(body.metricsByIntervals[0]!)) expect(t).toBeLessThanOrEqual(7 * 60);
    for (const t of loggedIn(body.metricsByIntervals[2]!)) expect(t).toBeLessThanOrEqual(3 * 60);
    // The whole interval 07:50–08:00 carries the figures the window generator computes for it.
    const perAgent = body.metricsByIntervals[1]!.metricsData.agentsMetrics.metricsPerAgent;
    for (const r of agentActivityForWindow(account, grid - 10 * MINUTE, grid, SEED, 10)) {
      expect(r.timestamp).toBe(grid);
      expect(perAgent[String(r.agentId)]).toEqual(r.states);
      expect(r.states).toEqual(agentStates(account, SEED, r.agentId as number, grid - 10 * MINUTE, 10));
    }
  });
});

describe("msgqueuehealth intervals", () => {
  it("serves interval START timestamps, as documented for this method", async () => {
    const body = await get("msgqueuehealth?timeframe=30&skillIds=all&interval=10&v=1");
    const grid = NOW - 7 * MINUTE;
    expect(body.metricsByIntervals.map((b) => b.timestamp)).toEqual([grid - 10 * MINUTE, grid - 20 * MINUTE, grid - 30 * MINUTE]);
    const first = [...queueHealthForWindow(account, grid - 10 * MINUTE, grid, SEED, 10)];
    expect(first.length).toBeGreaterThan(0);
    for (const r of first) {
      expect(r.timestamp).toBe(grid - 10 * MINUTE);
      const { timestamp: _t, intervalMinutes: _m, skillId, ...metrics } = r;
      expect(body.metricsByIntervals[0]!.metricsData.skillsMetrics[String(skillId)]).toEqual(metrics);
    }
  });
});
