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

/**
 * A platform whose Messaging Interactions search pages by offset over `state.records` as they are
 * at each request (inside the asked `start` range, oldest first), with `_metadata.count` unless
 * `withCount` is false; `afterServe(n)` runs after the n-th search answer (to change the records
 * between pages).
 */
function changingPlatform(state: { records: Array<{ id: string; t: number }> }, afterServe: (served: number) => void = () => {}, withCount = true) {
  const calls = { search: 0 };
  const fetch = (async (input: string | URL | Request, init?: RequestInit) => {
    const url = new URL(String(input instanceof Request ? input.url : input));
    if (url.pathname.includes("baseURI.json")) return json({ baseURIs: [{ service: "msgHist", baseURI: BASE }] });
    const { start } = JSON.parse(String(init?.body)) as { start: { from: number; to: number } };
    const offset = Number(url.searchParams.get("offset"));
    const limit = Number(url.searchParams.get("limit"));
    const matching = state.records.filter((r) => r.t >= start.from && r.t <= start.to);
    const metadata: Record<string, unknown> = withCount ? { count: matching.length } : {};
    if (offset + limit < matching.length) metadata.next = { href: `${BASE}${url.pathname}?offset=${offset + limit}&limit=${limit}&sort=start:asc` };
    const page = matching.slice(offset, offset + limit).map(({ id, t }) => ({ info: { conversationId: id, startTimeL: t } }));
    afterServe(++calls.search);
    return json({ _metadata: metadata, conversationHistoryRecords: page });
  }) as typeof globalThis.fetch;
  const platform = createPlatform({ csdsUrl: BASE, allowInsecure: true, http: { fetch, timeoutMs: 5_000, sleep: async () => {} } });
  return { source: platform.openSource("123", credentials), calls };
}

const ids = (n: number, from = 0) => Array.from({ length: n }, (_, i) => ({ id: `r${String(from + i).padStart(3, "0")}`, t: FROM + 1000 + (from + i) * 1000 }));

async function fetchIds(source: ReturnType<typeof changingPlatform>["source"], options: { asReceived?: boolean; maxRangeMs?: number } = {}): Promise<string[]> {
  const out: string[] = [];
  for await (const r of source.fetch("messaging-interactions", { from: new Date(FROM), to: new Date(TO) }, { params: { status: ["OPEN"] }, ...options })) {
    out.push(String((r.info as { conversationId: string }).conversationId));
  }
  return out;
}

describe("search paging over a result set that changes between pages", () => {
  it.each([{ asReceived: true }, { asReceived: false }])(
    "fails the attempt as transient when the set shrinks (a record left it), instead of silently skipping a record (asReceived: $asReceived)",
    async ({ asReceived }) => {
      // 150 records, pages of 100; after the first page r010 leaves the search (it closed): page
      // two, at offset 100, would start at r101 and r100 would be lost.
      const state = { records: ids(150) };
      const { source, calls } = changingPlatform(state, (served) => {
        if (served === 1) state.records = state.records.filter((r) => r.id !== "r010");
      });
      const error = await failure(fetchIds(source, { asReceived }));
      expect(error).toMatchObject({ code: "upstream_unavailable", permanent: false, details: { api: "messaging-interactions" } });
      expect(error.message).toMatch(/changed its result set while paging \(150 records, then 149\)/);
      expect(calls.search).toBe(2);
      // The job's retry fetches the window again: every record still in the set, once.
      expect(await fetchIds(source, { asReceived })).toEqual(state.records.map((r) => r.id));
    },
  );

  it("also when it first grew and then shrank below what an earlier page said", async () => {
    // 300 records; one arrives after page one (page two repeats a record, dropped), one leaves
    // after page two: page three starts a record late, though the count is back at page one's.
    const state = { records: ids(300) };
    const { source } = changingPlatform(state, (served) => {
      if (served === 1) state.records = [{ id: "new", t: FROM + 500 }, ...state.records];
      if (served === 2) state.records = state.records.filter((r) => r.id !== "r005");
    });
    const error = await failure(fetchIds(source));
    expect(error).toMatchObject({ code: "upstream_unavailable", permanent: false });
    expect(error.message).toMatch(/\(301 records, then 300\)/);
  });

  it("goes on when the set grows (records pushed later are repeats, dropped): every record once", async () => {
    const state = { records: ids(150) };
    const { source } = changingPlatform(state, (served) => {
      if (served === 1) state.records = [{ id: "new", t: FROM + 500 }, ...state.records];
    });
    expect(await fetchIds(source)).toEqual(ids(150).map((r) => r.id));
  });

  it("compares counts within one range only: the ranges of a split window have their own", async () => {
    // Two ranges of 30 minutes: 150 records in the first, 5 in the second.
    const state = { records: [...ids(150), ...Array.from({ length: 5 }, (_, i) => ({ id: `late${i}`, t: FROM + 1_900_000 + i }))] };
    const { source } = changingPlatform(state);
    expect(await fetchIds(source, { maxRangeMs: 1_800_000 })).toEqual(state.records.map((r) => r.id));
  });

  it("does not check when the pages give no count", async () => {
    const state = { records: ids(150) };
    const { source } = changingPlatform(state, (served) => {
      if (served === 1) state.records = state.records.filter((r) => r.id !== "r010");
    }, false);
    expect(await fetchIds(source)).toHaveLength(149);
  });
});
