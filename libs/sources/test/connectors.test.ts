import {
  agentActivityForWindow,
  agentGroupsResource,
  conversationsForWindow,
  dataAccessRecordsForWindow,
  engagementsForWindow,
  queueHealthForWindow,
  skillsResource,
  usersResource,
  type Simulator,
} from "@transporter/simulator";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rawJsonOf, SOURCE_API_LABELS, SOURCE_APIS, type FetchWindow, type SourceApi } from "../src/index.js";
import { collect, failure, ndjson, newAccount, newCredentials, platformFor, SEED, startSimulator } from "./helpers.js";

let sim: Simulator;
beforeAll(async () => {
  sim = await startSimulator({ seed: SEED });
});
afterAll(async () => {
  await sim?.stop();
});

const HOUR = 3_600_000;
const VOLUME = { conversations: 20, engagements: 15, dataAccess: 6 };

/** A past window with bounds off the 10-minute grid, so the API's rounding returns extra records. */
const WINDOW: FetchWindow = { from: new Date("2026-10-04T00:03:17Z"), to: new Date("2026-10-04T09:57:01Z") };

type Expected = (accountId: string, window: FetchWindow) => unknown[];

const dataAccess = (type: "agentActivity" | "webSession" | "engagement" | "survey"): Expected => (accountId, w) => [
  ...dataAccessRecordsForWindow(accountId, type, w.from, w.to, SEED, { perHour: VOLUME.dataAccess }),
];

/** Paged, windowed APIs and what the simulator holds for a window. */
const PAGED: Array<{ api: SourceApi; expected: Expected; pageSize?: number }> = [
  { api: "messaging-interactions", expected: (a, w) => [...conversationsForWindow(a, w.from, w.to, SEED, { perHour: VOLUME.conversations })], pageSize: 30 },
  { api: "engagement-history", expected: (a, w) => [...engagementsForWindow(a, w.from, w.to, SEED, { perHour: VOLUME.engagements })], pageSize: 25 },
  { api: "data-access-agent-activity", expected: dataAccess("agentActivity") },
  { api: "data-access-web-session", expected: dataAccess("webSession") },
  { api: "data-access-engagement", expected: dataAccess("engagement") },
  { api: "data-access-survey", expected: dataAccess("survey") },
];

// Whole records, and records as received (bytes plus the fields windowing reads: the fetcher's way).
const MODES = PAGED.flatMap((p) => [{ ...p, asReceived: false }, { ...p, asReceived: true }]);

describe.each(MODES)("$api (asReceived: $asReceived)", ({ api, expected, pageSize, asReceived }) => {
  const options = { ...(pageSize ? { pageSize } : {}), asReceived };

  it("pages to the end and yields exactly the window's records, in order (outside-window records dropped)", async () => {
    const { accountId, credentials } = newAccount(sim, { volume: VOLUME });
    const { platform } = platformFor(sim);
    const source = platform.openSource(accountId, credentials);
    const records = await collect(source.fetch(api, WINDOW, options));
    const want = expected(accountId, WINDOW);
    expect(want.length).toBeGreaterThan(30);
    expect(ndjson(records)).toBe(ndjson(want));
    expect(source.calls).toBeGreaterThan(2);
    if (asReceived && (api === "messaging-interactions" || api === "engagement-history")) {
      // The lean path was taken: only `info` parsed, the rest kept as the bytes received.
      for (const record of records) {
        expect(Object.keys(record)).toEqual(["info"]);
        expect(Buffer.isBuffer(rawJsonOf(record))).toBe(true);
      }
    }
  });

  it("splits the window into ranges and still yields each record once", async () => {
    const { accountId, credentials } = newAccount(sim, { volume: VOLUME });
    const { platform } = platformFor(sim);
    const split = await collect(platform.openSource(accountId, credentials).fetch(api, WINDOW, { ...options, maxRangeMs: 3 * HOUR }));
    expect(ndjson(split)).toBe(ndjson(expected(accountId, WINDOW)));
    const firstPages = sim.control.requestLog(accountId).filter((r) => r.api === api && (r.method === "POST" || !/\.gz$/.test(r.path)));
    expect(firstPages.length).toBeGreaterThanOrEqual(4);
  });

  it("drops records the API returns from outside the window and repeats across pages", async () => {
    const { accountId, credentials } = newAccount(sim, { volume: VOLUME });
    sim.control.setFaults(accountId, { outOfWindowRecords: true, duplicateAcrossPages: true });
    const { platform } = platformFor(sim);
    const records = await collect(platform.openSource(accountId, credentials).fetch(api, WINDOW, options));
    expect(ndjson(records)).toBe(ndjson(expected(accountId, WINDOW)));
  });

  it("gives identical NDJSON when the same window is fetched twice", async () => {
    const { accountId, credentials } = newAccount(sim, { volume: VOLUME });
    const { platform } = platformFor(sim);
    const first = ndjson(await collect(platform.openSource(accountId, credentials).fetch(api, WINDOW, options)));
    const second = ndjson(await collect(platform.openSource(accountId, credentials).fetch(api, WINDOW, options)));
    expect(second).toBe(first);
  });

  it("turns a truncated body into a failed attempt with the byte offset, not into missing records", async () => {
    const { accountId, credentials } = newAccount(sim, { volume: VOLUME });
    sim.control.setFaults(accountId, { truncateBody: { count: 1 } });
    const { platform } = platformFor(sim);
    const error = await failure(collect(platform.openSource(accountId, credentials).fetch(api, WINDOW, options)));
    expect(error).toMatchObject({ code: "malformed_response", permanent: false });
    expect(error.details).toMatchObject({ byteOffset: expect.any(Number) });
    expect((error.details as { byteOffset: number }).byteOffset).toBeGreaterThan(0);
    expect(error.message).toMatch(/at byte \d+/);
    // The retry (next attempt) gets everything.
    const records = await collect(platform.openSource(accountId, credentials).fetch(api, WINDOW, options));
    expect(ndjson(records)).toBe(ndjson(expected(accountId, WINDOW)));
  });
});

describe("data access across consecutive windows", () => {
  type Doc = { metaData: { startTime: { long: number }; endTime: { long: number } }; recordCollection: Array<{ body: Record<string, { header: Record<string, Record<string, { string: string }>> }> }> };
  const sessionOf = (record: unknown) => {
    const doc = record as Doc;
    const body = Object.values(doc.recordCollection[0]!.body)[0]!;
    const header = Object.values(body.header)[0]!;
    return { id: (header.agentSessionId ?? header.visitId)!.string, start: doc.metaData.startTime.long, end: doc.metaData.endTime.long };
  };

  it("delivers every session exactly once, a session open across a window's end included", async () => {
    const { accountId, credentials } = newAccount(sim, { volume: { dataAccess: 12 } });
    const { platform } = platformFor(sim);
    const day = Date.parse("2026-10-05T00:00:00Z");
    const all = [...dataAccessRecordsForWindow(accountId, "agentActivity", day, day + 24 * HOUR, SEED, { perHour: 12 })].map(sessionOf);
    expect(all.length).toBeGreaterThan(200);
    // The first window ends on the first hour that a session is open across. The simulated sessions
    // differ with the account id, and about one hour in twenty has none open across its end, so a
    // fixed hour left the case below untested now and then.
    let firstEnd = day + HOUR;
    while (firstEnd < day + 15 * HOUR && !all.some((s) => s.start < firstEnd && s.end >= firstEnd)) firstEnd += HOUR;
    expect(firstEnd).toBeLessThan(day + 15 * HOUR);
    // One window end on the hour, one off it (as a tenant's zone or schedule may make it).
    const bounds = [day, firstEnd, day + 15 * HOUR + 45 * 60_000, day + 24 * HOUR];
    const perWindow: Array<Array<{ id: string; start: number; end: number }>> = [];
    for (let i = 0; i + 1 < bounds.length; i++) {
      const window = { from: new Date(bounds[i]!), to: new Date(bounds[i + 1]!) };
      perWindow.push((await collect(platform.openSource(accountId, credentials).fetch("data-access-agent-activity", window))).map(sessionOf));
    }
    const delivered = perWindow.flat().map((s) => s.id);
    // Every session whose hourly file falls in the day, once.
    expect(new Set(delivered).size).toBe(delivered.length);
    expect([...delivered].sort()).toEqual(all.map((s) => s.id).sort());
    // Sessions still open when the first window ended were delivered, by the next window.
    const straddling = perWindow[1]!.filter((s) => s.start < bounds[1]! && s.end >= bounds[1]!);
    expect(straddling.length).toBeGreaterThan(0);
  });
});

describe("data access published late, windows that do not end on the hour", () => {
  it("delivers every session once when each run comes 6 hours after its window and files 6 hours after their hour", async () => {
    // Daily windows at 18:30Z (midnight in India), then a window every 30 minutes.
    const day = Date.parse("2026-10-05T18:30:00Z");
    const bounds = [day, day + 24 * HOUR, day + 48 * HOUR];
    for (let t = day + 48 * HOUR + 30 * 60_000; t <= day + 52 * HOUR; t += 30 * 60_000) bounds.push(t);
    const credentials = newCredentials();
    const accountId = `late${Date.now() % 1_000_000}`;
    const delivered: string[] = [];
    for (let i = 0; i + 1 < bounds.length; i++) {
      const window = { from: new Date(bounds[i]!), to: new Date(bounds[i + 1]!) };
      // The run comes at the window's end + 6 h and files are published 6 h after their hour:
      // at that moment exactly the files whose hour ended by the window's end are out.
      const lagged = await startSimulator({ seed: SEED, dataAccessLagMs: Date.now() - window.to.getTime() });
      try {
        lagged.control.registerAccount(accountId, { ...credentials, volume: { dataAccess: 12 } });
        const { platform } = platformFor(lagged);
        const records = await collect(platform.openSource(accountId, credentials).fetch("data-access-agent-activity", window));
        delivered.push(...records.map((r) => JSON.stringify(r)));
      } finally {
        await lagged.stop();
      }
    }
    const all = [...dataAccessRecordsForWindow(accountId, "agentActivity", bounds[0]!, bounds.at(-1)!, SEED, { perHour: 12 })].map((r) => JSON.stringify(r));
    expect(all.length).toBeGreaterThan(500);
    expect(new Set(delivered).size).toBe(delivered.length);
    expect(delivered.length).toBe(all.length);
    expect(new Set(delivered)).toEqual(new Set(all));
  });
});

describe("messaging-interactions over a long window", () => {
  it("splits 95 days into ranges the API accepts (≤ 3 months) and misses nothing at the seams", async () => {
    const { accountId, credentials } = newAccount(sim, { volume: { conversations: 0.1 } });
    const { platform } = platformFor(sim);
    const window = { from: new Date("2026-06-01T00:00:00Z"), to: new Date("2026-09-04T00:00:00Z") };
    const records = await collect(platform.openSource(accountId, credentials).fetch("messaging-interactions", window));
    const want = [...conversationsForWindow(accountId, window.from, window.to, SEED, { perHour: 0.1 })];
    expect(want.length).toBeGreaterThan(100);
    expect(ndjson(records)).toBe(ndjson(want));
    expect(sim.control.requestLog(accountId).filter((r) => r.status === 400)).toEqual([]);
  });

  it("stops with a pagination error when the next link repeats", async () => {
    const { accountId, credentials } = newAccount(sim, { volume: VOLUME });
    sim.control.setFaults(accountId, { repeatNextLink: true });
    const { platform } = platformFor(sim);
    const error = await failure(collect(platform.openSource(accountId, credentials).fetch("messaging-interactions", WINDOW, { pageSize: 30 })));
    expect(error).toMatchObject({ code: "pagination_loop", permanent: false });
    expect(sim.control.requestLog(accountId).filter((r) => r.api === "messaging-interactions").length).toBeLessThanOrEqual(3);
  });

  it("refuses a page size above the documented maximum at the simulator (400)", async () => {
    const { accountId, credentials } = newAccount(sim);
    const { platform } = platformFor(sim);
    const base = `${sim.url}/messaging_history/api/account/${accountId}/conversations/search?offset=0&limit=101`;
    const error = await failure(
      platform.http.json({ accountId, credentials, api: "messaging-interactions" }, "POST", base, { start: { from: +WINDOW.from, to: +WINDOW.to } }),
    );
    expect(error).toMatchObject({ code: "upstream_rejected", permanent: true });
    expect(error.message).toMatch(/HTTP 400/);
  });
});

describe("messaging operations (24-hour look-back)", () => {
  const Q = 15 * 60_000;
  const aligned = Math.floor(Date.now() / Q) * Q;
  const window = { from: new Date(aligned - 6 * HOUR), to: new Date(aligned - HOUR) };

  it.each([
    ["messaging-operations-queue-health", queueHealthForWindow],
    ["messaging-operations-agent-activity", agentActivityForWindow],
  ] as const)("%s yields one record per interval inside the window", async (api, expected) => {
    const { accountId, credentials } = newAccount(sim);
    const { platform } = platformFor(sim);
    const records = await collect(platform.openSource(accountId, credentials).fetch(api, window));
    const want = [...expected(accountId, window.from, window.to, SEED, 15)];
    expect(want.length).toBeGreaterThan(100);
    expect(ndjson(records)).toBe(ndjson(want));
  });

  it("serves a daily window fetched just after it closes from the API's full 24-hour look-back", async () => {
    // The simulator and the connector read one clock, stopped at the real time (within the OAuth
    // skew allowance): on the real clock, a quarter hour passing between choosing the window and
    // fetching it put the window's start beyond the look-back.
    const clock = Date.now();
    const closed = Math.floor(clock / Q) * Q;
    const pinned = await startSimulator({ seed: SEED, now: () => clock });
    try {
      const { accountId, credentials } = newAccount(pinned);
      const { platform } = platformFor(pinned, {}, () => clock);
      const daily = { from: new Date(closed - 24 * HOUR), to: new Date(closed) };
      const records = await collect(platform.openSource(accountId, credentials).fetch("messaging-operations-queue-health", daily));
      expect(ndjson(records)).toBe(ndjson([...queueHealthForWindow(accountId, daily.from, daily.to, SEED, 15)]));
    } finally {
      await pinned.stop();
    }
  });

  it("refuses a window older than the API's look-back, permanently", async () => {
    const { accountId, credentials } = newAccount(sim);
    const { platform } = platformFor(sim);
    const error = await failure(collect(platform.openSource(accountId, credentials).fetch("messaging-operations-queue-health", WINDOW)));
    expect(error).toMatchObject({ code: "unsupported_window", permanent: true });
  });
});

describe("account configuration (snapshots)", () => {
  it.each([
    ["account-config-users", usersResource],
    ["account-config-skills", skillsResource],
    ["account-config-agent-groups", agentGroupsResource],
  ] as const)("%s yields the whole list once", async (api, expected) => {
    const { accountId, credentials } = newAccount(sim);
    const { platform } = platformFor(sim);
    const records = await collect(platform.openSource(accountId, credentials).fetch(api, WINDOW));
    expect(records).toEqual(expected(accountId, SEED));
  });
});

describe.each(SOURCE_APIS.map((api) => ({ api })))("$api errors", ({ api }) => {
  const Q = 15 * 60_000;
  const aligned = Math.floor(Date.now() / Q) * Q;
  const window = api.startsWith("messaging-operations") ? { from: new Date(aligned - 2 * HOUR), to: new Date(aligned) } : WINDOW;

  it("fails permanently with bad_credentials on a wrong secret", async () => {
    const { accountId, credentials } = newAccount(sim);
    const { platform } = platformFor(sim);
    const error = await failure(collect(platform.openSource(accountId, { ...credentials, consumerSecret: "wrong" }).fetch(api, window)));
    expect(error).toMatchObject({ code: "bad_credentials", permanent: true });
    expect(error.message).not.toContain(credentials.consumerSecret);
  });

  it("names the API when the key lacks its permission", async () => {
    const { accountId, credentials } = newAccount(sim, { permissions: SOURCE_APIS.filter((a) => a !== api) });
    const { platform } = platformFor(sim);
    const error = await failure(collect(platform.openSource(accountId, credentials).fetch(api, window)));
    expect(error).toMatchObject({ code: "missing_permission", permanent: true, details: { api } });
    expect(error.message).toContain(SOURCE_API_LABELS[api]);
  });

  it("names the API when the platform answers 401 saying the key is not authorized for it (not a wrong key)", async () => {
    const { accountId, credentials } = newAccount(sim);
    sim.control.setFaults(accountId, { unauthorized401: [api] });
    const { platform } = platformFor(sim);
    const error = await failure(collect(platform.openSource(accountId, credentials).fetch(api, window)));
    expect(error).toMatchObject({ code: "missing_permission", permanent: true, details: { api, status: 401 } });
    expect(error.message).toContain(SOURCE_API_LABELS[api]);
  });

  it("waits out 429 per Retry-After, then succeeds", async () => {
    const { accountId, credentials } = newAccount(sim);
    sim.control.setFaults(accountId, { status429: { count: 2, retryAfterSeconds: 3 } });
    const { platform, sleeps } = platformFor(sim);
    const records = await collect(platform.openSource(accountId, credentials).fetch(api, window, { pageSize: 50 }));
    expect(records.length).toBeGreaterThan(0);
    expect(sleeps.calls.filter((ms) => ms === 3000)).toHaveLength(2);
  });

  it("retries 5xx with backoff, then fails with the reason once attempts run out", async () => {
    const { accountId, credentials } = newAccount(sim);
    sim.control.setFaults(accountId, { status5xx: { count: 2 } });
    const { platform, sleeps } = platformFor(sim, { maxAttempts: 3 });
    const records = await collect(platform.openSource(accountId, credentials).fetch(api, window));
    expect(records.length).toBeGreaterThan(0);
    expect(sleeps.calls).toHaveLength(2);

    sim.control.setFaults(accountId, { status5xx: { count: 100 } });
    const error = await failure(collect(platform.openSource(accountId, credentials).fetch(api, window)));
    expect(error).toMatchObject({ code: "upstream_unavailable", permanent: false });
    expect(error.message).toMatch(/HTTP 503 after 3 attempts/);
  });
});

describe("engagement-history partial results", () => {
  it("does not take a page some shards did not answer for complete: the attempt fails and a retry gets every record", async () => {
    const { accountId, credentials } = newAccount(sim, { volume: VOLUME });
    sim.control.setFaults(accountId, { partialResult: { count: 1 }, apis: ["engagement-history"] });
    const { platform } = platformFor(sim);
    for (const asReceived of [true, false]) {
      sim.control.setFaults(accountId, { partialResult: { count: 1 }, apis: ["engagement-history"] });
      const error = await failure(collect(platform.openSource(accountId, credentials).fetch("engagement-history", WINDOW, { asReceived })));
      expect(error).toMatchObject({ code: "upstream_unavailable", permanent: false });
      expect(error.message).toMatch(/2 of 6 shards/);
      const records = await collect(platform.openSource(accountId, credentials).fetch("engagement-history", WINDOW, { asReceived }));
      expect(ndjson(records)).toBe(ndjson([...engagementsForWindow(accountId, WINDOW.from, WINDOW.to, SEED, { perHour: VOLUME.engagements })]));
    }
  });
});

describe("data access not enabled", () => {
  it("is reported as such, permanently", async () => {
    const { accountId, credentials } = newAccount(sim, { dataAccessEnabled: false });
    const { platform } = platformFor(sim);
    const error = await failure(collect(platform.openSource(accountId, credentials).fetch("data-access-survey", WINDOW)));
    expect(error).toMatchObject({ code: "data_access_not_enabled", permanent: true });
  });
});

describe("timeouts", () => {
  it("retries a slow answer and fails as upstream_unavailable when it stays slow", async () => {
    const { accountId, credentials } = newAccount(sim);
    sim.control.setFaults(accountId, { slowMs: 400 });
    const { platform } = platformFor(sim, { timeoutMs: 100, maxAttempts: 2 });
    const error = await failure(collect(platform.openSource(accountId, credentials).fetch("account-config-skills", WINDOW)));
    expect(error).toMatchObject({ code: "upstream_unavailable", permanent: false });
    expect(error.message).toMatch(/no answer within 100 ms after 2 attempts/);
  });
});
