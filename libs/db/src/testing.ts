import { randomBytes } from "node:crypto";
import pg from "pg";
import { createPrisma, type Db } from "./client.js";
import { migrate } from "./migrate.js";

export interface TestDatabase {
  url: string;
  name: string;
  prisma: Db;
  drop(): Promise<void>;
}

const baseUrl = () => process.env.DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/postgres";

/** A fresh, migrated database for one test file (so files run in parallel and twice). */
export async function createTestDatabase(options: { migrate?: boolean } = {}): Promise<TestDatabase> {
  const name = `t_${Date.now().toString(36)}_${randomBytes(4).toString("hex")}`;
  const admin = new URL(baseUrl());
  admin.pathname = "/postgres";
  const client = new pg.Client({ connectionString: admin.toString() });
  await client.connect();
  await client.query(`CREATE DATABASE "${name}"`);
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
