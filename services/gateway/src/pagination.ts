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
  .datetime({ offset: true })
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

/** Fetch limit + 1 rows, return `{ items, nextCursor }`. */
export function toPage<T extends CursorPosition, U>(rows: T[], limit: number, map: (row: T) => U): { items: U[]; nextCursor: string | null } {
  const more = rows.length > limit;
  const page = more ? rows.slice(0, limit) : rows;
  return { items: page.map(map), nextCursor: more ? encodeCursor(page[page.length - 1]!) : null };
}

export const pageSchema = <T extends z.ZodType>(item: T) => z.object({ items: z.array(item), nextCursor: z.string().nullable() });
