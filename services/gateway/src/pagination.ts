import { z } from "zod";
import { badRequest } from "./problem.js";

/**
 * `?limit=` (default 50, max 500) and `?cursor=` as API.md defines them. Strict, and so is every
 * list's `.extend()` of it: a misspelt filter (`?taskid=`) is refused with 400 naming it, as a
 * body's unknown field is, instead of being ignored and answering with the whole list.
 */
export const pageQuery = z
  .object({
    limit: z.coerce.number().int().min(1).max(500).default(50),
    cursor: z.string().max(200).optional(),
  })
  .strict();

interface CursorPosition {
  createdAt: Date;
  id: string;
}

/** Every model's id is a UUID; anything else in a cursor would only fail in the database. */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A valid date in years 1–9999: what PostgreSQL's timestamptz holds (and ISO 8601 writes plainly). */
export function isStorableInstant(date: Date): boolean {
  const year = date.getUTCFullYear();
  return !Number.isNaN(date.getTime()) && year >= 1 && year <= 9999;
}

/** An ISO 8601 instant with an offset, in years 1–9999 (a query parameter or body field). */
export const instantField = z
  .string()
  // Not an ISO instant: that alone is the problem (its year cannot be judged).
  .datetime({ offset: true, abort: true })
  .refine((value) => isStorableInstant(new Date(value)), "must be a date in years 0001 to 9999");

export function encodeCursor(row: CursorPosition): string {
  return Buffer.from(JSON.stringify([row.createdAt.toISOString(), row.id])).toString("base64url");
}

function decodeCursor(cursor: string): CursorPosition {
  try {
    const [createdAt, id] = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")) as [unknown, unknown];
    if (typeof createdAt !== "string" || typeof id !== "string" || !UUID.test(id)) throw new Error("bad cursor");
    const date = new Date(createdAt);
    if (!isStorableInstant(date)) throw new Error("bad cursor");
    return { createdAt: date, id };
  } catch {
    throw badRequest("cursor is not one this API returned", [{ path: "cursor", message: "invalid cursor" }]);
  }
}

/**
 * Keyset paging, newest first by a timestamp column (`createdAt` unless said otherwise) then
 * id: a Prisma `where` fragment for rows after the cursor, and the matching order. Stable
 * under inserts (unlike offsets).
 */
export function afterCursor(cursor: string | undefined, column = "createdAt"): Record<string, unknown> {
  if (!cursor) return {};
  const { createdAt: at, id } = decodeCursor(cursor);
  return { OR: [{ [column]: { lt: at } }, { [column]: at, id: { lt: id } }] };
}

export const newestFirst = [{ createdAt: "desc" as const }, { id: "desc" as const }];

interface RunCursorPosition extends CursorPosition {
  windowStart: Date;
}

/**
 * Runs are newest first by creation, then by window: a scheduler tick records all its catch-up
 * windows with the tick's time, and their random ids alone would list them in any order.
 */
export const runsNewestFirst = [{ createdAt: "desc" as const }, { windowStart: "desc" as const }, { id: "desc" as const }];

export function encodeRunCursor(row: RunCursorPosition): string {
  return Buffer.from(JSON.stringify([row.createdAt.toISOString(), row.windowStart.toISOString(), row.id])).toString("base64url");
}

/**
 * A run list's cursor: [createdAt, windowStart, id]. One of the former kind ([createdAt, id],
 * from before runs were ordered by window) is refused like any other the list did not hand out:
 * its position would skip or repeat the runs of its tick.
 */
function decodeRunCursor(cursor: string): RunCursorPosition {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
  } catch {
    parsed = null;
  }
  const [createdAt, windowStart, id] = Array.isArray(parsed) ? (parsed as unknown[]) : [];
  const at = new Date(typeof createdAt === "string" ? createdAt : Number.NaN);
  const start = new Date(typeof windowStart === "string" ? windowStart : Number.NaN);
  if (Array.isArray(parsed) && parsed.length === 3 && typeof id === "string" && UUID.test(id) && isStorableInstant(at) && isStorableInstant(start)) {
    return { createdAt: at, windowStart: start, id };
  }
  const former = Array.isArray(parsed) && parsed.length === 2;
  throw badRequest(
    former ? "this cursor is from an earlier version of the run list, which pages in another order; list again without a cursor" : "cursor is not one this API returned",
    [{ path: "cursor", message: "invalid cursor" }],
  );
}

/**
 * `afterCursor` for the run list, in `runsNewestFirst` order. No index of its own: the tenant's
 * (tenantId, createdAt) index gives the order by creation and one tick's runs are sorted among
 * themselves (an incremental sort); `lte` lets the index start the scan at the cursor's time.
 */
export function afterRunCursor(cursor: string | undefined): Record<string, unknown> {
  if (!cursor) return {};
  const { createdAt: at, windowStart: start, id } = decodeRunCursor(cursor);
  return {
    createdAt: { lte: at },
    OR: [{ createdAt: { lt: at } }, { createdAt: at, windowStart: { lt: start } }, { createdAt: at, windowStart: start, id: { lt: id } }],
  };
}

/** Fetch limit + 1 rows, return `{ items, nextCursor }`. */
export function toPage<T extends CursorPosition, U>(rows: T[], limit: number, map: (row: T) => U, encode: (row: T) => string = encodeCursor): { items: U[]; nextCursor: string | null } {
  const more = rows.length > limit;
  const page = more ? rows.slice(0, limit) : rows;
  return { items: page.map(map), nextCursor: more ? encode(page[page.length - 1]!) : null };
}

export const pageSchema = <T extends z.ZodType>(item: T) => z.object({ items: z.array(item), nextCursor: z.string().nullable() });
