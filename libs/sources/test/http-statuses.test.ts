import { describe, expect, it } from "vitest";
import { createPlatform, PlatformHttp, type CallContext, type SourceApi, type SourceCredentials } from "../src/index.js";
import { failure } from "./helpers.js";

const credentials: SourceCredentials = { consumerKey: "k", consumerSecret: "s", token: "t", tokenSecret: "ts" };
const BASE = "http://platform.test";
const URL_ = `${BASE}/messaging_history/api/account/123/conversations/search?offset=0&limit=100`;
const json = (body: unknown, status = 200) => new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });

/** A client whose every request is answered by `answer` (a fresh Response each time); counts requests and backoff sleeps. */
function client(answer: (request: number) => Response, api: SourceApi = "messaging-interactions") {
  const seen = { requests: 0, sleeps: 0 };
  const fetch = (async () => answer(++seen.requests)) as typeof globalThis.fetch;
  const http = new PlatformHttp({
    fetch,
    timeoutMs: 5_000,
    maxAttempts: 3,
    sleep: async () => {
      seen.sleeps++;
    },
  });
  const ctx: CallContext = { accountId: "123", credentials, api };
  return { http, ctx, seen };
}

describe("401 answers", () => {
  it.each([
    ["the API's service", { error: "Unauthorized", message: "API key is not authorized for msgHist" }, "messaging-interactions"],
    ["a permission", { error: "Unauthorized", message: "Missing permission: Engagement History" }, "engagement-history"],
    ["the API's name", "Unauthorized: no access to Account configuration (users)", "account-config-users"],
  ] as const)("naming %s are the API's missing permission (permanent), not a wrong key", async (_what, body, api) => {
    const { http, ctx, seen } = client(() => (typeof body === "string" ? new Response(body, { status: 401 }) : json(body, 401)), api);
    const error = await failure(http.send(ctx, "POST", URL_, {}));
    expect(error).toMatchObject({ code: "missing_permission", permanent: true, details: { api, status: 401 } });
    expect(seen.requests).toBe(1);
  });

  it.each([
    ["the signature", { error: "Unauthorized", message: "signature does not match" }],
    ["the nonce", { error: "Unauthorized", message: "Invalid nonce for msgHist" }],
    ["the timestamp", { error: "Unauthorized", message: "timestamp outside the allowed window" }],
    ["the token", { error: "Unauthorized", message: "unknown access token; not authorized for msgHist" }],
    ["the key", { error: "Unauthorized", message: "Invalid API key" }],
    ["nothing (only Unauthorized)", { error: "Unauthorized" }],
    ["nothing (empty body)", ""],
    ["nothing (unreadable body)", "\u0000\u00ff\u00fe<binary>"],
  ] as const)("about %s stay a wrong key (bad_credentials)", async (_what, body) => {
    const { http, ctx, seen } = client(() => (typeof body === "string" ? new Response(body, { status: 401 }) : json(body, 401)));
    const error = await failure(http.send(ctx, "POST", URL_, {}));
    expect(error).toMatchObject({ code: "bad_credentials", permanent: true, details: { status: 401 } });
    expect(seen.requests).toBe(1);
  });

  it("naming one API: verification lists the others as allowed, and fetching that API fails with its missing permission", async () => {
    const fetch = (async (input: string | URL | Request) => {
      const url = new URL(String(input instanceof Request ? input.url : input));
      if (url.pathname.includes("baseURI.json")) return json({ baseURIs: ["msgHist", "engHistDomain", "leDataReporting", "accountConfigReadOnly"].map((service) => ({ service, baseURI: BASE })) });
      if (url.pathname.includes("conversations/search")) return json({ error: "Unauthorized", message: "API key is not authorized for msgHist" }, 401);
      if (url.pathname.includes("interactions/search")) return json({ _metadata: { count: 0 }, interactionHistoryRecords: [] });
      return json([]);
    }) as typeof globalThis.fetch;
    const platform = createPlatform({ csdsUrl: BASE, allowInsecure: true, http: { fetch, timeoutMs: 5_000, sleep: async () => {} } });
    const result = await platform.verifySource(credentials, "123", ["messaging-interactions", "engagement-history", "account-config-users"]);
    expect(result).toMatchObject({ verified: true, allowed: ["engagement-history", "account-config-users"] });
    expect(result.error).toBeUndefined();
    expect(result.apis["messaging-interactions"]).toMatchObject({ ok: false, code: "missing_permission", message: expect.stringContaining("Messaging Interactions") });

    const window = { from: new Date("2026-10-04T00:00:00Z"), to: new Date("2026-10-04T01:00:00Z") };
    const error = await failure(
      (async () => {
        for await (const _ of platform.openSource("123", credentials).fetch("messaging-interactions", window));
      })(),
    );
    expect(error).toMatchObject({ code: "missing_permission", permanent: true, details: { api: "messaging-interactions" } });
    expect(error.message).toContain("Messaging Interactions");
  });
});

describe("408 Request Timeout (from a proxy or load balancer)", () => {
  it("is retried with backoff like a 5xx, and the retry's answer taken", async () => {
    const { http, ctx, seen } = client((n) => (n === 1 ? new Response("<html>408 Request Time-out</html>", { status: 408 }) : json({ ok: true })));
    const response = await http.send(ctx, "POST", URL_, {});
    expect(response.status).toBe(200);
    expect(seen).toEqual({ requests: 2, sleeps: 1 });
  });

  it("fails as transient (upstream_unavailable) once attempts run out", async () => {
    const { http, ctx, seen } = client(() => new Response("", { status: 408 }));
    const error = await failure(http.send(ctx, "POST", URL_, {}));
    expect(error).toMatchObject({ code: "upstream_unavailable", permanent: false, details: { status: 408 } });
    expect(error.message).toMatch(/HTTP 408 after 3 attempts/);
    expect(seen.requests).toBe(3);
  });
});
