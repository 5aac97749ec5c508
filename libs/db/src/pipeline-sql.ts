import pg from "pg";
import { poolOf, type Db } from "./client.js";

/**
 * Plain SQL on the Prisma client's own connection pool, for the few statements every run
 * makes at every stage (`run-stages.ts`, `pipeline-reads.ts`).
 *
 * Why not Prisma: on this Prisma version every call, `$queryRaw` included, goes through the
 * query compiler (WASM, on the main thread). Measured on this machine: a model `findFirst`
 * with relations ~2.4 ms of CPU, an `update` ~1.1 ms, `$queryRaw` ~0.4 ms, the same statement
 * through pg ~0.14 ms. Prisma 7.4 caches query plans, but its CLI cannot run offline (docs:
 * PRISMA-OFFLINE). Rows come back as the model API returns them (`run-stages.test.ts` checks
 * it): pg's parsers give Dates, numbers, booleans and parsed JSON; int8 becomes a BigInt here,
 * as Prisma does.
 */

const INT8_OID = 20;
const int8 = (text: string) => BigInt(text);

const queryTypes = {
  getTypeParser: ((oid: number, format?: "text" | "binary") => (oid === INT8_OID ? int8 : pg.types.getTypeParser(oid, format ?? "text"))) as typeof pg.types.getTypeParser,
};

/** Values for `$1`, `$2`…, numbered as they are added. */
export class SqlParams {
  readonly values: unknown[] = [];

  /** Adds a value and returns its placeholder. */
  add(value: unknown): string {
    this.values.push(value);
    return `$${this.values.length}`;
  }
}

export async function sqlRows<T>(prisma: Db, text: string, values: readonly unknown[]): Promise<T[]> {
  const result = await poolOf(prisma).query<T & pg.QueryResultRow>({ text, values: values as unknown[], types: queryTypes });
  return result.rows;
}

/** Runs a statement and returns how many rows it changed. */
export async function sqlExecute(prisma: Db, text: string, values: readonly unknown[]): Promise<number> {
  const result = await poolOf(prisma).query({ text, values: values as unknown[], types: queryTypes });
  return result.rowCount ?? 0;
}
