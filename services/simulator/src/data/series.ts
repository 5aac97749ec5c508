import { HOUR_MS, rngFor } from "./random.js";

/**
 * An hourly series of synthetic events: how many events start in each hour, and their start
 * instants, are pure functions of (seed, account, kind, hour). A query for any range and page is
 * answered by counting whole hours and expanding only the hours the page touches, so a window of
 * 200,000 records is never held at once.
 */
export interface SeriesSpec {
  seed: string;
  accountId: string;
  kind: string;
  /** Mean events per hour (may be fractional). */
  perHour: number;
}

export interface EventRef {
  /** Hour index (epoch ms / 1 h). */
  hour: number;
  /** Rank of the event within its hour, by start time. */
  rank: number;
  startMs: number;
}

export function countInHour(spec: SeriesSpec, hour: number): number {
  if (spec.perHour <= 0) return 0;
  const rng = rngFor(spec.seed, spec.accountId, spec.kind, "count", hour);
  // Uniform in [0.5, 1.5] × perHour (mean perHour), dithered so fractional rates average out.
  return Math.floor(spec.perHour * (0.5 + rng.next()) + rng.next());
}

const skeletonCache = new Map<string, number[]>();
const SKELETON_CACHE_LIMIT = 256;

/** Sorted start instants of the events of one hour. */
export function startsInHour(spec: SeriesSpec, hour: number): number[] {
  const key = `${spec.seed}\u0000${spec.accountId}\u0000${spec.kind}\u0000${spec.perHour}\u0000${hour}`;
  const hit = skeletonCache.get(key);
  if (hit) return hit;
  const n = countInHour(spec, hour);
  const rng = rngFor(spec.seed, spec.accountId, spec.kind, "starts", hour);
  const starts = new Array<number>(n);
  for (let i = 0; i < n; i++) starts[i] = hour * HOUR_MS + Math.floor(rng.next() * HOUR_MS);
  starts.sort((a, b) => a - b);
  if (skeletonCache.size >= SKELETON_CACHE_LIMIT) skeletonCache.delete(skeletonCache.keys().next().value!);
  skeletonCache.set(key, starts);
  return starts;
}

/** First index in sorted `starts` whose value is >= ms. */
function lowerBound(starts: number[], ms: number): number {
  let lo = 0;
  let hi = starts.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (starts[mid]! < ms) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Events of one hour whose start is in [fromMs, toMs): index range [lo, hi). */
function hourRange(spec: SeriesSpec, hour: number, fromMs: number, toMs: number): [number, number] {
  const hourStart = hour * HOUR_MS;
  const hourEnd = hourStart + HOUR_MS;
  if (fromMs <= hourStart && toMs >= hourEnd) return [0, countInHour(spec, hour)];
  const starts = startsInHour(spec, hour);
  return [lowerBound(starts, fromMs), lowerBound(starts, toMs)];
}

/** Number of events starting in [fromMs, toMs). */
export function countInRange(spec: SeriesSpec, fromMs: number, toMs: number): number {
  if (toMs <= fromMs) return 0;
  let total = 0;
  for (let hour = Math.floor(fromMs / HOUR_MS); hour * HOUR_MS < toMs; hour++) {
    const [lo, hi] = hourRange(spec, hour, fromMs, toMs);
    total += hi - lo;
  }
  return total;
}

/** Events starting in [fromMs, toMs), ascending, skipping `offset` and returning at most `limit`. */
export function sliceInRange(spec: SeriesSpec, fromMs: number, toMs: number, offset: number, limit: number): EventRef[] {
  const out: EventRef[] = [];
  if (toMs <= fromMs || limit <= 0) return out;
  let skip = offset;
  for (let hour = Math.floor(fromMs / HOUR_MS); hour * HOUR_MS < toMs && out.length < limit; hour++) {
    const [lo, hi] = hourRange(spec, hour, fromMs, toMs);
    const n = hi - lo;
    if (skip >= n) {
      skip -= n;
      continue;
    }
    const starts = startsInHour(spec, hour);
    for (let i = lo + skip; i < hi && out.length < limit; i++) out.push({ hour, rank: i, startMs: starts[i]! });
    skip = 0;
  }
  return out;
}

/** Every event starting in [fromMs, toMs), ascending, lazily. */
export function* eventsInRange(spec: SeriesSpec, fromMs: number, toMs: number): Generator<EventRef> {
  if (toMs <= fromMs) return;
  for (let hour = Math.floor(fromMs / HOUR_MS); hour * HOUR_MS < toMs; hour++) {
    const [lo, hi] = hourRange(spec, hour, fromMs, toMs);
    if (hi <= lo) continue;
    const starts = startsInHour(spec, hour);
    for (let i = lo; i < hi; i++) yield { hour, rank: i, startMs: starts[i]! };
  }
}
