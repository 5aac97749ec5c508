import type { Simulator } from "@transporter/simulator";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SOURCE_APIS, verifySource } from "../src/index.js";
import { newAccount, platformFor, SEED, startSimulator } from "./helpers.js";

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
