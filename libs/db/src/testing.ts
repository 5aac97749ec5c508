import { randomBytes } from "node:crypto";
import pg from "pg";
import { createPrisma, poolOf, type Db } from "./client.js";
import { migrate } from "./migrate.js";

export interface TestDatabase {
  url: string;
  name: string;
  prisma: Db;
  drop(): Promise<void>;
}

const baseUrl = () => process.env.DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/postgres";

/** A fresh, migrated database for one test file (so files run in parallel and twice). */
export async function createTestDatabase(options: { migrate?: boolean; /** CREATE DATABASE options, e.g. another locale. */ create?: string } = {}): Promise<TestDatabase> {
  const name = `t_${Date.now().toString(36)}_${randomBytes(4).toString("hex")}`;
  const admin = new URL(baseUrl());
  admin.pathname = "/postgres";
  const client = new pg.Client({ connectionString: admin.toString() });
  await client.connect();
  await client.query(`CREATE DATABASE "${name}" ${options.create ?? ""}`);
  await client.end();
  const url = new URL(baseUrl());
  url.pathname = `/${name}`;
  if (options.migrate !== false) await migrate(url.toString());
  const prisma = createPrisma(url.toString(), { poolSize: 5 });
  return {
    url: url.toString(),
    name,
    prisma,
    async drop() {
      await prisma.$disconnect();
      const c = new pg.Client({ connectionString: admin.toString() });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await c.end();
    },
  };
}

/**
 * Makes the pool under `prisma` fail the next `times` statements whose text matches `pattern`,
 * as a connection dropped mid-statement would ("Connection terminated unexpectedly"). Tests of
 * what a database blip at one write does; `restore()` puts the pool back.
 */
export function failStatements(prisma: Db, pattern: RegExp, times = 1): { failed(): number; restore(): void } {
  const pool = poolOf(prisma) as unknown as { query: (...args: unknown[]) => unknown };
  const query = pool.query.bind(pool);
  let failed = 0;
  pool.query = (config: unknown, ...rest: unknown[]) => {
    const text = typeof config === "string" ? config : ((config as { text?: string } | undefined)?.text ?? "");
    if (failed < times && pattern.test(text)) {
      failed += 1;
      return Promise.reject(new Error("Connection terminated unexpectedly"));
    }
    return query(config, ...rest);
  };
  return { failed: () => failed, restore: () => void (pool.query = query) };
}
