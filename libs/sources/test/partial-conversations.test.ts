/**
 * Messaging Interactions marks a conversation whose data it could not give whole `info.isPartial`
 * and documents the single-conversation method for its full data: such a record is fetched whole,
 * never stored short of messages.
 */
import { conversationsForWindow, type Simulator } from "@transporter/simulator";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FetchWindow } from "../src/index.js";
import { collect, ndjson, newAccount, platformFor, SEED, startSimulator } from "./helpers.js";

let sim: Simulator;
beforeAll(async () => {
  sim = await startSimulator({ seed: SEED });
});
afterAll(async () => {
  await sim?.stop();
});

const WINDOW: FetchWindow = { from: new Date("2026-10-04T00:00:00Z"), to: new Date("2026-10-04T06:00:00Z") };

describe.each([false, true])("partial conversations (asReceived: %s)", (asReceived) => {
  it("are replaced by the whole conversation, asked for by its id", async () => {
    const { accountId, credentials } = newAccount(sim, { volume: { conversations: 20 } });
    sim.control.setFaults(accountId, { partialConversations: true });
    const { platform } = platformFor(sim);
    const records = await collect(platform.openSource(accountId, credentials).fetch("messaging-interactions", WINDOW, { pageSize: 30, asReceived }));
    const expected = [...conversationsForWindow(accountId, WINDOW.from, WINDOW.to, SEED, { perHour: 20 })];
    expect(expected.length).toBeGreaterThan(60);
    expect(ndjson(records)).toBe(ndjson(expected));
    const whole = sim.control.requestLog(accountId).filter((r) => r.path.endsWith("/conversations/conversation/search"));
    // Every third record of each page was served partial.
    expect(whole.length).toBeGreaterThanOrEqual(Math.floor(expected.length / 3) - 4);
  });
});
