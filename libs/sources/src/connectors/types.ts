import type { FetchWindow, SourceApi, SourceCredentials } from "../apis.js";
import type { CsdsClient } from "../csds.js";
import type { PlatformHttp } from "../http.js";

export type SourceRecord = Record<string, unknown>;

/** What a connector needs to talk to one account: credentials, discovery, HTTP and a call counter. */
export interface SourceSession {
  readonly accountId: string;
  readonly credentials: SourceCredentials;
  readonly csds: CsdsClient;
  readonly http: PlatformHttp;
  /** Base URL of the Data Access API for this account. */
  dataAccessBaseUrl(): Promise<string>;
  /** HTTP requests sent so far (retries included). */
  readonly calls: number;
  /** Count one request (the HTTP client calls it). */
  countCall(): void;
  now(): number;
  signal?: AbortSignal;
}

export interface FetchOptions {
  /** Report parameters the API understands (skillIds, agentIds, intervalMinutes, …). */
  params?: Record<string, unknown>;
  /** Split windows into ranges of at most this (never above the API's maximum). */
  maxRangeMs?: number;
  /** Records per page (never above the API's maximum). */
  pageSize?: number;
  /**
   * The parts of each record to ask for besides `info` (the report's `sourceContent`), where
   * the API serves records in parts (Messaging Interactions); other APIs ignore it. Absent: all.
   */
  content?: readonly string[];
  /**
   * For callers that store records as received (the fetcher): each record may carry only what
   * windowing and de-duplication read (for the search APIs, its `info`) plus its exact JSON
   * (`rawJsonOf`), which saves parsing every record in full. Others get whole records.
   */
  asReceived?: boolean;
}

export interface Connector {
  readonly api: SourceApi;
  readonly label: string;
  /** False for snapshots (account configuration): every record is returned whatever the window. */
  readonly windowed: boolean;
  /** Stable identity of a record (used to drop repeats). */
  recordId(record: SourceRecord): string;
  /** The instant that places a record in a window (epoch ms), or null for snapshots. */
  recordTime(record: SourceRecord): number | null;
  /** The window's records, in order, repeats and out-of-window records removed. */
  fetch(session: SourceSession, window: FetchWindow, options?: FetchOptions): AsyncIterable<SourceRecord>;
  /** One cheap call proving the key may use this API. */
  probe(session: SourceSession): Promise<void>;
}
