/**
 * A delivery whose run lock is lost to another attempt (RunLocks: the lock's database connection
 * dropped and another attempt took the lock first) stops before its file is put in place: the
 * other attempt carries the run on, and the two never write to the destination side by side.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testConfig, type Config } from "@transporter/config";
import { keyringFromConfig } from "@transporter/crypto";
import { RunLockLost } from "@transporter/db";
import { createTestDatabase, type TestDatabase } from "@transporter/db/testing";
import type { StageContext } from "@transporter/queue";
import { createDestinationRegistry, createManagedStore, createStagingStore, stagingKey, type StagingStore } from "@transporter/storage";
import { createLogger, trace } from "@transporter/telemetry";
import { createDeliverHandler } from "../src/index.js";

/** Files under `dir`, however deep. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((entry) => entry.isFile()).map((entry) => entry.name);
}

describe("a delivery that loses its run's lock", () => {
  let db: TestDatabase;
  let workDir: string;
  let config: Config;
  let staging: StagingStore;

  beforeAll(async () => {
    db = await createTestDatabase();
    workDir = await mkdtemp(join(tmpdir(), "tp-lock-lost-"));
    config = testConfig({ DATABASE_URL: db.url, STAGING_DIR: join(workDir, "staging"), MANAGED_DIR: join(workDir, "managed") });
    staging = createStagingStore(config);
  });
  afterAll(async () => {
    await db?.drop();
    await rm(workDir, { recursive: true, force: true });
  });

  it("stops mid-file, leaves nothing at the destination and records nothing on the destination", async () => {
    const tenant = await db.prisma.tenant.create({ data: { name: "Acme", accountId: String(randomBytes(4).readUInt32BE()), timezone: "UTC" } });
    const destination = await db.prisma.destination.create({ data: { tenantId: tenant.id, name: "m", kind: "managed", config: {} } });
    const task = await db.prisma.task.create({
      data: { tenantId: tenant.id, description: "Daily", reportId: "messaging-conversations", format: "csv", frequency: "daily", time: "00:00", destinationId: destination.id, enabled: true },
    });
    const run = await db.prisma.run.create({
      data: { tenantId: tenant.id, taskId: task.id, windowStart: new Date("2026-11-21T00:00:00Z"), windowEnd: new Date("2026-11-22T00:00:00Z"), scheduledFor: new Date(), trigger: "manual", status: "DELIVERING" },
    });
    const encryptedKey = stagingKey(tenant.id, run.id, "encrypted", "daily.csv.pgp");
    await staging.put(encryptedKey, Readable.from([randomBytes(3 * 1024 * 1024)]));

    // The staged file is read slowly; the lock is lost once the first chunk has gone out.
    const lockLost = new AbortController();
    const slowStaging: StagingStore = {
      ...staging,
      stat: (key) => staging.stat(key),
      get: async (key) => {
        const source = await staging.get(key);
        let chunks = 0;
        return Readable.from(
          (async function* () {
            for await (const chunk of source) {
              if (++chunks === 2) lockLost.abort(new RunLockLost(run.id));
              yield chunk;
              await new Promise((resolve) => setTimeout(resolve, 5));
            }
          })(),
        );
      },
    };
    const managedStore = createManagedStore(config);
    const deliver = createDeliverHandler({
      config,
      prisma: db.prisma,
      keyring: keyringFromConfig(config),
      staging: slowStaging,
      registry: createDestinationRegistry({ managedStore, allowInsecureEndpoints: true }),
    });
    const fields: Record<string, unknown> = {};
    const ctx = {
      run,
      task,
      tenant,
      payload: { runId: run.id, tenantId: tenant.id, encryptedKey },
      logger: createLogger({ name: "lock-lost-test", level: "silent" }),
      span: trace.getTracer("test").startSpan("deliver"),
      setRunFields: (more: Record<string, unknown>) => Object.assign(fields, more),
      lockLost: lockLost.signal,
    } as unknown as StageContext<"deliver">;

    const error = await deliver(ctx).then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(RunLockLost);
    expect(fields).toEqual({});
    expect(await filesUnder(join(workDir, "managed"))).toEqual([]);
    expect((await db.prisma.destination.findUniqueOrThrow({ where: { id: destination.id } })).lastError).toBeNull();
  });
});
