/**
 * The platform's next-page links as its documentation shows them: on an internal host
 * (localhost:8080) and without the sort asked for. The next page is asked for on the host we were
 * given, in our order, with our fixed parameters; the signed requests never leave that host.
 */
import { describe, expect, it } from "vitest";
import { createPlatform, type SourceCredentials } from "../src/index.js";
import { collect } from "./helpers.js";

const credentials: SourceCredentials = { consumerKey: "k", consumerSecret: "s", token: "t", tokenSecret: "ts" };
const BASE = "https://va.msghist.example";
const FROM = Date.parse("2026-10-04T00:00:00Z");
const json = (body: unknown) => new Response(JSON.stringify(body), { status: 200, headers: { "content-type": "application/json" } });

describe("next-page links on another host or without our sort", () => {
  it("pages on our host, in our order, by the link's offset", async () => {
    const asked: URL[] = [];
    const fetch = (async (input: string | URL | Request) => {
      const url = new URL(String(input instanceof Request ? input.url : input));
      if (url.pathname.includes("baseURI.json")) return json({ baseURIs: [{ service: "msgHist", baseURI: BASE }] });
      asked.push(url);
      const offset = Number(url.searchParams.get("offset"));
      const records = [0, 1].map((i) => ({ info: { conversationId: `c${offset + i}`, startTimeL: FROM + (offset + i) * 1000 } }));
      // As documented: an internal host, offset and limit only.
      const next = offset < 4 ? { next: { rel: "next", href: `http://localhost:8080/messaging_history/api/account/123/conversations/search?limit=2&offset=${offset + 2}` } } : {};
      return json({ _metadata: { count: 6, ...next }, conversationHistoryRecords: records });
    }) as typeof globalThis.fetch;
    const platform = createPlatform({ csdsUrl: BASE, http: { fetch, timeoutMs: 5_000, sleep: async () => {} } });
    const records = await collect(platform.openSource("123", credentials).fetch("messaging-interactions", { from: new Date(FROM), to: new Date(FROM + 3_600_000) }, { pageSize: 2 }));
    expect(records.map((r) => (r.info as { conversationId: string }).conversationId)).toEqual(["c0", "c1", "c2", "c3", "c4", "c5"]);
    expect(asked.map((u) => u.origin)).toEqual(Array(3).fill(BASE));
    for (const url of asked) expect(Object.fromEntries(url.searchParams)).toMatchObject({ sort: "start:asc", limit: "2", source: "Transporter_Reports" });
    expect(asked.map((u) => u.searchParams.get("offset"))).toEqual(["0", "2", "4"]);
  });
});
