import { createHash, randomUUID } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";

/** prisma/migrations at the repository root. */
export const DEFAULT_MIGRATIONS_DIR = resolve(fileURLToPath(new URL(".", import.meta.url)), "../../../prisma/migrations");

/** An arbitrary constant: every migrating process takes this advisory lock first. */
const MIGRATION_LOCK_ID = 72_616_374_021;

export class MigrationError extends Error {
  override name = "MigrationError";
}

interface MigrationFile {
  name: string;
  sql: string;
  checksum: string;
}

async function readMigrations(dir: string): Promise<MigrationFile[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const names = entries.filter((e) => e.isDirectory()).map((e) => e.name).sort();
  return Promise.all(
    names.map(async (name) => {
      const sql = await readFile(join(dir, name, "migration.sql"), "utf8");
      return { name, sql, checksum: createHash("sha256").update(sql).digest("hex") };
    }),
  );
}

/**
 * Applies prisma/migrations/* in name order, each in its own transaction, under a PostgreSQL
 * advisory lock so services starting together do not race. Bookkeeping lives in Prisma's own
 * `_prisma_migrations` table (same columns, sha256 checksums) so the database stays compatible
 * with `prisma migrate deploy` where the native engine exists. An applied migration whose file
 * changed is refused: the schema would no longer be what the code expects.
 */
export async function migrate(
  databaseUrl: string,
  options: { migrationsDir?: string; log?: (message: string) => void } = {},
): Promise<{ applied: string[]; ahead?: string[] }> {
  const migrations = await readMigrations(options.migrationsDir ?? DEFAULT_MIGRATIONS_DIR);
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query("SELECT pg_advisory_lock($1)", [MIGRATION_LOCK_ID]);
    await client.query(`CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
      "id" VARCHAR(36) PRIMARY KEY NOT NULL,
      "checksum" VARCHAR(64) NOT NULL,
      "finished_at" TIMESTAMPTZ,
      "migration_name" VARCHAR(255) NOT NULL,
      "logs" TEXT,
      "rolled_back_at" TIMESTAMPTZ,
      "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(),
      "applied_steps_count" INTEGER NOT NULL DEFAULT 0)`);
    const { rows } = await client.query<{ migration_name: string; checksum: string; finished_at: Date | null }>(
      `SELECT migration_name, checksum, finished_at FROM "_prisma_migrations" WHERE rolled_back_at IS NULL`,
    );
    const applied = new Map(rows.map((r) => [r.migration_name, r]));
    const known = new Set(migrations.map((m) => m.name));
    const latestKnown = migrations.at(-1)?.name ?? "";
    // Migrations are additive (expand, then contract a release later): a database a newer release
    // migrated still serves this one, so rolling the image back needs no down-migration. Only
    // migrations named after all of ours are a newer release's; any other unknown one is not ours.
    const ahead: string[] = [];
    for (const row of rows) {
      if (!known.has(row.migration_name)) {
        if (row.migration_name <= latestKnown) throw new MigrationError(`database has migration "${row.migration_name}" that is not in the migrations folder`);
        ahead.push(row.migration_name);
      }
      if (!row.finished_at) {
        throw new MigrationError(`migration "${row.migration_name}" started but never finished; resolve it by hand`);
      }
    }
    if (ahead.length > 0) options.log?.(`the database is ahead of this release (it has ${ahead.sort().join(", ")}); running on the newer schema`);
    const done: string[] = [];
    for (const migration of migrations) {
      const previous = applied.get(migration.name);
      if (previous) {
        if (previous.checksum !== migration.checksum) {
          throw new MigrationError(
            `migration "${migration.name}" was changed after it was applied (checksum ${previous.checksum.slice(0, 12)}… ≠ ${migration.checksum.slice(0, 12)}…); add a new migration instead`,
          );
        }
        continue;
      }
      await client.query("BEGIN");
      try {
        const id = randomUUID();
        await client.query(
          `INSERT INTO "_prisma_migrations" (id, checksum, migration_name, started_at) VALUES ($1, $2, $3, now())`,
          [id, migration.checksum, migration.name],
        );
        await client.query(migration.sql);
        await client.query(`UPDATE "_prisma_migrations" SET finished_at = now(), applied_steps_count = 1 WHERE id = $1`, [id]);
        await client.query("COMMIT");
      } catch (error) {
        await client.query("ROLLBACK");
        throw new MigrationError(`migration "${migration.name}" failed: ${(error as Error).message}`);
      }
      options.log?.(`applied migration ${migration.name}`);
      done.push(migration.name);
    }
    return ahead.length > 0 ? { applied: done, ahead } : { applied: done };
  } finally {
    await client.query("SELECT pg_advisory_unlock($1)", [MIGRATION_LOCK_ID]).catch(() => undefined);
    await client.end();
  }
}
