import { randomBytes } from "node:crypto";
import { conversationsForWindow, type Simulator } from "@transporter/simulator";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPlatform, createRateBudget, PlatformHttp, type CallContext } from "../src/index.js";
import { collect, newCredentials, SEED, startSimulator } from "./helpers.js";

let sim: Simulator;
let redis: Redis;
const prefix = `test-sources-${randomBytes(4).toString("hex")}`;

beforeAll(async () => {
  sim = await startSimulator({ seed: SEED });
  redis = new Redis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379", { lazyConnect: true });
  await redis.connect();
});
afterAll(async () => {
  const keys = await redis.keys(`${prefix}:*`);
  if (keys.length) await redis.del(...keys);
  await redis.quit();
  await sim?.stop();
});

/** Most requests seen in any sliding window of `ms`. */
function peak(times: number[], ms: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let best = 0;
  for (let i = 0, j = 0; i < sorted.length; i++) {
    while (sorted[i]! - sorted[j]! >= ms) j++;
    best = Math.max(best, i - j + 1);
  }
  return best;
}

describe("per-account rate budget (Redis token bucket)", () => {
  it("keeps two fetchers of one account within the account's budget together", async () => {
    const rate = 8;
    // A fixed account (the simulator is this file's own): its data, so the number of requests, is the same every run.
    const accountId = "8800001";
    const credentials = newCredentials();
    sim.control.registerAccount(accountId, { ...credentials, volume: { conversations: 20 } });
    // Two "replicas": separate platforms and Redis connections, one shared budget.
    const replicas = await Promise.all(
      [0, 1].map(async () => {
        const connection = new Redis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379");
        const budget = createRateBudget(connection, { prefix, ratePerSecond: rate, burst: rate });
        return { connection, platform: createPlatform({ csdsUrl: sim.url, allowInsecure: true, http: { budget } }) };
      }),
    );
    const windows = [
      { from: new Date("2026-10-01T00:00:00Z"), to: new Date("2026-10-01T12:00:00Z") },
      { from: new Date("2026-10-01T12:00:00Z"), to: new Date("2026-10-02T00:00:00Z") },
    ];
    const started = Date.now();
    const results = await Promise.all(
      replicas.map(({ platform }, i) => collect(platform.openSource(accountId, credentials).fetch("messaging-interactions", windows[i]!, { pageSize: 10 }))),
    );
    const elapsed = Date.now() - started;
    for (const { connection } of replicas) await connection.quit();

    const requests = sim.control.requestLog(accountId).filter((r) => r.api === "messaging-interactions");
    const n = requests.length;
    expect(n).toBeGreaterThan(40);
    // A token bucket admits at most burst + rate·T requests in any span T, plus what up to half a
    // second of jitter between the grant in Redis and the simulator's clock can squeeze in on a
    // loaded machine. Without the budget the two fetchers send all ~50 requests within a fraction
    // of a second.
    expect(peak(requests.map((r) => r.at), 1000)).toBeLessThanOrEqual(2 * rate + rate / 2);
    expect(elapsed).toBeGreaterThanOrEqual(((n - rate) / rate) * 1000 - 500);
    for (let i = 0; i < 2; i++) {
      expect(results[i]!.length).toBe([...conversationsForWindow(accountId, windows[i]!.from, windows[i]!.to, SEED, { perHour: 20 })].length);
    }
  }, 30_000);

  it("holds off every task of the account, not only the one answered 429, until the Retry-After time", async () => {
    const accountId = `paused-${randomBytes(4).toString("hex")}`;
    const sent: Array<{ task: string; at: number; status: number }> = [];
    let answered429: () => void;
    const got429 = new Promise<void>((resolve) => (answered429 = resolve));
    // Two tasks of one account, on separate clients and Redis connections: one shared budget.
    const connections = [0, 1].map(() => new Redis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379"));
    const task = (name: string, connection: Redis) => {
      const fetch = (async () => {
        const first = name === "a" && sent.length === 0;
        sent.push({ task: name, at: Date.now(), status: first ? 429 : 200 });
        if (!first) return new Response("{}", { status: 200 });
        setImmediate(() => answered429());
        return new Response("{}", { status: 429, headers: { "retry-after": "2" } });
      }) as typeof globalThis.fetch;
      const http = new PlatformHttp({ fetch, timeoutMs: 5_000, budget: createRateBudget(connection, { prefix, ratePerSecond: 100 }) });
      const ctx: CallContext = { accountId, credentials: { consumerKey: "k", consumerSecret: "s", token: "t", tokenSecret: "ts" }, api: "account-config-users" };
      return http.send(ctx, "GET", "http://platform.test/api/account/1/configuration/le-users/users?v=4.0");
    };
    const a = task("a", connections[0]!);
    await got429;
    const limitedAt = sent[0]!.at;
    await new Promise((resolve) => setTimeout(resolve, 50));
    const b = task("b", connections[1]!);
    // Another account is not held off.
    const other = createRateBudget(connections[1]!, { prefix, ratePerSecond: 100 });
    const started = Date.now();
    await other.acquire(`${accountId}-other`);
    expect(Date.now() - started).toBeLessThan(500);
    await Promise.all([a, b]);
    for (const connection of connections) await connection.quit();

    expect(sent.map((r) => r.status)).toEqual([429, 200, 200]);
    // Both the retry and the other task's request wait out the 2 s (less a little for the clocks' rounding).
    for (const request of sent.slice(1)) expect(request.at - limitedAt).toBeGreaterThanOrEqual(1_950);
  }, 15_000);

  it("keeps accounts independent", async () => {
    const budget = createRateBudget(redis, { prefix, ratePerSecond: 1, burst: 1 });
    const started = Date.now();
    await budget.acquire("independent-a");
    await budget.acquire("independent-b");
    expect(Date.now() - started).toBeLessThan(500);
  });
});
