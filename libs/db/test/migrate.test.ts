import { cp, mkdtemp, appendFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_MIGRATIONS_DIR, migrate } from "../src/migrate.js";
import { createTestDatabase, type TestDatabase } from "../src/testing.js";

describe("migration runner", () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase({ migrate: false });
  });
  afterAll(async () => db.drop());

  it("applies every migration to an empty database, then re-runs as a no-op", async () => {
    const first = await migrate(db.url);
    expect(first.applied.length).toBeGreaterThan(0);
    const second = await migrate(db.url);
    expect(second.applied).toEqual([]);
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    const { rows } = await client.query(`SELECT migration_name, checksum, finished_at, applied_steps_count FROM "_prisma_migrations"`);
    await client.end();
    expect(rows).toHaveLength(first.applied.length);
    for (const row of rows) {
      expect(row.checksum).toMatch(/^[0-9a-f]{64}$/);
      expect(row.finished_at).toBeInstanceOf(Date);
      expect(row.applied_steps_count).toBe(1);
    }
  });

  it("two processes migrating at once apply each migration once (advisory lock)", async () => {
    const fresh = await createTestDatabase({ migrate: false });
    try {
      const results = await Promise.all([migrate(fresh.url), migrate(fresh.url), migrate(fresh.url)]);
      const total = results.reduce((n, r) => n + r.applied.length, 0);
      const dir = await import("node:fs/promises").then((fs) => fs.readdir(DEFAULT_MIGRATIONS_DIR, { withFileTypes: true }));
      expect(total).toBe(dir.filter((d) => d.isDirectory()).length);
    } finally {
      await fresh.drop();
    }
  });

  it("refuses to run when an applied migration's file has changed", async () => {
    const dir = await mkdtemp(join(tmpdir(), "migrations-"));
    await cp(DEFAULT_MIGRATIONS_DIR, dir, { recursive: true });
    const entries = await import("node:fs/promises").then((fs) => fs.readdir(dir, { withFileTypes: true }));
    const firstMigration = entries.filter((e) => e.isDirectory()).map((e) => e.name).sort()[0]!;
    await appendFile(join(dir, firstMigration, "migration.sql"), "\n-- edited after the fact\n");
    await expect(migrate(db.url, { migrationsDir: dir })).rejects.toThrow(/was changed after it was applied/);
  });
});
