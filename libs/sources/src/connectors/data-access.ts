import { gunzipSync } from "node:zlib";
import { SOURCE_API_LABELS, type FetchWindow, type SourceApi } from "../apis.js";
import { SourceError, sourceErrors } from "../errors.js";
import { firstJsonError } from "../json-offset.js";
import { attachRawJson } from "../raw-json.js";
import { RecentIds, splitWindow } from "../window.js";
import type { Connector, FetchOptions, SourceRecord, SourceSession } from "./types.js";

const HOUR = 3_600_000;
/** Files are listed per day: the API does not document a maximum, this keeps each list small. */
const LIST_RANGE_MS = 24 * HOUR;

type DataType = "agentActivity" | "webSession" | "engagement" | "survey";

interface FileEntry {
  name: string;
  href: string;
}

/**
 * Split a text holding one or more JSON documents (concatenated or one per line, as the Data
 * Access files are) into parsed documents. Reports the byte offset of anything broken.
 */
export function* jsonDocuments(text: string, api?: SourceApi): Generator<unknown> {
  let depth = 0;
  let inString = false;
  let escaped = false;
  let start = -1;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (escaped) escaped = false;
      else if (c === 92 /* \ */) escaped = true;
      else if (c === 34 /* " */) inString = false;
      continue;
    }
    if (c === 34) {
      if (depth === 0) throw sourceErrors.malformed(api, "unexpected text between JSON documents", Buffer.byteLength(text.slice(0, i)));
      inString = true;
    } else if (c === 123 /* { */ || c === 91 /* [ */) {
      if (depth === 0) start = i;
      depth++;
    } else if (c === 125 /* } */ || c === 93 /* ] */) {
      depth--;
      if (depth < 0) throw sourceErrors.malformed(api, "unbalanced JSON", Buffer.byteLength(text.slice(0, i)));
      if (depth === 0) {
        const piece = text.slice(start, i + 1);
        let doc: unknown;
        try {
          doc = JSON.parse(piece);
        } catch {
          const at = Math.max(0, firstJsonError(piece));
          throw sourceErrors.malformed(api, "invalid JSON document", Buffer.byteLength(text.slice(0, start + at)));
        }
        if (doc !== null && typeof doc === "object") attachRawJson(doc, piece);
        yield doc;
        start = -1;
      }
    } else if (depth === 0 && c !== 32 && c !== 10 && c !== 13 && c !== 9) {
      throw sourceErrors.malformed(api, "unexpected text between JSON documents", Buffer.byteLength(text.slice(0, i)));
    }
  }
  if (depth !== 0 || inString) throw sourceErrors.malformed(api, "JSON ends early (truncated file)", Buffer.byteLength(text));
}

const unwrap = (v: unknown): unknown => (v && typeof v === "object" && !Array.isArray(v) ? Object.values(v as object)[0] : v);

function recordTime(record: SourceRecord): number {
  const meta = (record.metaData ?? {}) as Record<string, unknown>;
  return Number(unwrap(meta.startTime));
}

function recordId(record: SourceRecord): string {
  const collection = (record.recordCollection ?? []) as Array<{ body?: Record<string, unknown> }>;
  const body = unwrap(collection[0]?.body) as Record<string, unknown> | undefined;
  const header = unwrap(body?.header) as Record<string, unknown> | undefined;
  const key = unwrap(header?.agentSessionId) ?? unwrap(header?.visitId) ?? "";
  return `${String(key)}:${recordTime(record)}`;
}

/**
 * Data Access: list the hourly files generated in the window (per day), download each (gzip),
 * and yield the session documents starting inside the window. Files listed twice are fetched
 * once; documents repeated across files are dropped. The next file downloads while the current
 * one is consumed.
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
    const origin = new URL(base).origin;
    return list.map((f: Record<string, unknown>) => {
      const href = String(f["@href"] ?? "");
      const name = String(f["@name"] ?? href.split("/").pop() ?? "");
      let sameHost = false;
      try {
        sameHost = new URL(href).origin === origin;
      } catch {
        /* invalid */
      }
      if (!sameHost) throw new SourceError("malformed_response", `${SOURCE_API_LABELS[api]} listed a file on another host`, { api, byteOffset: 0 });
      return { name, href };
    });
  }

  async function download(session: SourceSession, file: FileEntry): Promise<string> {
    const response = await session.http.send(ctx(session), "GET", file.href);
    const gz = response.body.length >= 2 && response.body[0] === 0x1f && response.body[1] === 0x8b;
    if (!gz) return response.body.toString("utf8");
    try {
      return gunzipSync(response.body).toString("utf8");
    } catch {
      throw sourceErrors.malformed(api, `gzip stream of ${file.name} is incomplete`, response.body.length);
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
      // Files are hourly batches: list from the hour that holds the window's start.
      for (const range of splitWindow({ from: Math.floor(from / HOUR) * HOUR, to }, listRange)) {
        const files = (await listFiles(session, range.from, range.to)).filter((f) => {
          if (fetched.has(f.name)) return false;
          fetched.add(f.name);
          return true;
        });
        let pending: Promise<string> | null = files[0] ? download(session, files[0]) : null;
        for (let i = 0; pending; i++) {
          const text: string = await pending;
          pending = files[i + 1] ? download(session, files[i + 1]!) : null;
          pending?.catch(() => {});
          for (const doc of jsonDocuments(text, api)) {
            const record = doc as SourceRecord;
            const t = recordTime(record);
            if (!(t >= from && t < to)) continue;
            if (recent.seen(recordId(record))) continue;
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
