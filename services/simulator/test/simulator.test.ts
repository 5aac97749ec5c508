import { createHmac, randomBytes } from "node:crypto";
import OAuth from "oauth-1.0a";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  conversationsForWindow,
  countInRange,
  conversationSeries,
  CONSUMER_TEXTS,
  startSimulator,
  type Simulator,
} from "../src/index.js";

let sim: Simulator;
const creds = { consumerKey: "ck-" + randomBytes(4).toString("hex"), consumerSecret: "cs", token: "tk", tokenSecret: "ts" };
const account = "778899";

function signed(method: string, url: string, secret = creds.consumerSecret): Record<string, string> {
  const oauth = new OAuth({
    consumer: { key: creds.consumerKey, secret },
    signature_method: "HMAC-SHA1",
    hash_function: (base, key) => createHmac("sha1", key).update(base).digest("base64"),
  });
  return { ...oauth.toHeader(oauth.authorize({ url, method }, { key: creds.token, secret: creds.tokenSecret })) } as Record<string, string>;
}

async function search(query: string, body: unknown, secret?: string) {
  const url = `${sim.url}/messaging_history/api/account/${account}/conversations/search?${query}${query.includes("source=") ? "" : "&source=SimulatorTests"}`;
  const res = await fetch(url, { method: "POST", headers: { ...signed("POST", url, secret), "content-type": "application/json" }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as any };
}

beforeAll(async () => {
  sim = await startSimulator({ seed: "sim-tests" });
  sim.control.registerAccount(account, creds);
});
afterAll(async () => {
  await sim?.stop();
});

const from = Date.parse("2026-09-10T00:00:00Z");
const to = Date.parse("2026-09-10T06:00:00Z");

describe("platform simulator", () => {
  it("serves CSDS base URIs pointing back at itself", async () => {
    const res = await fetch(`${sim.url}/api/account/${account}/service/baseURI.json?version=1.0`);
    const body = (await res.json()) as { baseURIs: Array<{ service: string; account: string; baseURI: string }> };
    expect(body.baseURIs.map((b) => b.service)).toEqual(expect.arrayContaining(["msgHist", "engHistDomain", "leDataReporting", "accountConfigReadOnly"]));
    expect(new Set(body.baseURIs.map((b) => b.baseURI))).toEqual(new Set([new URL(sim.url).host]));
    expect((await fetch(`${sim.url}/api/account/nope/service/baseURI.json?version=1.0`)).status).toBe(404);
  });

  it("verifies OAuth 1.0a signatures: the right secret passes, a wrong one gets 401", async () => {
    expect((await search("offset=0&limit=5", { start: { from, to } })).status).toBe(200);
    const wrong = await search("offset=0&limit=5", { start: { from, to } }, "not-the-secret");
    expect(wrong.status).toBe(401);
  });

  it("enforces the documented page size and range limits", async () => {
    expect((await search("offset=0&limit=101", { start: { from, to } })).status).toBe(400);
    expect((await search("offset=0&limit=10", { start: { from: from - 100 * 86_400_000, to } })).status).toBe(400);
  });

  it("requires the documented source parameter of Messaging Interactions callers (at most 20 characters)", async () => {
    const body = { start: { from: Date.parse("2026-01-01T00:00:00Z"), to: Date.parse("2026-01-01T01:00:00Z") } };
    expect((await search("offset=0&limit=10&source=", body)).status).toBe(400);
    expect((await search("offset=0&limit=10&source=ThisNameIsFarTooLongForIt", body)).status).toBe(400);
    const refused = await search("offset=0&limit=10&source=", body);
    expect(refused.body.message).toMatch(/source is required/);
    expect((await search("offset=0&limit=10&source=Transporter_Reports", body)).status).toBe(200);
  });

  it("pages deterministically through the same records the generator computes", async () => {
    const want = [...conversationsForWindow(account, from, to, "sim-tests")];
    const got: unknown[] = [];
    let query = "offset=0&limit=40&sort=start:asc";
    for (;;) {
      const page = await search(query, { start: { from, to: to - 1 } });
      expect(page.status).toBe(200);
      got.push(...page.body.conversationHistoryRecords);
      expect(page.body._metadata.count).toBe(want.length);
      if (!page.body._metadata.next) break;
      query = new URL(page.body._metadata.next.href).search.slice(1);
    }
    expect(JSON.stringify(got)).toBe(JSON.stringify(want));
    const again = await search("offset=0&limit=40&sort=start:asc", { start: { from, to: to - 1 } });
    expect(JSON.stringify(again.body.conversationHistoryRecords)).toBe(JSON.stringify(want.slice(0, 40)));
  });

  it("writes messages in many scripts, with emoji, ZWJ sequences, newlines, quotes and formula-like text", () => {
    const all = CONSUMER_TEXTS.join("\u0001");
    expect(all).toMatch(/[\u3040-\u30ff]/); // Japanese
    expect(all).toMatch(/[\u4e00-\u9fff]/); // CJK ideographs
    expect(all).toMatch(/[\u0590-\u05ff]/); // Hebrew (RTL)
    expect(all).toMatch(/[\u0600-\u06ff]/); // Arabic (RTL)
    expect(all).toContain("\u200d"); // ZWJ
    expect(all).toContain("\n");
    expect(all).toContain('"');
    expect(CONSUMER_TEXTS).toContain("=SUM(A1:A10)");
    expect(CONSUMER_TEXTS).toContain("+1 555 0100");
  });

  it("counts 200,000 conversations without materialising them", () => {
    const spec = conversationSeries(account, "sim-tests", { perHour: 2000 });
    const before = process.memoryUsage().heapUsed;
    const n = countInRange(spec, from, from + 100 * 3_600_000);
    expect(n).toBeGreaterThan(180_000);
    expect(process.memoryUsage().heapUsed - before).toBeLessThan(50 * 1024 * 1024);
  });

  it("injects faults per account and exposes them over the HTTP control API", async () => {
    const put = await fetch(`${sim.url}/_simulator/accounts/${account}/faults`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ status429: { count: 1, retryAfterSeconds: 7 }, status5xx: { count: 1 } }),
    });
    expect(put.status).toBe(204);
    const url = `${sim.url}/api/account/${account}/configuration/le-users/skills?v=2.0`;
    const first = await fetch(url, { headers: signed("GET", url) });
    expect(first.status).toBe(429);
    expect(first.headers.get("retry-after")).toBe("7");
    expect((await fetch(url, { headers: signed("GET", url) })).status).toBe(503);
    expect((await fetch(url, { headers: signed("GET", url) })).status).toBe(200);
    const log = (await (await fetch(`${sim.url}/_simulator/accounts/${account}/requests`)).json()) as { requests: Array<{ status: number }> };
    expect(log.requests.slice(-3).map((r) => r.status)).toEqual([429, 503, 200]);

    await fetch(`${sim.url}/_simulator/accounts/${account}/faults`, { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify({ forbidden: ["account-config-skills"] }) });
    expect((await fetch(url, { headers: signed("GET", url) })).status).toBe(403);
    await fetch(`${sim.url}/_simulator/accounts/${account}/faults`, { method: "DELETE" });
    expect((await fetch(url, { headers: signed("GET", url) })).status).toBe(200);
  });

  it("answers 401 naming the API's service for the APIs of the unauthorized401 fault, and only for those", async () => {
    sim.control.setFaults(account, { unauthorized401: ["messaging-interactions"] });
    try {
      const denied = await search("offset=0&limit=5", { start: { from, to } });
      expect(denied).toEqual({ status: 401, body: { error: "Unauthorized", message: "API key is not authorized for msgHist" } });
      const url = `${sim.url}/api/account/${account}/configuration/le-users/skills?v=2.0`;
      expect((await fetch(url, { headers: signed("GET", url) })).status).toBe(200);
    } finally {
      sim.control.clearFaults(account);
    }
    expect((await search("offset=0&limit=5", { start: { from, to } })).status).toBe(200);
  });
});
