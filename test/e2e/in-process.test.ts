import { randomBytes } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GetObjectCommand } from "@aws-sdk/client-s3";
import { parse as parseCsv } from "csv-parse/sync";
import SftpClient from "ssh2-sftp-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testConfig } from "@transporter/config";
import { createTestDatabase, type TestDatabase } from "@transporter/db/testing";
import { createOperatorKey } from "@transporter/gateway";
import { testRedisPrefix } from "@transporter/queue";
import { gcsConfigSchema, gcsCredentialsSchema, gcsStorageClient } from "@transporter/storage";
import { conversationsForWindow, startSimulator, type Simulator } from "@transporter/simulator";
import { startGcsServer, type GcsTestServer } from "../../libs/storage/test/support/gcs-server.js";
import { startS3rver, type S3rverHandle } from "../../libs/storage/test/support/s3rver.js";
import { startSshd, type SshdServer } from "../../libs/storage/test/support/sshd.js";
import { startSystem, type System } from "../../scripts/system.js";
import { gpgDecrypt } from "./gpg.js";

/**
 * The whole product in one process against real PostgreSQL, Redis, the platform simulator,
 * OpenSSH, s3rver and the GCS test server: operator → tenant → key → source → destinations →
 * tasks → the scheduler fires on a simulated clock → files arrive → GnuPG decrypts them → the
 * rows are what the simulator served for the window.
 */
describe("end to end, all services in one process", () => {
  let db: TestDatabase;
  let simulator: Simulator;
  let sshd: SshdServer;
  let s3: S3rverHandle;
  let gcs: GcsTestServer;
  let system: System;
  let clock = new Date("2026-11-20T12:00:30Z");
  let operatorKey: string;
  const passphrase = `e2e-${randomBytes(12).toString("base64url")}`;

  beforeAll(async () => {
    db = await createTestDatabase();
    [simulator, sshd, s3, gcs] = await Promise.all([startSimulator({ port: 0 }), startSshd(), startS3rver({ buckets: ["customer-reports"] }), startGcsServer()]);
    gcs.createBucket("customer-gcs");
    const dir = mkdtempSync(join(tmpdir(), "e2e-"));
    const config = testConfig({
      DATABASE_URL: db.url, REDIS_PREFIX: testRedisPrefix("e2e"), LOG_LEVEL: "warn",
      STAGING_DIR: join(dir, "staging"), MANAGED_DIR: join(dir, "managed"), GATEWAY_PORT: "0",
      PLATFORM_CSDS_URL: simulator.url, PLATFORM_DATA_ACCESS_URL: simulator.url, SCHEDULER_TICK_MS: "200", RECONCILER_INTERVAL_MS: "1000",
      JOB_ATTEMPTS: "3", JOB_BACKOFF_MS: "100", PLATFORM_TIMEOUT_MS: "5000",
    });
    system = await startSystem(config, { now: () => clock });
    operatorKey = (await createOperatorKey(system.prisma, "e2e operator")).key;
  }, 180_000);

  afterAll(async () => {
    await system?.stop();
    await Promise.all([simulator?.stop(), sshd?.stop(), s3?.stop(), gcs?.stop()]);
    await db?.drop();
  });

  async function call(key: string, method: string, url: string, body?: unknown) {
    const res = await system.gateway.app.inject({
      method: method as "GET", url, headers: { authorization: `Bearer ${key}`, ...(body !== undefined ? { "content-type": "application/json" } : {}) },
      ...(body !== undefined ? { payload: JSON.stringify(body) } : {}),
    });
    const json = String(res.headers["content-type"] ?? "").includes("json");
    return { status: res.statusCode, body: json && res.body ? JSON.parse(res.body) : undefined, raw: res.rawPayload };
  }

  async function waitForRuns(key: string, taskId: string, count: number, done = (s: string) => s === "SUCCEEDED" || s === "FAILED", timeoutMs = 90_000) {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const runs = (await call(key, "GET", `/v1/runs?taskId=${taskId}`)).body.items as Array<{ id: string; status: string; error: string | null }>;
      if (runs.length >= count && runs.slice(0, count).every((r) => done(r.status))) return runs;
      if (Date.now() > until) throw new Error(`runs of task ${taskId} did not finish: ${JSON.stringify(runs)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  async function tenantWithSource() {
    const accountId = `${Date.now() % 1e8}${randomBytes(2).readUInt16BE(0)}`;
    const created = await call(operatorKey, "POST", "/v1/tenants", { name: "E2E Brand", accountId, timezone: "Europe/Paris" });
    expect(created.status).toBe(201);
    const admin = created.body.adminApiKey.key as string;
    const keyPair = await call(admin, "POST", "/v1/encryption-keys/generate", { passphrase });
    expect(keyPair.status).toBe(201);
    const credentials = { consumerKey: randomBytes(8).toString("hex"), consumerSecret: randomBytes(12).toString("hex"), token: randomBytes(8).toString("hex"), tokenSecret: randomBytes(12).toString("hex") };
    simulator.control.registerAccount(accountId, credentials);
    const source = await call(admin, "POST", "/v1/sources", { name: "Platform", kind: "liveperson", accountId, credentials });
    expect(source.status, JSON.stringify(source.body)).toBe(201);
    return { accountId, admin, privateKey: keyPair.body.privateKey as string, fingerprint: keyPair.body.fingerprint as string, sourceId: source.body.id as string };
  }

  function taskBody(description: string, sourceId: string, destinationId: string, report = "messaging-conversations", format = "csv") {
    return {
      description, reportId: report, format, schedule: { frequency: "interval", everyMinutes: 60, delayMinutes: 0 },
      sourceId, destinationId, enabled: true,
    };
  }

  it("delivers a scheduled window to every destination kind, readable by GnuPG, with the simulator's rows", async () => {
    const t = await tenantWithSource();
    const gcsKey = gcs.serviceAccount("writer");
    // The customer's SFTP folder exists; the product only creates subfolders below it.
    const setup = new SftpClient();
    await setup.connect({ host: sshd.host, port: sshd.port, username: sshd.username, password: sshd.password });
    await setup.mkdir("reports/daily", true);
    await setup.end();
    const destinations = {
      managed: await call(t.admin, "POST", "/v1/destinations", { name: "Managed", kind: "managed", config: {} }),
      sftp: await call(t.admin, "POST", "/v1/destinations", { name: "SFTP", kind: "sftp", config: { host: sshd.host, port: sshd.port, username: sshd.username, folder: "reports/daily" }, credentials: { password: sshd.password } }),
      s3: await call(t.admin, "POST", "/v1/destinations", { name: "S3", kind: "s3", config: { bucket: "customer-reports", prefix: "transporter", region: s3.region, endpoint: s3.endpoint, forcePathStyle: true }, credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey } }),
      gcs: await call(t.admin, "POST", "/v1/destinations", { name: "GCS", kind: "gcs", config: { bucket: "customer-gcs", prefix: "exports", apiEndpoint: gcs.url }, credentials: { serviceAccountKey: gcsKey } }),
    };
    for (const [kind, res] of Object.entries(destinations)) expect(res.status, `${kind}: ${JSON.stringify(res.body)}`).toBe(201);

    const tasks: Record<string, string> = {};
    for (const [kind, res] of Object.entries(destinations)) {
      const body = kind === "managed" ? taskBody(`raw to ${kind}`, t.sourceId, res.body.id, "messaging-conversations-raw", "ndjson") : taskBody(`conversations to ${kind}`, t.sourceId, res.body.id);
      const task = await call(t.admin, "POST", "/v1/tasks", body);
      expect(task.status, JSON.stringify(task.body)).toBe(201);
      expect(task.body.nextRunAt).toBe("2026-11-20T13:00:00.000Z");
      tasks[kind] = task.body.id;
    }
    // Nothing is due yet; then the simulated clock passes 13:00 and the scheduler fires.
    await new Promise((r) => setTimeout(r, 600));
    expect(await system.prisma.run.count({ where: { tenantId: (await system.prisma.tenant.findFirstOrThrow({ where: { accountId: t.accountId } })).id } })).toBe(0);
    clock = new Date("2026-11-20T13:00:05Z");

    const windowStart = new Date("2026-11-20T12:00:00Z");
    const windowEnd = new Date("2026-11-20T13:00:00Z");
    const expected = [...conversationsForWindow(t.accountId, windowStart, windowEnd, simulator.seed)];
    expect(expected.length).toBeGreaterThan(0);
    const expectedIds = expected.map((c) => (c.info as { conversationId: string }).conversationId).sort();

    for (const [kind, taskId] of Object.entries(tasks)) {
      const [run] = await waitForRuns(t.admin, taskId, 1);
      expect(run, kind).toMatchObject({ status: "SUCCEEDED", trigger: "schedule", windowStart: windowStart.toISOString(), windowEnd: windowEnd.toISOString(), keyFingerprint: t.fingerprint });
      const detail = (await call(t.admin, "GET", `/v1/runs/${run!.id}`)).body;
      let encrypted: Buffer;
      if (kind === "managed") {
        encrypted = (await call(t.admin, "GET", `/v1/runs/${run!.id}/file`)).raw;
      } else if (kind === "sftp") {
        const client = new SftpClient();
        await client.connect({ host: sshd.host, port: sshd.port, username: sshd.username, password: sshd.password });
        encrypted = (await client.get(detail.destinationPath)) as Buffer;
        await client.end();
      } else if (kind === "s3") {
        const object = await s3.client().send(new GetObjectCommand({ Bucket: "customer-reports", Key: detail.destinationPath }));
        encrypted = Buffer.from(await object.Body!.transformToByteArray());
      } else {
        // Read it back the way the adapter talks to the server (token from the key's token_uri).
        const config = gcsConfigSchema.parse({ bucket: "customer-gcs", apiEndpoint: gcs.url });
        const { storage } = gcsStorageClient(config, gcsCredentialsSchema.parse({ serviceAccountKey: gcsKey }));
        [encrypted] = await storage.bucket("customer-gcs").file(detail.destinationPath).download();
      }
      expect(encrypted.length, kind).toBe(detail.bytes);
      const plain = await gpgDecrypt(encrypted, t.privateKey, passphrase);
      if (kind === "managed") {
        const lines = plain.toString("utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));
        expect(lines).toEqual(JSON.parse(JSON.stringify(expected)));
      } else {
        const rows = parseCsv(plain, { columns: true, bom: true }) as Array<Record<string, string>>;
        expect(rows.length, kind).toBe(expected.length);
        const idColumn = Object.keys(rows[0]!).find((c) => /conversation.?id/i.test(c))!;
        expect(rows.map((r) => r[idColumn]).sort(), kind).toEqual(expectedIds);
      }
    }
  }, 240_000);

  it("run now delivers the latest complete window once", async () => {
    const t = await tenantWithSource();
    const managed = await call(t.admin, "POST", "/v1/destinations", { name: "Managed", kind: "managed", config: {} });
    const task = (await call(t.admin, "POST", "/v1/tasks", { ...taskBody("now", t.sourceId, managed.body.id), enabled: false })).body;
    const requested = await call(t.admin, "POST", `/v1/tasks/${task.id}/runs`, {});
    expect(requested.status).toBe(202);
    const [run] = await waitForRuns(t.admin, task.id, 1);
    const latestHour = new Date(Math.floor(clock.getTime() / 3_600_000) * 3_600_000);
    expect(run).toMatchObject({ status: "SUCCEEDED", trigger: "manual", windowEnd: latestHour.toISOString() });
    const files = await system.managed.deletePrefix(`tenants/${(await system.prisma.task.findUniqueOrThrow({ where: { id: task.id } })).tenantId}/runs/${run!.id}/`);
    expect(files).toBe(1);
  }, 120_000);

  it("a failing destination retries, fails with its reason and one alert; once fixed, a retry delivers once", async () => {
    const t = await tenantWithSource();
    const flaky = await startS3rver({ buckets: ["flaky"] });
    const destination = await call(t.admin, "POST", "/v1/destinations", { name: "Flaky S3", kind: "s3", config: { bucket: "flaky", region: flaky.region, endpoint: flaky.endpoint, forcePathStyle: true }, credentials: { accessKeyId: flaky.accessKeyId, secretAccessKey: flaky.secretAccessKey } });
    expect(destination.status).toBe(201);
    await flaky.stop();
    const task = (await call(t.admin, "POST", "/v1/tasks", { ...taskBody("flaky", t.sourceId, destination.body.id), enabled: false })).body;
    await call(t.admin, "POST", `/v1/tasks/${task.id}/runs`, {});
    await call(t.admin, "POST", `/v1/tasks/${task.id}/runs`, { windowStart: "2026-11-20T10:00:00Z", windowEnd: "2026-11-20T11:00:00Z" });
    const failed = await waitForRuns(t.admin, task.id, 2);
    for (const run of failed) {
      expect(run.status).toBe("FAILED");
      expect(run.error).toMatch(/deliver/);
      expect((await call(t.admin, "GET", `/v1/runs/${run.id}`)).body.attempts).toBeGreaterThanOrEqual(3 + 3);
    }
    const alerts = (await call(t.admin, "GET", "/v1/alerts?state=open&kind=run.failed")).body.items;
    expect(alerts).toHaveLength(1);
    expect(alerts[0].occurrences).toBe(2);

    // Fix it: a working store, re-verified through the API; then retry the failed window.
    const fixed = await startS3rver({ buckets: ["flaky"] });
    try {
      const patched = await call(t.admin, "PATCH", `/v1/destinations/${destination.body.id}`, { config: { bucket: "flaky", region: fixed.region, endpoint: fixed.endpoint, forcePathStyle: true }, credentials: { accessKeyId: fixed.accessKeyId, secretAccessKey: fixed.secretAccessKey } });
      expect(patched.status, JSON.stringify(patched.body)).toBe(200);
      const retry = await call(t.admin, "POST", `/v1/runs/${failed[0]!.id}/retry`);
      expect(retry.status).toBe(202);
      const [done] = await waitForRuns(t.admin, task.id, 1);
      expect(done).toMatchObject({ id: retry.body.id, status: "SUCCEEDED" });
      const detail = (await call(t.admin, "GET", `/v1/runs/${done!.id}`)).body;
      const listed = await fixed.client().send(new (await import("@aws-sdk/client-s3")).ListObjectsV2Command({ Bucket: "flaky" }));
      expect((listed.Contents ?? []).map((o) => o.Key)).toEqual([detail.destinationPath]);
      const history = (await call(t.admin, "GET", `/v1/runs?taskId=${task.id}`)).body.items;
      expect(history).toHaveLength(3);
      expect((await call(t.admin, "GET", "/v1/alerts?state=open&kind=run.failed")).body.items).toHaveLength(0);
    } finally {
      await fixed.stop();
    }
  }, 240_000);
});
