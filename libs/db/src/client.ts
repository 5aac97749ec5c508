import { PrismaPg } from "@prisma/adapter-pg";
import pg from "pg";
import { PrismaClient } from "./generated/client.js";

export type Db = InstanceType<typeof PrismaClient>;

/** The connection pool under each client made by `createPrisma` (see `poolOf`). */
const pools = new WeakMap<Db, pg.Pool>();

/**
 * A Prisma client over node-postgres. Prisma's native engines cannot be downloaded here, so
 * the client runs on the query compiler with the pg driver adapter (docs: PRISMA-OFFLINE).
 * The pool is ours and handed to the adapter, so that the pipeline's hot-path SQL
 * (`pipeline-sql.ts`) shares its connections; `$disconnect()` ends it.
 */
export function createPrisma(databaseUrl: string, options: { poolSize?: number; onIdleError?: (error: Error) => void } = {}): Db {
  const pool = new pg.Pool({ connectionString: databaseUrl, max: options.poolSize ?? 10 });
  // The server may close an idle connection (a restart, a failover, an idle timeout): the pool
  // drops it and opens another on the next query, but reports it as an 'error' event, which
  // would end the process unheard. The adapter listens only once Prisma itself has connected,
  // and the pipeline's own SQL may use the pool long before that.
  pool.on("error", options.onIdleError ?? ((error) => process.emitWarning(`an idle database connection was closed: ${error.message}`, "DatabaseConnectionWarning")));
  // Prisma's defaults (2 s to begin, 5 s in all) fail, under load, transactions that queue for a
  // row lock behind others (concurrent run requests on one task wait on its lock in turn).
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool, { disposeExternalPool: true }), transactionOptions: { maxWait: 10_000, timeout: 30_000 } });
  pools.set(prisma, pool);
  return prisma;
}

/** An `onIdleError` that writes a warning to a service's logger. */
export function idleConnectionClosed(logger: { warn(details: object, message: string): void }): (error: Error) => void {
  return (error) => logger.warn({ err: { message: error.message } }, "an idle database connection was closed by the server; the pool opens another");
}

/** The pg pool under a client made by `createPrisma`. */
export function poolOf(prisma: Db): pg.Pool {
  const pool = pools.get(prisma);
  if (!pool) throw new TypeError("this Prisma client was not made by createPrisma(), so its connection pool is unknown");
  return pool;
}

/** True when a Prisma error is a unique-constraint violation (P2002). */
export function isUniqueViolation(error: unknown): boolean {
  return typeof error === "object" && error !== null && (error as { code?: string }).code === "P2002";
}
