/**
 * A search record's start is `startTimeL` (epoch ms) or, as documented, the text `startTime`
 * alone. The window check reads either, as the report mappers do: a record with only the text
 * form once read as NaN and was dropped without a word. A record with neither fails the attempt
 * as a malformed response instead of vanishing.
 */
import { describe, expect, it } from "vitest";
import { engagementHistory, messagingInteractions } from "../src/connectors/search.js";
import type { Connector, SourceSession } from "../src/index.js";
import { collect, failure } from "./helpers.js";

const WINDOW = { from: new Date("2026-01-01T00:00:00Z"), to: new Date("2026-01-02T00:00:00Z") };

/** A session whose search answers every page with `body`. */
function answering(body: string): SourceSession {
  return {
    accountId: "1",
    csds: { baseUrl: async () => "https://search.example" },
    http: { send: async () => ({ body: Buffer.from(body) }) },
    now: () => new Date("2026-01-03T00:00:00Z"),
    countCall: () => {},
  } as never;
}

const APIS: Array<[string, Connector, string, string]> = [
  ["messaging-interactions", messagingInteractions, "conversationHistoryRecords", "conversationId"],
  ["engagement-history", engagementHistory, "interactionHistoryRecords", "engagementId"],
];

describe.each(APIS)("%s start times", (_api, connector, recordsKey, idKey) => {
  const page = (...infos: Array<Record<string, unknown>>) => JSON.stringify({ _metadata: { count: infos.length }, [recordsKey]: infos.map((info) => ({ info })) });

  describe.each([false, true])("asReceived: %s", (asReceived) => {
    it("keeps a record whose start is given only as text", async () => {
      const body = page({ [idKey]: "c1", startTime: "2026-01-01 12:00:00.000+0000" });
      const records = await collect(connector.fetch(answering(body), WINDOW, { asReceived }));
      expect(records.map((r) => (r.info as Record<string, unknown>)[idKey])).toEqual(["c1"]);
    });

    it("windows by the text start as the mappers read it (zone offsets included)", async () => {
      const body = page(
        { [idKey]: "inside", startTime: "2026-01-01 23:30:00.000-0000" },
        // 2026-01-02 00:30 in +01:00 is 2026-01-01 23:30 UTC: inside.
        { [idKey]: "offset", startTime: "2026-01-02 00:30:00.000+0100" },
        { [idKey]: "after", startTime: "2026-01-02 00:00:00.000+0000" },
        { [idKey]: "before", startTime: "2025-12-31 23:59:59.999+0000" },
        // Epoch ms wins over the text when both are given.
        { [idKey]: "both", startTimeL: Date.UTC(2026, 0, 1, 6), startTime: "2025-06-01 00:00:00.000+0000" },
      );
      const records = await collect(connector.fetch(answering(body), WINDOW, { asReceived }));
      expect(records.map((r) => (r.info as Record<string, unknown>)[idKey])).toEqual(["inside", "offset", "both"]);
    });

    it("reads startTimeL -1 (the platform's \"not yet\") as no epoch time: the text start places the record", async () => {
      const body = page({ [idKey]: "c1", startTimeL: -1, startTime: "2026-01-01 12:00:00.000+0000" }, { [idKey]: "c2", startTimeL: null, startTime: "2026-01-01 13:00:00.000+0000" });
      const records = await collect(connector.fetch(answering(body), WINDOW, { asReceived }));
      expect(records.map((r) => (r.info as Record<string, unknown>)[idKey])).toEqual(["c1", "c2"]);
    });

    it.each([
      [{}, "no start time"],
      [{ startTime: "undefined" }, "no start time"],
      [{ startTimeL: -1 }, "no start time"],
      [{ startTimeL: -1, startTime: "undefined" }, "no start time"],
      [{ startTime: "yesterday" }, "info.startTime: not a time"],
      [{ startTimeL: "soon" }, "info.startTimeL: expected epoch milliseconds, got a string"],
      // A number sent as text is not the documented long: refused here as the mappers refuse it, and named.
      [{ startTimeL: "1767268800000" }, "info.startTimeL: expected epoch milliseconds, got a string"],
      [{ startTimeL: 1767268800000.5 }, "info.startTimeL: expected whole epoch milliseconds"],
    ])("fails the attempt as malformed for a record without a start it can be placed by (%j), saying why", async (start, why) => {
      const body = page({ [idKey]: "c1", startTimeL: Date.UTC(2026, 0, 1, 1) }, { [idKey]: "c2", ...start });
      const error = await failure(collect(connector.fetch(answering(body), WINDOW, { asReceived })));
      expect(error).toMatchObject({ code: "malformed_response", permanent: false });
      expect(error.message).toContain("c2");
      expect(error.message).toContain(why);
    });
  });
});
