import { createHash } from "node:crypto";
import { SOURCE_API_LABELS, type FetchWindow, type SourceApi } from "../apis.js";
import type { CsdsService } from "../csds.js";
import { SourceError } from "../errors.js";
import { parseJsonText } from "../http.js";
import { readPlatformInstant, type InstantReading } from "../platform-time.js";
import { attachRawJson } from "../raw-json.js";
import { scanSearchPage } from "../search-page.js";
import { RecentIds, splitWindow } from "../window.js";
import type { Connector, FetchOptions, SourceRecord, SourceSession } from "./types.js";

interface SearchSpec {
  api: SourceApi;
  service: CsdsService;
  /** Path after the base URL, with `{accountId}`. */
  path: string;
  recordsKey: string;
  maxPageSize: number;
  /** The longest `start` range one request may ask for. */
  maxRangeMs: number;
  idOf(record: SourceRecord): string;
  /** The record's time the window is checked against, as the report mappers read it. */
  timeOf(record: SourceRecord): InstantReading;
  /** Filter body fields from report parameters. */
  bodyFromParams(params: Record<string, unknown>): Record<string, unknown>;
  /** Query parameters every request of this API carries, next-page links included. */
  fixedQuery?: Record<string, string>;
  /**
   * Where a record the search marks partial (`info.isPartial`) is served whole: a POST path
   * (with `{accountId}`) and its body for the record's id.
   */
  fullRecord?: { path: string; body(id: string): Record<string, unknown> };
  /**
   * The body field that limits the parts of each record served (`FetchOptions.content`), for
   * APIs that serve records in parts; others get whole records whatever is asked.
   */
  contentField?: string;
}

interface RawPage {
  raw: Buffer;
  peekedNext: string | null;
}

interface SearchPage {
  records: SourceRecord[];
  next: string | null;
  /** `_metadata.count`: how many records the whole search has (null when not given). */
  count: number | null;
}

/** Pages requested ahead of the one being parsed. */
const READ_AHEAD = 2;

interface ReadAheadEntry {
  url: string;
  page: Promise<RawPage>;
  done?: RawPage;
  extended?: boolean;
}

/**
 * Keeps the platform busy while we parse: as soon as a page's body arrives, the `next` link
 * read from its head is requested too, up to READ_AHEAD pages queued beyond the one being
 * consumed. The consumer checks each parsed `next` against the URL queued after it and clears
 * the read-ahead when they differ (the parsed link is the authority).
 */
class ReadAhead {
  private entries: ReadAheadEntry[] = [];
  private tail: ReadAheadEntry | undefined;

  constructor(
    private readonly load: (url: string) => Promise<RawPage>,
    /** Whether a peeked link may be requested (same origin, not requested before); records it. */
    private readonly admit: (url: string) => boolean,
  ) {}

  request(url: string): void {
    const entry: ReadAheadEntry = { url, page: this.load(url) };
    entry.page.then(
      (page) => {
        entry.done = page;
        this.extend();
      },
      () => {}, // surfaced when the consumer takes the page
    );
    this.entries.push(entry);
    this.tail = entry;
  }

  private extend(): void {
    const last = this.tail;
    if (!last?.done || last.extended || this.entries.length >= READ_AHEAD) return;
    last.extended = true;
    const next = last.done.peekedNext;
    if (next && this.admit(next)) this.request(next);
  }

  /** The URL of the page that will be taken next. */
  get nextUrl(): string | undefined {
    return this.entries[0]?.url;
  }

  take(): Promise<RawPage> | undefined {
    const entry = this.entries.shift();
    this.extend();
    return entry?.page;
  }

  clear(): void {
    this.entries = [];
    this.tail = undefined;
  }
}

/**
 * Pages in a row that bring no new record (empty, or only repeats), each with a next link,
 * before paging is declared broken.
 */
const MAX_STALLED_PAGES = 20;

const info = (record: SourceRecord) => (record.info ?? {}) as Record<string, unknown>;

/**
 * A record's start, as the report mappers read it (`startTimeL`, else the text `startTime`, which
 * the documentation gives as its alternative): its epoch ms, or what keeps it from having one.
 */
function startOf(record: SourceRecord): InstantReading {
  return readPlatformInstant(info(record), "startTimeL", "startTime");
}

/** Remembers a page by the hash of its sorted ids; false when a page with the same ids was seen before. */
function rememberPage(seen: Set<string>, ids: string[]): boolean {
  const hash = createHash("sha256");
  for (const id of [...ids].sort()) hash.update(id).update("\n");
  const key = hash.digest("base64");
  if (seen.has(key)) return false;
  seen.add(key);
  return true;
}

/** The `_metadata` fields read: the next page, the result count, and (Engagement History) whether every shard answered. */
type PageMetadata = { next?: { href?: unknown }; count?: unknown; shardsStatusResult?: { partialResult?: unknown; failureShards?: unknown; totalShards?: unknown } };

/** A count given as a whole number of records, else null (not checked). */
const resultCount = (value: unknown): number | null => (typeof value === "number" && Number.isSafeInteger(value) && value >= 0 ? value : null);

function sameOrigin(a: string, b: string): boolean {
  try {
    return new URL(a).origin === new URL(b).origin;
  } catch {
    return false;
  }
}

/**
 * The two POST …/search APIs (Messaging Interactions, Engagement History): offset paging that
 * follows `_metadata.next`, windows split into the allowed `start` ranges, only records inside
 * the window kept (the API rounds `from`/`to` out to 10 minutes), repeats across pages dropped,
 * a repeating `next` link detected. Pages are requested ahead while the current one is consumed.
 */
function searchConnector(spec: SearchSpec): Connector {
  /** `url` with the API's fixed query parameters it lacks. */
  function withFixedQuery(url: string): string {
    if (!spec.fixedQuery) return url;
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      return url; // refused later as a link to another host
    }
    let added = false;
    for (const [name, value] of Object.entries(spec.fixedQuery)) {
      if (parsed.searchParams.has(name)) continue;
      parsed.searchParams.set(name, value);
      added = true;
    }
    return added ? parsed.toString() : url;
  }

  const callContext = (session: SourceSession) => ({
    accountId: session.accountId,
    credentials: session.credentials,
    api: spec.api,
    onCall: () => session.countCall(),
    ...(session.signal ? { signal: session.signal } : {}),
  });

  /**
   * Engagement History answers from shards and says when some failed (`shardsStatusResult`):
   * such a page lacks records, so it fails the attempt (transient) instead of passing as complete.
   */
  function assertWholePage(metadata: PageMetadata): void {
    const shards = metadata.shardsStatusResult;
    if (!shards || typeof shards !== "object") return;
    const failed = Number(shards.failureShards ?? 0);
    if (shards.partialResult === true || failed > 0) {
      const of = Number.isFinite(failed) && shards.totalShards !== undefined ? ` (${failed} of ${String(shards.totalShards)} shards failed)` : "";
      throw new SourceError("upstream_unavailable", `${SOURCE_API_LABELS[spec.api]} answered with part of its data only${of}; the page is incomplete`, { api: spec.api });
    }
  }

  /**
   * A body that is not a page (not an object, or one with neither the records nor `_metadata`)
   * is malformed, never an empty page: taken for one, the window's records would be lost without
   * a word.
   */
  function notAPage(what: string): SourceError {
    return new SourceError("malformed_response", `Malformed response from ${SOURCE_API_LABELS[spec.api]}: ${what}`, { api: spec.api, byteOffset: 0 });
  }

  function toPage(data: unknown): SearchPage {
    if (typeof data !== "object" || data === null || Array.isArray(data)) throw notAPage("not an object");
    const page = data as Record<string, unknown>;
    if (!Object.hasOwn(page, spec.recordsKey) && !Object.hasOwn(page, "_metadata")) throw notAPage(`neither "${spec.recordsKey}" nor "_metadata"`);
    const records = page[spec.recordsKey];
    const metadata = (page._metadata ?? {}) as PageMetadata;
    assertWholePage(metadata);
    if (records !== undefined && !Array.isArray(records)) {
      throw new SourceError("malformed_response", `Malformed response from ${SOURCE_API_LABELS[spec.api]}: "${spec.recordsKey}" is not a list`, { api: spec.api, byteOffset: 0 });
    }
    const next = typeof metadata.next?.href === "string" ? metadata.next.href : null;
    return { records: (records ?? []) as SourceRecord[], next, count: resultCount(metadata.count) };
  }

  /**
   * The page read for storing as received: each record is its exact bytes plus its parsed `info`
   * (what windowing and de-duplication read), and the next link from `_metadata`. Null when the
   * page is not plainly of that shape; the caller then parses it in full, which reports problems
   * with their byte offset.
   */
  function receivedPage(raw: Buffer): SearchPage | null {
    const layout = scanSearchPage(raw, spec.recordsKey);
    // Neither records nor `_metadata`: the ordinary path refuses it.
    if (!layout || (!layout.hasRecords && layout.metadataStart < 0)) return null;
    let metadata: PageMetadata;
    try {
      metadata = layout.metadataStart >= 0 ? (JSON.parse(raw.toString("utf8", layout.metadataStart, layout.metadataEnd)) as PageMetadata) : {};
    } catch {
      return null;
    }
    assertWholePage(metadata);
    try {
      const next = typeof metadata.next?.href === "string" ? metadata.next.href : null;
      const records: SourceRecord[] = new Array(layout.recordStarts.length);
      for (let k = 0; k < records.length; k++) {
        const infoStart = layout.infoStarts[k]!;
        const record: SourceRecord = infoStart < 0 ? {} : { info: JSON.parse(raw.toString("utf8", infoStart, layout.infoEnds[k])) as unknown };
        attachRawJson(record, raw.subarray(layout.recordStarts[k], layout.recordEnds[k]));
        records[k] = record;
      }
      return { records, next, count: resultCount(layout.count) };
    } catch {
      return null;
    }
  }

  async function fetchPage(session: SourceSession, url: string, body: Record<string, unknown>): Promise<SearchPage> {
    const { data } = await session.http.json<unknown>(callContext(session), "POST", url, body);
    return toPage(data);
  }

  /** A page's body as records: as received when asked and plainly shaped, else parsed in full. */
  function readPage(raw: Buffer, asReceived: boolean): SearchPage {
    return (asReceived ? receivedPage(raw) : null) ?? toPage(parseJsonText(raw.toString("utf8"), spec.api));
  }

  /** The body field asking for only `content` (besides `info`), where the API serves parts. */
  function contentBody(content: readonly string[] | undefined): Record<string, unknown> {
    return spec.contentField && content !== undefined ? { [spec.contentField]: [...content] } : {};
  }

  /**
   * The whole record for one the search served partial, asked for by its id (the documented way
   * to its full data); a partial record stored as it came would silently lack messages.
   */
  async function fullRecordOf(session: SourceSession, base: string, record: SourceRecord, asReceived: boolean, content: readonly string[] | undefined): Promise<SourceRecord> {
    const { path, body } = spec.fullRecord!;
    const id = spec.idOf(record);
    const url = withFixedQuery(`${base}${path.replace("{accountId}", encodeURIComponent(session.accountId))}`);
    const { raw } = await fetchRaw(session, url, { ...body(id), ...contentBody(content) });
    const page = readPage(raw, asReceived);
    const full = page.records.find((candidate) => spec.idOf(candidate) === id);
    if (!full) throw new SourceError("malformed_response", `${SOURCE_API_LABELS[spec.api]} listed ${id} as partial but did not return it whole`, { api: spec.api, byteOffset: 0 });
    return full;
  }

  /**
   * The page's raw body plus the `next` link read from its head, before the (much slower)
   * full parse: lets the next request leave while this page is parsed. The link is checked
   * against the parsed one before it is trusted.
   */
  async function fetchRaw(session: SourceSession, url: string, body: Record<string, unknown>): Promise<RawPage> {
    const response = await session.http.send(callContext(session), "POST", url, body);
    const head = response.body.subarray(0, 4096).toString("utf8");
    const match = /"next"\s*:\s*\{[^{}]*?"href"\s*:\s*"([^"\\]+)"/.exec(head);
    return { raw: response.body, peekedNext: match ? match[1]! : null };
  }

  return {
    api: spec.api,
    label: SOURCE_API_LABELS[spec.api],
    windowed: true,
    recordId: spec.idOf,
    recordTime: (record) => {
      const reading = spec.timeOf(record);
      return "ms" in reading ? reading.ms : null;
    },
    async *fetch(session: SourceSession, window: FetchWindow, options: FetchOptions = {}) {
      const base = await session.csds.baseUrl(session.accountId, spec.service, spec.api);
      const pageSize = Math.min(spec.maxPageSize, options.pageSize ?? spec.maxPageSize);
      const maxRange = Math.min(spec.maxRangeMs, options.maxRangeMs ?? spec.maxRangeMs);
      const extra = { ...spec.bodyFromParams(options.params ?? {}), ...contentBody(options.content) };
      for (const range of splitWindow(window, maxRange)) {
        // `to` is inclusive at the API: ask for [from, to - 1 ms] and keep [from, to).
        const body = { ...extra, start: { from: range.from, to: range.to - 1 } };
        const pageUrl = (offset: number, limit: number) =>
          withFixedQuery(`${base}${spec.path.replace("{accountId}", encodeURIComponent(session.accountId))}?offset=${offset}&limit=${limit}&sort=start:asc`);
        /**
         * The page a `next` link points at, asked for on the host we were given and in our order:
         * the platform's links may name an internal host (its documented examples show
         * localhost:8080) and leave the sort out, and paging by offset in another order would
         * skip and repeat records without a word. A link without an offset is followed as given
         * (on our host only), with our fixed parameters.
         */
        const linkTo = (href: string): string => {
          let link: URL;
          try {
            link = new URL(href, base);
          } catch {
            return href;
          }
          const offset = link.searchParams.get("offset");
          if (offset === null || !/^\d{1,9}$/.test(offset)) return withFixedQuery(href);
          const limit = link.searchParams.get("limit");
          return pageUrl(Number(offset), limit !== null && /^\d{1,3}$/.test(limit) && Number(limit) >= 1 && Number(limit) <= spec.maxPageSize ? Number(limit) : pageSize);
        };
        const first = pageUrl(0, pageSize);
        // `consumed`: links whose page we committed to (a repeat is a loop); `requested`: every
        // link sent, read-ahead included (never requested twice).
        const consumed = new Set<string>([first]);
        const requested = new Set<string>([first]);
        const reader = new ReadAhead(
          async (url) => {
            const fetched = await fetchRaw(session, url, body);
            return { ...fetched, peekedNext: fetched.peekedNext === null ? null : linkTo(fetched.peekedNext) };
          },
          (url) => {
            if (!sameOrigin(url, base) || requested.has(url)) return false;
            requested.add(url);
            return true;
          },
        );
        reader.request(first);
        const recent = new RecentIds(2);
        // Every page's set of ids, hashed: a page that repeats an earlier one whole, at a new
        // offset, brings nothing new however far back the earlier one was (a cycle of three or
        // more pages slips past the recent-ids window of two). A few bytes per page.
        const pagesSeen = new Set<string>();
        // The result set's size as the pages so far gave it (`_metadata.count`). Offset paging
        // over a set that shrank between pages (a conversation left a status filter, or was
        // deleted) starts the next page that many records late and skips those records without a
        // word; a set that grew repeats records instead, which the checks above drop.
        let count: number | null = null;
        let stalled = 0;
        for (let pending = reader.take(); pending; pending = reader.take()) {
          const { raw }: RawPage = await pending;
          const parsed = readPage(raw, options.asReceived === true);
          const page = { ...parsed, next: parsed.next === null ? null : linkTo(parsed.next) };
          if (page.count !== null) {
            if (count !== null && page.count < count) {
              // Not resumable in place: which records moved is unknown. The attempt fails as
              // transient, and the job's retry fetches the window again.
              throw new SourceError(
                "upstream_unavailable",
                `${SOURCE_API_LABELS[spec.api]} changed its result set while paging (${count} records, then ${page.count}): records may have been skipped, so the window must be fetched again`,
                { api: spec.api },
              );
            }
            count = page.count;
          }
          // Progress is a record not seen on the last pages, inside the window or not: the API's
          // 10-minute rounding can fill edge pages with records outside it, and they are new.
          const fresh: SourceRecord[] = [];
          let progress = false;
          const repeatsAPage = page.records.length > 0 && !rememberPage(pagesSeen, page.records.map(spec.idOf));
          for (const record of page.records) {
            if (recent.seen(spec.idOf(record)) || repeatsAPage) continue;
            progress = true;
            const reading = spec.timeOf(record);
            // A record without a time it can be placed by would fail every window check, lost
            // without a word (or, written anyway, in every window).
            if (!("ms" in reading)) {
              const why = "problem" in reading ? `info.${reading.problem.key}: ${reading.problem.message}` : "no start time (startTimeL or startTime)";
              throw new SourceError("malformed_response", `Malformed response from ${SOURCE_API_LABELS[spec.api]}: record ${spec.idOf(record)} has ${"problem" in reading ? "a start time that is not one" : "no start time"} (${why})`, { api: spec.api, byteOffset: 0 });
            }
            if (reading.ms >= range.from && reading.ms < range.to) fresh.push(record);
          }
          recent.rotate();
          stalled = progress ? 0 : stalled + 1;
          if (page.next) {
            if (!sameOrigin(page.next, base)) {
              throw new SourceError("malformed_response", `${SOURCE_API_LABELS[spec.api]} pointed its next page at another host`, { api: spec.api, byteOffset: 0 });
            }
            if (consumed.has(page.next)) {
              throw new SourceError("pagination_loop", `${SOURCE_API_LABELS[spec.api]} repeated a next-page link (${new URL(page.next).search}); stopping instead of looping`, { api: spec.api });
            }
            if (stalled > MAX_STALLED_PAGES) {
              throw new SourceError("pagination_loop", `${SOURCE_API_LABELS[spec.api]} kept answering pages with no new records (empty or repeats) and a next link`, { api: spec.api });
            }
            consumed.add(page.next);
            // The parsed body is the authority: read-ahead of another link is dropped.
            if (reader.nextUrl !== page.next) {
              reader.clear();
              requested.add(page.next);
              reader.request(page.next);
            }
          } else {
            reader.clear();
          }
          for (const record of fresh) yield spec.fullRecord && info(record).isPartial === true ? await fullRecordOf(session, base, record, options.asReceived === true, options.content) : record;
          if (!page.next) break;
        }
      }
    },
    async probe(session: SourceSession) {
      const base = await session.csds.baseUrl(session.accountId, spec.service, spec.api);
      const now = session.now();
      const url = withFixedQuery(`${base}${spec.path.replace("{accountId}", encodeURIComponent(session.accountId))}?offset=0&limit=1`);
      await fetchPage(session, url, { start: { from: now - 3_600_000, to: now } });
    },
  };
}

const idList = (value: unknown): unknown[] | undefined => (Array.isArray(value) && value.length > 0 ? value : undefined);

/** The `source` the Messaging Interactions API requires of every caller: this product's reports. */
export const MESSAGING_INTERACTIONS_SOURCE = "Transporter_Reports";

export const messagingInteractions = searchConnector({
  api: "messaging-interactions",
  service: "msgHist",
  path: "/messaging_history/api/account/{accountId}/conversations/search",
  recordsKey: "conversationHistoryRecords",
  maxPageSize: 100,
  // Documented maximum: three months. 90 days stays inside it after the 10-minute rounding.
  maxRangeMs: 90 * 24 * 3_600_000,
  // Documented as required: who is calling (at most 20 characters, ProjectName+AppName+UseCase).
  fixedQuery: { source: MESSAGING_INTERACTIONS_SOURCE },
  fullRecord: { path: "/messaging_history/api/account/{accountId}/conversations/conversation/search", body: (id) => ({ conversationId: id }) },
  idOf: (r) => String(info(r).conversationId),
  timeOf: startOf,
  bodyFromParams: (p) => {
    const body: Record<string, unknown> = {};
    if (idList(p.skillIds)) body.skillIds = p.skillIds;
    if (idList(p.agentIds)) body.agentIds = p.agentIds;
    if (idList(p.agentGroupIds)) body.agentGroupIds = p.agentGroupIds;
    if (idList(p.status)) body.status = p.status;
    return body;
  },
  // Documented "partial retrieval": `info` always, plus the listed content types.
  contentField: "contentToRetrieve",
});

export const engagementHistory = searchConnector({
  api: "engagement-history",
  service: "engHistDomain",
  path: "/interaction_history/api/account/{accountId}/interactions/search",
  recordsKey: "interactionHistoryRecords",
  maxPageSize: 100,
  // Documented maximum: one month, and from/to are rounded out to 10 minutes: 29 days stays
  // inside it however "one month" is counted.
  maxRangeMs: 29 * 24 * 3_600_000,
  idOf: (r) => String(info(r).engagementId),
  timeOf: startOf,
  bodyFromParams: (p) => {
    const body: Record<string, unknown> = {};
    if (idList(p.skillIds)) body.skillIds = p.skillIds;
    if (idList(p.agentIds)) body.agentIds = p.agentIds;
    return body;
  },
});
