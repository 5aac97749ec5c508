/**
 * Ctrl-C during `npm run demo` ends it through its clean-up: the demo's operator key revoked, the
 * system and the simulator stopped (the process then exits on its own, 130). Its SIGINT listener
 * was only installed for `--keep`'s wait, so a Ctrl-C before that killed it on the spot and left
 * the key behind.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "@transporter/db/testing";
import { createRedis, testRedisPrefix } from "@transporter/queue";
import { deleteRedisPrefix } from "./support/infrastructure.js";
import { ProcessGroup, REPO_ROOT } from "./support/processes.js";
import { waitFor } from "./support/wait.js";

describe("`npm run demo` interrupted", () => {
  const prefix = testRedisPrefix("demo");
  let db: TestDatabase;
  let dir: string;
  let group: ProcessGroup | undefined;

  beforeAll(async () => {
    db = await createTestDatabase();
    dir = await mkdtemp(join(tmpdir(), "demo-"));
  });

  afterAll(async () => {
    await group?.stopAll(5_000);
    // The demo writes the tenant's key pair under demo-output/<account id>.
    for (const { accountId } of (await db?.prisma.tenant.findMany({ select: { accountId: true } })) ?? []) {
      await rm(join(REPO_ROOT, "demo-output", accountId), { recursive: true, force: true });
    }
    const redis = createRedis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379");
    await deleteRedisPrefix(redis, prefix).finally(() => redis.quit());
    await db?.drop();
    await rm(dir, { recursive: true, force: true });
  });

  it("Ctrl-C while it sets up revokes its operator key, stops everything and exits 130", async () => {
    group = new ProcessGroup({
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: process.env.HOME ?? tmpdir(),
      NODE_ENV: "test",
      DATABASE_URL: db.url,
      REDIS_URL: process.env.REDIS_URL ?? "redis://127.0.0.1:6379",
      REDIS_PREFIX: prefix,
      STAGING_DIR: join(dir, "staging"),
      MANAGED_DIR: join(dir, "managed"),
      TRANSFORM_THREADS: "0",
    });
    const demo = group.script("demo");
    // Its operator key exists: the demo is setting up its tenant through the API.
    await waitFor(
      "the demo's operator key",
      async () => {
        if (!demo.running) throw new Error(`the demo exited: ${demo.output()}`);
        return (await db.prisma.apiKey.count({ where: { name: "demo operator" } })) > 0;
      },
      { timeoutMs: 60_000, intervalMs: 50 },
    );
    demo.kill("SIGINT");
    const exit = await demo.exited;
    expect(exit, demo.output()).toEqual({ code: 130, signal: null });
    expect(demo.output()).toContain("SIGINT: stopping the demo");
    const keys = await db.prisma.apiKey.findMany({ where: { name: "demo operator" } });
    expect(keys).toHaveLength(1);
    expect(keys[0]?.revokedAt).toBeInstanceOf(Date);
  }, 90_000);
});
