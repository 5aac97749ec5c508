/**
 * Deterministic pseudo-randomness for the simulator. Every generated value is a pure function of
 * (seed, account, what, when, index), so any page of any window can be produced on its own —
 * nothing is materialised ahead of time and a window always yields the same records.
 */

/** 32-bit FNV-1a over the UTF-16 code units of the parts, then avalanche-mixed. */
export function hash32(...parts: Array<string | number>): number {
  let h = 0x811c9dc5;
  for (let p = 0; p < parts.length; p++) {
    const s = String(parts[p]);
    for (let i = 0; i < s.length; i++) {
      h ^= s.charCodeAt(i);
      h = Math.imul(h, 0x01000193);
    }
    h ^= 0x7c; // separator so ("ab","c") differs from ("a","bc")
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** mulberry32: a small, fast generator; good enough for synthetic data. */
export class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  /** Uniform in [0, 1). */
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  /** 32 hex characters. */
  hex(length = 32): string {
    let out = "";
    while (out.length < length) out += Math.floor(this.next() * 4294967296).toString(16).padStart(8, "0");
    return out.slice(0, length);
  }
  uuid(): string {
    const h = this.hex(32);
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
  }
}

export function rngFor(...parts: Array<string | number>): Rng {
  return new Rng(hash32(...parts));
}

/** "2016-08-29 15:14:19.564+0000", the platform's textual time format. */
export function platformTime(ms: number): string {
  const iso = new Date(ms).toISOString(); // 2016-08-29T15:14:19.564Z
  return `${iso.slice(0, 10)} ${iso.slice(11, 23)}+0000`;
}

export const HOUR_MS = 3_600_000;
export const MINUTE_MS = 60_000;
