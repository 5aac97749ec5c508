/**
 * A search page's body must be a page: an object with the records or `_metadata`. Anything else
 * (null, a list, a string, an empty object) taken for an empty page would lose the window's
 * records without a word; it is a malformed response, retried like a truncated one.
 */
import { describe, expect, it } from "vitest";
import { createPlatform, type SourceApi, type SourceCredentials } from "../src/index.js";
import { collect, failure } from "./helpers.js";

const credentials: SourceCredentials = { consumerKey: "k", consumerSecret: "s", token: "t", tokenSecret: "ts" };
const BASE = "http://platform.test";
const WINDOW = { from: new Date("2026-10-04T00:00:00Z"), to: new Date("2026-10-04T01:00:00Z") };

/** A platform whose search APIs answer every page with `body` (raw text). */
function answering(body: string) {
  const fetch = (async (input: string | URL | Request) => {
    const url = new URL(String(input instanceof Request ? input.url : input));
    if (url.pathname.includes("baseURI.json")) {
      return new Response(JSON.stringify({ baseURIs: ["msgHist", "engHistDomain"].map((service) => ({ service, baseURI: BASE })) }), { status: 200 });
    }
    return new Response(body, { status: 200, headers: { "content-type": "application/json" } });
  }) as typeof globalThis.fetch;
  return createPlatform({ csdsUrl: BASE, allowInsecure: true, http: { fetch, timeoutMs: 5_000, sleep: async () => {} } });
}

const APIS: Array<[SourceApi, string]> = [
  ["messaging-interactions", "conversationHistoryRecords"],
  ["engagement-history", "interactionHistoryRecords"],
];

describe.each(APIS)("%s pages", (api, recordsKey) => {
  describe.each([false, true])("asReceived: %s", (asReceived) => {
    it.each(["null", "[]", '"text"', "{}", '{"other": []}', "3"])("refuses the body %s as malformed (transient)", async (body) => {
      const error = await failure(collect(answering(body).openSource("123", credentials).fetch(api, WINDOW, { asReceived })));
      expect(error).toMatchObject({ code: "malformed_response", permanent: false, details: { api } });
    });

    it.each([`{"_metadata": {"count": 0}}`, `{"${recordsKey}": []}`, `{"_metadata": {"count": 0}, "${recordsKey}": []}`])("takes %s for an empty page", async (body) => {
      expect(await collect(answering(body).openSource("123", credentials).fetch(api, WINDOW, { asReceived }))).toEqual([]);
    });
  });
});
