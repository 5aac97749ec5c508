import { appendFile, cp, mkdir, mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureDatabase } from "../src/ensure-database.js";
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

  it("the previous release starts on a database a newer release migrated (migrations are additive), with a warning; an unknown older one is refused", async () => {
    const fresh = await createTestDatabase({ migrate: false });
    try {
      // The newer release: today's migrations plus one the previous release does not have.
      const newer = await mkdtemp(join(tmpdir(), "migrations-newer-"));
      await cp(DEFAULT_MIGRATIONS_DIR, newer, { recursive: true });
      await mkdir(join(newer, "99991231000000_from_the_next_release"));
      await writeFile(join(newer, "99991231000000_from_the_next_release", "migration.sql"), `ALTER TABLE "Run" ADD COLUMN "nextReleaseField" TEXT;`);
      expect((await migrate(fresh.url, { migrationsDir: newer })).applied).toContain("99991231000000_from_the_next_release");
      // Rolled back to the previous image: it runs, saying the database is ahead.
      const logs: string[] = [];
      const rollback = await migrate(fresh.url, { log: (message) => logs.push(message) });
      expect(rollback).toEqual({ applied: [], ahead: ["99991231000000_from_the_next_release"] });
      expect(logs.join("\n")).toMatch(/ahead of this release.*99991231000000_from_the_next_release/);
      // One that sorts before this release's own migrations is not from a newer release: refused.
      const client = new pg.Client({ connectionString: fresh.url });
      await client.connect();
      await client.query(`INSERT INTO "_prisma_migrations" (id, checksum, migration_name, finished_at) VALUES (gen_random_uuid(), $1, '00000000000000_unknown', now())`, ["0".repeat(64)]);
      await client.end();
      await expect(migrate(fresh.url)).rejects.toThrow(/"00000000000000_unknown" that is not in the migrations folder/);
    } finally {
      await fresh.drop();
    }
  });

  it("processes creating the database at the same moment all succeed", async () => {
    const name = `race_${Date.now()}_${Math.floor(Math.random() * 1e6)}`;
    const url = new URL(db.url);
    url.pathname = `/${name}`;
    try {
      const results = await Promise.allSettled(Array.from({ length: 6 }, () => ensureDatabase(url.toString())));
      expect(results.filter((r) => r.status === "rejected")).toEqual([]);
    } finally {
      const admin = new URL(db.url);
      admin.pathname = "/postgres";
      const client = new pg.Client({ connectionString: admin.toString() });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS "${name}"`);
      await client.end();
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
