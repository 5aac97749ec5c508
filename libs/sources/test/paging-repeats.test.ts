import { describe, expect, it } from "vitest";
import { createPlatform, RecentIds, type SourceCredentials } from "../src/index.js";
import { failure } from "./helpers.js";

const credentials: SourceCredentials = { consumerKey: "k", consumerSecret: "s", token: "t", tokenSecret: "ts" };
const BASE = "http://platform.test";
const FROM = Date.parse("2026-10-04T00:00:00Z");
const TO = FROM + 3_600_000;
const json = (body: unknown) => new Response(JSON.stringify(body), { status: 200, headers: { "content-type": "application/json" } });

/**
 * A platform whose Messaging Interactions search answers `page(offset)` for every request (CSDS
 * answered too); counts the search requests.
 */
function fakePlatform(page: (offset: number) => { ids: Array<{ id: string; t: number }>; next: boolean }) {
  const calls = { search: 0 };
  const fetch = (async (input: string | URL | Request) => {
    const url = new URL(String(input instanceof Request ? input.url : input));
    if (url.pathname.includes("baseURI.json")) return json({ baseURIs: [{ service: "msgHist", baseURI: BASE }] });
    calls.search++;
    const offset = Number(url.searchParams.get("offset"));
    const { ids, next } = page(offset);
    const records = ids.map(({ id, t }) => ({ info: { conversationId: id, startTimeL: t } }));
    const metadata = next ? { next: { href: `${BASE}${url.pathname}?offset=${offset + 1}&limit=100&sort=start:asc` } } : {};
    return json({ _metadata: metadata, conversationHistoryRecords: records });
  }) as typeof globalThis.fetch;
  const platform = createPlatform({ csdsUrl: BASE, allowInsecure: true, http: { fetch, timeoutMs: 5_000, sleep: async () => {} } });
  return { source: platform.openSource("123", credentials), calls };
}

describe("RecentIds", () => {
  it("keeps an id that keeps appearing on consecutive pages", () => {
    const recent = new RecentIds(2);
    expect(recent.seen("a")).toBe(false);
    recent.rotate();
    expect(recent.seen("a")).toBe(true);
    recent.rotate();
    expect(recent.seen("a")).toBe(true);
    recent.rotate();
    expect(recent.seen("a")).toBe(true);
    // Still forgotten once it stops appearing.
    recent.rotate();
    recent.rotate();
    expect(recent.seen("a")).toBe(false);
  });
});

describe("search paging that makes no progress", () => {
  it("yields a record repeated on three consecutive pages once", async () => {
    const { source } = fakePlatform((offset) => ({ ids: offset <= 2 ? [{ id: "same", t: FROM + 1000 }, { id: `own${offset}`, t: FROM + 2000 }] : [], next: offset < 3 }));
    const out: string[] = [];
    for await (const r of source.fetch("messaging-interactions", { from: new Date(FROM), to: new Date(TO) })) out.push(String((r.info as { conversationId: string }).conversationId));
    expect(out).toEqual(["same", "own0", "own1", "own2"]);
  });

  it("stops with pagination_loop when every page repeats the same record under a new next link", async () => {
    // Ends after 300 pages so that code without the limit finishes (and fails the test) instead of paging forever.
    const { source, calls } = fakePlatform((offset) => ({ ids: [{ id: "same", t: FROM + 1000 }], next: offset < 300 }));
    const out: unknown[] = [];
    const error = await failure(
      (async () => {
        for await (const r of source.fetch("messaging-interactions", { from: new Date(FROM), to: new Date(TO) })) {
          out.push(r);
        }
      })(),
    );
    expect(error).toMatchObject({ code: "pagination_loop", permanent: false });
    expect(out).toHaveLength(1);
    expect(calls.search).toBeLessThanOrEqual(25);
  });

  it("yields the records of pages that come round again in a cycle of three (new offsets) once, then stops with pagination_loop", async () => {
    // Pages A, B, C, then A, B, C again and again under new next links: past the two pages the
    // recent-ids window remembers. Ends after 300 pages so that code without the check finishes.
    const cycle = [0, 1, 2].map((p) => [{ id: `p${p}a`, t: FROM + 1000 + p }, { id: `p${p}b`, t: FROM + 2000 + p }]);
    const { source, calls } = fakePlatform((offset) => ({ ids: cycle[offset % 3]!, next: offset < 300 }));
    const out: string[] = [];
    const error = await failure(
      (async () => {
        for await (const r of source.fetch("messaging-interactions", { from: new Date(FROM), to: new Date(TO) })) out.push(String((r.info as { conversationId: string }).conversationId));
      })(),
    );
    expect(error).toMatchObject({ code: "pagination_loop", permanent: false });
    expect(out).toEqual(["p0a", "p0b", "p1a", "p1b", "p2a", "p2b"]);
    expect(calls.search).toBeLessThanOrEqual(30);
  });

  it("still pages through edge pages that hold only records outside the window", async () => {
    // 30 pages of new records just before the window (the API rounds it out), then the window's.
    const { source } = fakePlatform((offset) =>
      offset < 30 ? { ids: [{ id: `early${offset}`, t: FROM - 1000 }], next: true } : { ids: [{ id: "inside", t: FROM + 1000 }], next: false },
    );
    const out: unknown[] = [];
    for await (const r of source.fetch("messaging-interactions", { from: new Date(FROM), to: new Date(TO) })) out.push(r);
    expect(out).toHaveLength(1);
  });
});
