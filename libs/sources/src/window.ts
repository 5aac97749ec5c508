import type { FetchWindow } from "./apis.js";

export interface Range {
  from: number;
  to: number;
}

/** Split [from, to) into consecutive ranges of at most `maxMs`; they touch and never overlap. */
export function splitWindow(window: FetchWindow | Range, maxMs: number): Range[] {
  const from = +window.from;
  const to = +window.to;
  if (!(maxMs > 0)) throw new Error("maxMs must be positive");
  const out: Range[] = [];
  for (let start = from; start < to; start += maxMs) out.push({ from: start, to: Math.min(to, start + maxMs) });
  return out;
}

/**
 * Remembers the ids of the last few pages: enough to drop a record a shifting offset repeats on
 * the next page, in memory bounded by the page size rather than by the window.
 */
export class RecentIds {
  private generations: Array<Set<string>>;
  constructor(private readonly keep = 2) {
    this.generations = [new Set()];
  }
  /** True when the id was seen recently; either way it is remembered for the current page. */
  seen(id: string): boolean {
    const found = this.generations.some((generation) => generation.has(id));
    // Recorded again when found in an older page: an id repeated page after page must not fall out.
    this.generations[0]!.add(id);
    return found;
  }
  /** Call after each page. */
  rotate(): void {
    this.generations.unshift(new Set());
    if (this.generations.length > this.keep) this.generations.pop();
  }
}
