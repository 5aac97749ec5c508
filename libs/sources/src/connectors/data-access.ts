import { SOURCE_API_LABELS, type FetchWindow, type SourceApi } from "../apis.js";
import { SourceError, sourceErrors } from "../errors.js";
import { GzipStreamError, gunzipIfGzip } from "../gunzip.js";
import { JsonDocumentSplitter } from "../json-document-splitter.js";
import { onPlatformHost } from "../platform-hosts.js";
import { RecentIds, splitWindow } from "../window.js";
import type { Connector, FetchOptions, SourceRecord, SourceSession } from "./types.js";

const HOUR = 3_600_000;
/** Files are listed per day: the API does not document a maximum, this keeps each list small. */
const LIST_RANGE_MS = 24 * HOUR;
/**
 * Largest session document read (decompressed JSON). Files are read as they arrive, so memory
 * follows the largest document, not the file; this bounds that too, far above real sessions.
 */
const MAX_DOCUMENT_BYTES = 64 * 1024 * 1024;

type DataType = "agentActivity" | "webSession" | "engagement" | "survey";

interface FileEntry {
  name: string;
  href: string;
  /** End of the hour the file covers (epoch ms): its data is complete from then on. */
  scopeEnd: number;
}

const unwrap = (v: unknown): unknown => (v && typeof v === "object" && !Array.isArray(v) ? Object.values(v as object)[0] : v);

function recordTime(record: SourceRecord): number {
  const meta = (record.metaData ?? {}) as Record<string, unknown>;
  return Number(unwrap(meta.startTime));
}

/** The session's id (agent session or visit) with its start: the same session in two files is one record. */
function recordId(record: SourceRecord): string {
  const collection = (record.recordCollection ?? []) as Array<{ body?: Record<string, unknown> }>;
  const body = unwrap(collection[0]?.body) as Record<string, unknown> | undefined;
  const header = unwrap(body?.header) as Record<string, unknown> | undefined;
  const key = unwrap(header?.agentSessionId) ?? unwrap(header?.visitId) ?? "";
  return `${String(key)}:${recordTime(record)}`;
}

/** A document without a session or visit id cannot be told from another: it is never dropped as a repeat. */
function hasSessionId(id: string): boolean {
  return !id.startsWith(":");
}

/** `<Type>.<startMs>.<endMs>.part-…`: the documented file name carries the hour it covers. */
const FILE_NAME_SCOPE = /^[A-Za-z]+\.\d{10,}\.(\d{10,})\./;
/** An ISO date-time with its zone (a zone-less one would be read in this server's zone). */
const ZONED_DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/i;

/**
 * The end of the hour a listed file covers: the one in its name (epoch ms, unambiguous), else
 * `@scopeEndDate`, else `@scopeStartDate` + 1 hour, when they carry their zone; NaN when none says.
 */
function scopeEndOf(entry: Record<string, unknown>, name: string): number {
  const fromName = FILE_NAME_SCOPE.exec(name);
  if (fromName) return Number(fromName[1]);
  const zoned = (field: string) => {
    const text = String(entry[field] ?? "").trim();
    return ZONED_DATE_TIME.test(text) ? Date.parse(text) : Number.NaN;
  };
  const end = zoned("@scopeEndDate");
  return Number.isFinite(end) ? end : zoned("@scopeStartDate") + HOUR;
}

/**
 * Data Access: the platform groups a session's events once the session is closed and writes the
 * closed sessions in hourly files; a file's scope is the hour it was generated for, and the
 * documented way to read incrementally is by that time. So a window gets every document of the
 * files whose hour *ends* in it (not the sessions that started in it: a session open across the
 * window's end is in a later file, and would otherwise be lost by both windows). By its end: a
 * file is published within the platform's SLA of its hour's end, and so within the task's
 * minimum delay of the window's end, whatever hour the window ends at. Consecutive windows
 * therefore deliver each file, and each session, once. Files listed twice are read once and a
 * session repeated in the next file is dropped (each closes once: repeats are a re-sent file's
 * neighbours, not far apart; remembering every id of a long window would cost memory that grows
 * with it). One file is open at a time: its download keeps pace with its documents being consumed.
 */
function dataAccessConnector(api: SourceApi, type: DataType): Connector {
  const ctx = (session: SourceSession) => ({
    accountId: session.accountId,
    credentials: session.credentials,
    api,
    onCall: () => session.countCall(),
    ...(session.signal ? { signal: session.signal } : {}),
  });

  async function listFiles(session: SourceSession, from: number, to: number): Promise<FileEntry[]> {
    const base = await session.dataAccessBaseUrl();
    const url = `${base}/data_access_le/account/${encodeURIComponent(session.accountId)}/le/${type}?startTime=${from}&endTime=${to}`;
    const { data } = await session.http.json<{ dataAccessFiles?: { file?: unknown } }>(ctx(session), "GET", url);
    const files = data?.dataAccessFiles?.file;
    if (files === undefined || files === null) return [];
    const list = Array.isArray(files) ? files : [files]; // XML-to-JSON style: one file may come unwrapped
    return list.map((f: Record<string, unknown>) => {
      const href = String(f["@href"] ?? "");
      const name = String(f["@name"] ?? href.split("/").pop() ?? "");
      // The platform lists files on a sibling host of the one asked (va-a. for va.); never beyond it.
      if (!onPlatformHost(href, base)) throw new SourceError("malformed_response", `${SOURCE_API_LABELS[api]} listed a file on a host outside the platform's`, { api, byteOffset: 0 });
      const scopeEnd = scopeEndOf(f, name);
      if (!Number.isFinite(scopeEnd)) throw sourceErrors.malformed(api, `file ${JSON.stringify(name)} is listed without the hour it covers (in its name or a zoned @scopeEndDate)`, 0);
      return { name, href, scopeEnd };
    });
  }

  /** A file's documents as its body arrives: never the whole file in memory, compressed or not. */
  async function* fileDocuments(session: SourceSession, file: FileEntry): AsyncGenerator<unknown> {
    const { body } = await session.http.stream(ctx(session), "GET", file.href);
    const splitter = new JsonDocumentSplitter({ api, maxDocumentBytes: MAX_DOCUMENT_BYTES });
    try {
      for await (const chunk of gunzipIfGzip(body)) yield* splitter.push(chunk);
      splitter.end();
    } catch (error) {
      if (error instanceof GzipStreamError) {
        throw sourceErrors.malformed(api, `gzip stream of ${file.name} is ${error.incomplete ? "incomplete" : "corrupt"}`, error.compressedBytes);
      }
      throw error;
    } finally {
      body.destroy();
    }
  }

  return {
    api,
    label: SOURCE_API_LABELS[api],
    windowed: true,
    recordId,
    recordTime,
    async *fetch(session: SourceSession, window: FetchWindow, options: FetchOptions = {}) {
      const from = +window.from;
      const to = +window.to;
      const fetched = new Set<string>();
      const recent = new RecentIds(2);
      const listRange = Math.min(LIST_RANGE_MS, options.maxRangeMs ?? LIST_RANGE_MS);
      // The API selects files by the start of the hour they cover (documented); listed with an
      // hour to spare on each side, so a window's files are all listed whether it compares that
      // start or the hour's end. The file's own hour then decides which window takes it.
      for (const range of splitWindow({ from: from - HOUR, to: to + HOUR }, listRange)) {
        const files = (await listFiles(session, range.from, range.to)).filter((f) => {
          if (!(f.scopeEnd > from && f.scopeEnd <= to) || fetched.has(f.name)) return false;
          fetched.add(f.name);
          return true;
        });
        files.sort((a, b) => a.scopeEnd - b.scopeEnd || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
        for (const file of files) {
          for await (const doc of fileDocuments(session, file)) {
            const record = doc as SourceRecord;
            const id = recordId(record);
            if (hasSessionId(id) && recent.seen(id)) continue;
            yield record;
          }
          recent.rotate();
        }
      }
    },
    async probe(session: SourceSession) {
      const now = session.now();
      await listFiles(session, now - HOUR, now);
    },
  };
}

export const dataAccessAgentActivity = dataAccessConnector("data-access-agent-activity", "agentActivity");
export const dataAccessWebSession = dataAccessConnector("data-access-web-session", "webSession");
export const dataAccessEngagement = dataAccessConnector("data-access-engagement", "engagement");
export const dataAccessSurvey = dataAccessConnector("data-access-survey", "survey");
