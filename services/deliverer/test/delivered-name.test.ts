import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, posix } from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testConfig } from "@transporter/config";
import { keyringFromConfig } from "@transporter/crypto";
import type { Run, Task, Tenant } from "@transporter/db";
import { createTestDatabase, type TestDatabase } from "@transporter/db/testing";
import type { StageContext } from "@transporter/queue";
import { createDestinationRegistry, FsStagingStore, reportFileName, stagingKey } from "@transporter/storage";
import { createLogger } from "@transporter/telemetry";
import { createDeliverHandler } from "../src/index.js";

/**
 * The delivered file is named after the staged file the encryptor wrote, not rebuilt from the
 * task as it is at delivery time: the bytes were made under the task's settings of the
 * transform, and a retry must land on the name the first attempt used.
 */
describe("the delivered file's name", () => {
  let db: TestDatabase;
  let dir: string;
  beforeAll(async () => {
    db = await createTestDatabase();
    dir = await mkdtemp(join(tmpdir(), "delivered-name-"));
  });
  afterAll(async () => {
    await db?.drop();
    await rm(dir, { recursive: true, force: true });
  });

  it("is the staged file's, whatever the task and account became since; a retry lands on the same name", async () => {
    const { prisma } = db;
    const staging = new FsStagingStore(join(dir, "staging"));
    const managed = new FsStagingStore(join(dir, "managed"));
    const tenant = await prisma.tenant.create({ data: { accountId: "acc-name", name: "T", timezone: "Europe/Berlin" } });
    const destination = await prisma.destination.create({ data: { tenantId: tenant.id, name: "m", kind: "managed", config: {} } });
    const task = await prisma.task.create({
      data: { tenantId: tenant.id, description: "Daily export", reportId: "messaging-conversations", format: "csv", frequency: "daily", time: "00:00", destinationId: destination.id },
    });
    const run = await prisma.run.create({
      data: { tenantId: tenant.id, taskId: task.id, windowStart: new Date("2026-03-01T23:00:00Z"), windowEnd: new Date("2026-03-02T23:00:00Z"), scheduledFor: new Date(), trigger: "schedule" },
    });
    const staged = reportFileName({ description: task.description, windowStart: run.windowStart, windowEnd: run.windowEnd, format: "csv", zone: "Europe/Berlin", encrypted: false });
    const encryptedKey = stagingKey(tenant.id, run.id, "encrypted", `${staged}.pgp`);
    await staging.put(encryptedKey, Readable.from([Buffer.from("-----encrypted csv-----")]));
    const handler = createDeliverHandler({
      config: { MANAGED_RETENTION_DAYS: 28 }, prisma, keyring: keyringFromConfig(testConfig()), staging,
      registry: createDestinationRegistry({ managedStore: managed, allowInsecureEndpoints: true }),
    });
    const deliver = async (taskNow: Task, tenantNow: Tenant) => {
      let fields: Record<string, unknown> = {};
      const ctx = {
        run: run as Run, task: taskNow, tenant: tenantNow, payload: { runId: run.id, tenantId: tenant.id, encryptedKey, trace: {} }, job: {},
        logger: createLogger({ name: "t", level: "silent" }), span: { setAttributes() {}, setAttribute() {} },
        setRunFields: (more: Record<string, unknown>) => void (fields = { ...fields, ...more }),
      } as unknown as StageContext<"deliver">;
      await handler(ctx);
      return fields;
    };

    const first = await deliver(task, tenant);
    expect(first.fileName).toBe(posix.basename(encryptedKey));
    // The first attempt's acknowledgement was lost; meanwhile the task and the account changed.
    const second = await deliver({ ...task, format: "xlsx", description: "Renamed", options: { fileNamePattern: "x_{startDate}" } }, { ...tenant, timezone: "Asia/Tokyo" });
    expect(second.fileName).toBe(posix.basename(encryptedKey));
    expect(await readdir(join(dir, "managed", "tenants", tenant.id, "runs", run.id))).toEqual([`${staged}.pgp`]);
  });
});
