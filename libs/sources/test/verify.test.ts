import type { Simulator } from "@transporter/simulator";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPlatform, SOURCE_APIS, verifySource, type SourceCredentials } from "../src/index.js";
import { collect, failure, newAccount, platformFor, SEED, startSimulator } from "./helpers.js";

let sim: Simulator;
beforeAll(async () => {
  sim = await startSimulator({ seed: SEED });
});
afterAll(async () => {
  await sim?.stop();
});

describe("verifySource", () => {
  it("lists every API a full key may use", async () => {
    const { accountId, credentials } = newAccount(sim);
    const { platform } = platformFor(sim);
    const result = await verifySource(credentials, accountId, SOURCE_APIS, platform);
    expect(result).toMatchObject({ verified: true, accountId });
    expect(result.allowed).toEqual([...SOURCE_APIS]);
    expect(result.sourceCalls).toBe(SOURCE_APIS.length + 1);
  });

  it("reports the APIs a restricted key may not use, by name, and Data Access not being enabled", async () => {
    const { accountId, credentials } = newAccount(sim, { permissions: ["messaging-interactions", "account-config-users", "data-access-survey"], dataAccessEnabled: false });
    const { platform } = platformFor(sim);
    const result = await verifySource(credentials, accountId, ["messaging-interactions", "engagement-history", "account-config-users", "data-access-survey"], platform);
    expect(result.verified).toBe(true);
    expect(result.allowed).toEqual(["messaging-interactions", "account-config-users"]);
    expect(result.apis["engagement-history"]).toMatchObject({ ok: false, code: "missing_permission", message: expect.stringContaining("Engagement History") });
    expect(result.apis["data-access-survey"]).toMatchObject({ ok: false, code: "data_access_not_enabled" });
  });

  it("takes a 401 naming one API for that API's missing permission and goes on checking the others", async () => {
    const { accountId, credentials } = newAccount(sim);
    sim.control.setFaults(accountId, { unauthorized401: ["messaging-interactions"] });
    const { platform } = platformFor(sim);
    const apis = ["messaging-interactions", "engagement-history", "account-config-users", "messaging-operations-queue-health"] as const;
    const result = await verifySource(credentials, accountId, apis, platform);
    expect(result).toMatchObject({ verified: true, accountId });
    expect(result.error).toBeUndefined();
    expect(result.apis["messaging-interactions"]).toMatchObject({ ok: false, code: "missing_permission", message: expect.stringContaining("Messaging Interactions") });
    expect(result.allowed).toEqual(["engagement-history", "account-config-users", "messaging-operations-queue-health"]);
    expect(result.sourceCalls).toBe(apis.length + 1);
    // A 401 about the key itself (its signature) still stops verification.
    const wrong = await verifySource({ ...credentials, tokenSecret: "nope" }, accountId, apis, platform);
    expect(wrong).toMatchObject({ verified: false, allowed: [], error: { code: "bad_credentials" } });
  });

  it("refuses a wrong secret and an unknown account", async () => {
    const { accountId, credentials } = newAccount(sim);
    const { platform } = platformFor(sim);
    const wrong = await verifySource({ ...credentials, tokenSecret: "nope" }, accountId, SOURCE_APIS, platform);
    expect(wrong).toMatchObject({ verified: false, error: { code: "bad_credentials" } });
    const unknown = await verifySource(credentials, "999999999", SOURCE_APIS, platform);
    expect(unknown).toMatchObject({ verified: false, error: { code: "unknown_account" } });
  });

  it("says so when the platform is down instead of blaming the key", async () => {
    const { accountId, credentials } = newAccount(sim);
    sim.control.setFaults(accountId, { status5xx: { count: 1000 } });
    const { platform } = platformFor(sim, { maxAttempts: 2 });
    const result = await verifySource(credentials, accountId, ["account-config-skills"], platform);
    expect(result).toMatchObject({ verified: false, error: { code: "upstream_unavailable" } });
  });
  void SEED;
});

describe("an account whose domain discovery lists no service for one API", () => {
  const BASE = "http://platform.test";
  const credentials: SourceCredentials = { consumerKey: "k", consumerSecret: "s", token: "t", tokenSecret: "ts" };
  const json = (body: unknown) => new Response(JSON.stringify(body), { status: 200, headers: { "content-type": "application/json" } });

  it("has that API alone reported not available, the others checked, and its fetches failing permanently", async () => {
    // No engHistDomain: the account has no Engagement History.
    const fetch = (async (input: string | URL | Request) => {
      const url = new URL(String(input instanceof Request ? input.url : input));
      if (url.pathname.includes("baseURI.json")) return json({ baseURIs: ["msgHist", "leDataReporting", "accountConfigReadOnly"].map((service) => ({ service, baseURI: BASE })) });
      if (url.pathname.includes("conversations/search")) return json({ _metadata: { count: 0 }, conversationHistoryRecords: [] });
      return json([]);
    }) as typeof globalThis.fetch;
    const platform = createPlatform({ csdsUrl: BASE, allowInsecure: true, http: { fetch, timeoutMs: 5_000, sleep: async () => {} } });
    const result = await platform.verifySource(credentials, "123", ["engagement-history", "messaging-interactions", "account-config-users"]);
    expect(result).toMatchObject({ verified: true, allowed: ["messaging-interactions", "account-config-users"] });
    expect(result.error).toBeUndefined();
    expect(result.apis["engagement-history"]).toMatchObject({ ok: false, code: "api_not_available", message: expect.stringMatching(/engHistDomain.*Engagement History is not available/) });

    const window = { from: new Date("2026-10-04T00:00:00Z"), to: new Date("2026-10-04T01:00:00Z") };
    const error = await failure(collect(platform.openSource("123", credentials).fetch("engagement-history", window)));
    expect(error).toMatchObject({ code: "api_not_available", permanent: true, details: { api: "engagement-history" } });
  });
});
