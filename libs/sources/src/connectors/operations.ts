import { SOURCE_API_LABELS, type FetchWindow, type SourceApi } from "../apis.js";
import { SourceError } from "../errors.js";
import type { Connector, FetchOptions, SourceRecord, SourceSession } from "./types.js";

const MINUTE = 60_000;
/** Documented: timeframe at most 1440 minutes; interval at least 5 minutes and dividing the timeframe. */
const MAX_TIMEFRAME_MINUTES = 1440;
const MIN_INTERVAL_MINUTES = 5;
const DEFAULT_INTERVAL_MINUTES = 15;

interface OperationsSpec {
  api: SourceApi;
  resource: "msgqueuehealth" | "agentactivity";
  /**
   * What an interval's `timestamp` marks, as each method documents it: agentactivity gives the
   * interval's END (intervals rounded up to 5 minutes, so the latest one ends after "now", and the
   * earliest one holds only what is left of the timeframe); msgqueuehealth gives its START
   * (intervals not rounded, counted back from the request time).
   */
  timestampMarks: "start" | "end";
  /** Extra query parameters from report parameters. */
  query(params: Record<string, unknown>): Record<string, string>;
  /** Records of one interval block of the response. */
  explode(timestamp: number, intervalMinutes: number, block: Record<string, unknown>): SourceRecord[];
  idOf(record: SourceRecord): string;
}

function intervalOf(params: Record<string, unknown>): number {
  const value = params.intervalMinutes === undefined ? DEFAULT_INTERVAL_MINUTES : Number(params.intervalMinutes);
  if (!Number.isInteger(value) || value < MIN_INTERVAL_MINUTES || value > MAX_TIMEFRAME_MINUTES) {
    throw new SourceError("unsupported_window", `intervalMinutes must be a whole number of minutes from ${MIN_INTERVAL_MINUTES} to ${MAX_TIMEFRAME_MINUTES}`);
  }
  return value;
}

/**
 * Which interval blocks of a response belong to the window [from, to) (`to` already capped at
 * "now"), for a request whose data starts at `dataFrom` (now − timeframe).
 *
 * Every interval belongs to exactly one window: the one its END falls in, from < end ≤ to. So
 * consecutive windows deliver each interval once, whether or not their edges lie on the interval
 * grid (time zones at :30/:45, windows shorter than the interval, manual runs); an interval
 * crossing `from` is delivered by this window, one crossing `to` by the next. A window on the
 * grid keeps exactly the intervals lying inside it. Since end ≤ to ≤ now, the interval still
 * running is never kept; it belongs to a later window.
 *
 * END timestamps (agentactivity): end = timestamp. The earliest interval of a response holds only
 * the remainder of the timeframe: an interval is also required to start at or after `dataFrom`, so
 * a partial interval is never passed off as a whole one (the request reaches back one interval
 * further than `from` so that the interval ending just after `from` is whole).
 * START timestamps (msgqueuehealth): end = timestamp + interval.
 */
export function keepsInterval(marks: "start" | "end", timestamp: number, intervalMs: number, from: number, to: number, dataFrom: number): boolean {
  if (!Number.isFinite(timestamp)) return false;
  const end = marks === "end" ? timestamp : timestamp + intervalMs;
  if (!(end > from && end <= to)) return false;
  return marks === "start" || end - intervalMs >= dataFrom;
}

/** The end of the window's first interval: the earliest interval end after `from` on the grid of `anyEnd`. */
function firstIntervalEnd(anyEnd: number, intervalMs: number, from: number): number {
  return anyEnd + (Math.floor((from - anyEnd) / intervalMs) + 1) * intervalMs;
}

/**
 * Messaging Operations (near real time): one GET for "the last `timeframe` minutes" in intervals.
 * The window must lie within the API's 24-hour look-back; the timeframe is the smallest multiple
 * of the interval reaching back to the window's start, plus one interval (capped at the API's
 * 1440 minutes), and only the intervals ending inside the window are kept (`keepsInterval`).
 * A window whose first interval starts before the data the API can give (now − timeframe) is
 * refused (`unsupported_window`), never delivered without that interval.
 */
function operationsConnector(spec: OperationsSpec): Connector {
  async function call(session: SourceSession, timeframe: number, interval: number | null, params: Record<string, unknown>) {
    const base = await session.csds.baseUrl(session.accountId, "leDataReporting", spec.api);
    const query = new URLSearchParams({ timeframe: String(timeframe), ...spec.query(params), ...(interval ? { interval: String(interval) } : {}), v: "1" });
    const url = `${base}/operations/api/account/${encodeURIComponent(session.accountId)}/${spec.resource}?${query.toString()}`;
    const { data } = await session.http.json<Record<string, unknown>>(
      { accountId: session.accountId, credentials: session.credentials, api: spec.api, onCall: () => session.countCall(), ...(session.signal ? { signal: session.signal } : {}) },
      "GET",
      url,
    );
    if (typeof data !== "object" || data === null) {
      throw new SourceError("malformed_response", `Malformed response from ${SOURCE_API_LABELS[spec.api]}: not an object`, { api: spec.api, byteOffset: 0 });
    }
    return data;
  }

  /** The window's first interval starts before what the API can reach: refused, with the way out. */
  function outOfReach(interval: number, firstStart: string, dataFrom: number): SourceError {
    return new SourceError(
      "unsupported_window",
      `${SOURCE_API_LABELS[spec.api]} only looks back 24 hours (${MAX_TIMEFRAME_MINUTES} minutes): the window's first ${interval}-minute interval, starting ${firstStart}, ` +
        `is out of its reach (its data starts at ${new Date(dataFrom).toISOString()} for this fetch); schedule this report in shorter windows or with less delay`,
      { api: spec.api },
    );
  }

  return {
    api: spec.api,
    label: SOURCE_API_LABELS[spec.api],
    windowed: true,
    recordId: spec.idOf,
    recordTime: (r) => Number(r.timestamp),
    async *fetch(session: SourceSession, window: FetchWindow, options: FetchOptions = {}) {
      const params = options.params ?? {};
      const interval = intervalOf(params);
      const intervalMs = interval * MINUTE;
      const now = session.now();
      const from = +window.from;
      const to = Math.min(+window.to, now);
      if (to <= from) return;
      // Back to `from`, and one interval more: the window's first interval ends after `from` and
      // may start up to one interval before it.
      const needed = (Math.ceil((now - from) / intervalMs) + 1) * interval;
      const timeframe = needed > MAX_TIMEFRAME_MINUTES ? Math.floor(MAX_TIMEFRAME_MINUTES / interval) * interval : needed;
      // What the API can give: the data from now − timeframe on. Only a window reaching back
      // further than that (a run that starts a while after a day-long window closes) is affected.
      const dataFrom = now - timeframe * MINUTE;
      // The window's first interval starts at `from` or up to one interval before it; beyond one
      // interval before the data it is out of reach whatever the interval grid. (Closer, it depends
      // on where the API puts its intervals: known from the response, below.)
      if (from < dataFrom - intervalMs) throw outOfReach(interval, `at or before ${new Date(from).toISOString()}`, dataFrom);
      const data = await call(session, timeframe, interval, params);
      const intervals = data.metricsByIntervals;
      if (intervals !== undefined && !Array.isArray(intervals)) {
        throw new SourceError("malformed_response", `Malformed response from ${SOURCE_API_LABELS[spec.api]}: metricsByIntervals is not a list`, { api: spec.api, byteOffset: 0 });
      }
      const all = ((intervals ?? []) as Array<{ timestamp?: unknown; metricsData?: Record<string, unknown> }>)
        .map((b) => ({ timestamp: Number(b.timestamp), data: b.metricsData ?? {} }))
        .filter((b) => Number.isFinite(b.timestamp));
      const blocks = all.filter((b) => keepsInterval(spec.timestampMarks, b.timestamp, intervalMs, from, to, dataFrom)).sort((a, b) => a.timestamp - b.timestamp);
      // Never deliver the window without its first interval. agentactivity's earliest interval
      // holds only what is left of the timeframe (it is not kept); msgqueuehealth's may simply be
      // missing. Either way the window's first interval lies (partly) before the data's start.
      const endOf = (timestamp: number) => (spec.timestampMarks === "end" ? timestamp : timestamp + intervalMs);
      if (all.length > 0) {
        const firstEnd = firstIntervalEnd(endOf(all[0]!.timestamp), intervalMs, from);
        if (firstEnd <= to && firstEnd - intervalMs < dataFrom && !blocks.some((b) => endOf(b.timestamp) === firstEnd)) {
          throw outOfReach(interval, `at ${new Date(firstEnd - intervalMs).toISOString()}`, dataFrom);
        }
      } else if (spec.timestampMarks === "end" && from < dataFrom) {
        // No interval to tell the grid by; the first one starts at `from` or before, so before the data.
        throw outOfReach(interval, `at or before ${new Date(from).toISOString()}`, dataFrom);
      }
      const seen = new Set<string>();
      for (const block of blocks) {
        for (const record of spec.explode(block.timestamp, interval, block.data)) {
          const id = spec.idOf(record);
          if (seen.has(id)) continue;
          seen.add(id);
          yield record;
        }
      }
    },
    async probe(session: SourceSession) {
      await call(session, MIN_INTERVAL_MINUTES, null, {});
    },
  };
}

const list = (v: unknown) => (Array.isArray(v) && v.length > 0 ? v.map(String).join(",") : undefined);

/** One record per interval and skill: `{ timestamp (interval start), intervalMinutes, skillId, <documented metrics…> }`. */
export const messagingOperationsQueueHealth = operationsConnector({
  api: "messaging-operations-queue-health",
  resource: "msgqueuehealth",
  timestampMarks: "start",
  query: (p) => ({ skillIds: list(p.skillIds) ?? "all" }),
  explode: (timestamp, intervalMinutes, block) => {
    const skills = (block.skillsMetrics ?? {}) as Record<string, Record<string, unknown>>;
    return Object.entries(skills)
      .map(([skillId, metrics]) => ({ timestamp, intervalMinutes, skillId: Number(skillId), ...metrics }))
      .sort((a, b) => a.skillId - b.skillId);
  },
  idOf: (r) => `${r.timestamp}:${r.skillId}`,
});

/**
 * One record per interval and agent: `{ timestamp (interval end), intervalMinutes, agentId, states: [{ id, name, value, reasons? }] }`.
 * The method filters by agent only (`agentIds`); it has no skill filter.
 */
export const messagingOperationsAgentActivity = operationsConnector({
  api: "messaging-operations-agent-activity",
  resource: "agentactivity",
  timestampMarks: "end",
  query: (p) => ({ agentIds: list(p.agentIds) ?? "all" }),
  explode: (timestamp, intervalMinutes, block) => {
    const perAgent = ((block.agentsMetrics as Record<string, unknown> | undefined)?.metricsPerAgent ?? {}) as Record<string, unknown[]>;
    return Object.entries(perAgent)
      .map(([agentId, states]) => ({ timestamp, intervalMinutes, agentId: Number(agentId), states }))
      .sort((a, b) => a.agentId - b.agentId);
  },
  idOf: (r) => `${r.timestamp}:${r.agentId}`,
});
