/**
 * Messaging Interactions serves records in parts ("partial retrieval", `contentToRetrieve`):
 * a report asks only for the parts it reads, `info` always comes. Other APIs ignore the option.
 */
import { conversationsForWindow, engagementsForWindow, type Simulator } from "@transporter/simulator";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FetchWindow } from "../src/index.js";
import { collect, failure, ndjson, newAccount, platformFor, SEED, startSimulator } from "./helpers.js";

let sim: Simulator;
beforeAll(async () => {
  sim = await startSimulator({ seed: SEED });
});
afterAll(async () => {
  await sim?.stop();
});

const WINDOW: FetchWindow = { from: new Date("2026-10-05T00:00:00Z"), to: new Date("2026-10-05T04:00:00Z") };
const CONTENT = ["messageRecords", "agentParticipants"] as const;

const only = (record: Record<string, unknown>, keys: readonly string[]) => Object.fromEntries(Object.entries(record).filter(([k]) => keys.includes(k)));

describe.each([false, true])("content to retrieve (asReceived: %s)", (asReceived) => {
  it("asks Messaging Interactions for info and the listed parts only, partial records' whole copies included", async () => {
    const { accountId, credentials } = newAccount(sim, { volume: { conversations: 25 } });
    sim.control.setFaults(accountId, { partialConversations: true });
    const { platform } = platformFor(sim);
    const records = await collect(platform.openSource(accountId, credentials).fetch("messaging-interactions", WINDOW, { pageSize: 20, asReceived, content: CONTENT }));
    const whole = [...conversationsForWindow(accountId, WINDOW.from, WINDOW.to, SEED, { perHour: 25 })];
    expect(whole.length).toBeGreaterThan(60);
    expect(Object.keys(whole[0]!)).toEqual(expect.arrayContaining(["campaign", "consumerParticipants", "messageScores"]));
    expect(ndjson(records)).toBe(ndjson(whole.map((r) => only(r, ["info", ...CONTENT]))));
    // The partial ones were fetched again by id, and narrowed the same way.
    expect(sim.control.requestLog(accountId).filter((r) => r.path.endsWith("/conversations/conversation/search")).length).toBeGreaterThan(10);
  });

  it("fetches whole records when no content is given", async () => {
    const { accountId, credentials } = newAccount(sim, { volume: { conversations: 10 } });
    const { platform } = platformFor(sim);
    const records = await collect(platform.openSource(accountId, credentials).fetch("messaging-interactions", WINDOW, { asReceived }));
    expect(ndjson(records)).toBe(ndjson([...conversationsForWindow(accountId, WINDOW.from, WINDOW.to, SEED, { perHour: 10 })]));
  });

  it("leaves APIs that do not serve parts alone", async () => {
    const { accountId, credentials } = newAccount(sim, { volume: { engagements: 10 } });
    const { platform } = platformFor(sim);
    const records = await collect(platform.openSource(accountId, credentials).fetch("engagement-history", WINDOW, { asReceived, content: CONTENT }));
    const expected = [...engagementsForWindow(accountId, WINDOW.from, WINDOW.to, SEED, { perHour: 10 })];
    expect(expected.length).toBeGreaterThan(10);
    expect(ndjson(records)).toBe(ndjson(expected));
  });
});

it("the simulator refuses a content type the platform does not document, as the platform would", async () => {
  const { accountId, credentials } = newAccount(sim);
  const { platform } = platformFor(sim);
  const error = await failure(collect(platform.openSource(accountId, credentials).fetch("messaging-interactions", WINDOW, { content: ["messageRecord"] })));
  expect(error.message).toMatch(/contentToRetrieve/);
});
