import { createHash, createHmac, randomBytes, randomUUID } from "node:crypto";
import { chown, mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer } from "node:http";
import type { IncomingHttpHeaders, Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable, Writable } from "node:stream";
import { SMTPServer } from "smtp-server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testConfig } from "@transporter/config";
import type { Config } from "@transporter/config";
import { keyringFromConfig, sealJson } from "@transporter/crypto";
import type { Db, Run } from "@transporter/db";
import { createTestDatabase } from "@transporter/db/testing";
import type { TestDatabase } from "@transporter/db/testing";
import { createRedis, JobProducer, testRedisPrefix } from "@transporter/queue";
import type { Redis } from "@transporter/queue";
import { createMailer, createManagedStore, createStagingStore, dateSubfolder, fileNamePatternOf, reportFileName, stagingKey } from "@transporter/storage";
import type { StagingStore } from "@transporter/storage";
import { createLogger } from "@transporter/telemetry";
import { startSshd } from "../../../libs/storage/test/support/sshd.js";
import type { SshdServer } from "../../../libs/storage/test/support/sshd.js";
import { createNotifyHandler, destinationCredentialsContext, start, webhookSecretContext } from "../src/index.js";

interface Hook {
  headers: IncomingHttpHeaders;
  body: string;
}

const sha256 = (data: Buffer) => createHash("sha256").update(data).digest("hex");

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < 600; i++) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe("deliverer service", () => {
  let db: TestDatabase;
  let prisma: Db;
  let redis: Redis;
  let config: Config;
  let sshd: SshdServer;
  let hookServer: Server;
  let hookUrl: string;
  let smtp: SMTPServer;
  const greylisted = new Set<string>();
  let producer: JobProducer;
  let staging: StagingStore;
  let service: { stop(): Promise<void> };
  let workDir: string;
  const hooks: Hook[] = [];
  const mails: string[] = [];
  const logLines: string[] = [];
  const webhookSecret = randomBytes(16).toString("hex");

  beforeAll(async () => {
    workDir = await mkdtemp(join(tmpdir(), "tp-deliverer-"));
    [db, sshd] = await Promise.all([createTestDatabase(), startSshd()]);
    prisma = db.prisma;
    await mkdir(join(sshd.home, "drop"));
    await chown(join(sshd.home, "drop"), sshd.uid, sshd.gid);

    hookServer = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (chunk: Buffer) => chunks.push(chunk));
      req.on("end", () => {
        hooks.push({ headers: req.headers, body: Buffer.concat(chunks).toString("utf8") });
        res.end("ok");
      });
    });
    await new Promise<void>((resolve) => hookServer.listen(0, "127.0.0.1", resolve));
    hookUrl = `http://127.0.0.1:${(hookServer.address() as AddressInfo).port}/hook`;

    smtp = new SMTPServer({
      authOptional: true,
      disabledCommands: ["STARTTLS"],
      logger: false,
      onRcptTo(address, _session, callback) {
        if (address.address.endsWith("@reject.test")) callback(Object.assign(new Error("mailbox unavailable"), { responseCode: 550 }));
        // Greylisting: the first try of each address is refused for now (451), the next accepted.
        else if (address.address.endsWith("@grey.test") && !greylisted.has(address.address)) {
          greylisted.add(address.address);
          callback(Object.assign(new Error("greylisted, try again later"), { responseCode: 451 }));
        } else callback();
      },
      onData(stream, _session, callback) {
        const chunks: Buffer[] = [];
        stream.on("data", (chunk: Buffer) => chunks.push(chunk));
        stream.on("end", () => {
          mails.push(Buffer.concat(chunks).toString("utf8"));
          callback();
        });
      },
    });
    await new Promise<void>((resolve) => smtp.listen(0, "127.0.0.1", resolve));

    const prefix = testRedisPrefix("deliverer");
    config = testConfig({
      DATABASE_URL: db.url,
      REDIS_PREFIX: prefix,
      STAGING_DIR: join(workDir, "staging"),
      MANAGED_DIR: join(workDir, "managed"),
      SMTP_URL: `smtp://127.0.0.1:${(smtp.server.address() as AddressInfo).port}`,
      JOB_ATTEMPTS: "3",
      JOB_BACKOFF_MS: "20",
      MANAGED_RETENTION_DAYS: "28",
      LOG_LEVEL: "debug",
    });
    redis = createRedis(config.REDIS_URL);
    producer = new JobProducer(redis, prefix, { attempts: 3, backoffMs: 20 });
    staging = createStagingStore(config);
    const capture = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        logLines.push(chunk.toString("utf8"));
        callback();
      },
    });
    service = await start(config, { prisma, redis, producer, logger: createLogger({ name: "deliverer", level: "debug", destination: capture }) });
  }, 120_000);

  afterAll(async () => {
    await service?.stop();
    await producer?.close();
    await redis?.quit();
    await sshd?.stop();
    await new Promise((resolve) => hookServer?.close(resolve));
    await new Promise<void>((resolve) => (smtp ? smtp.close(() => resolve()) : resolve()));
    await db?.drop();
    await rm(workDir, { recursive: true, force: true });
  });

  async function setUp(options: {
    kind: "sftp" | "managed";
    destinationConfig?: Record<string, unknown>;
    credentials?: Record<string, unknown>;
    notifications?: Record<string, unknown>;
    taskOptions?: Record<string, unknown>;
    /** The encrypted file's extension as the encryptor staged it. */
    armored?: boolean;
  }) {
    const keyring = keyringFromConfig(config);
    const tenant = await prisma.tenant.create({
      data: { name: "Acme", accountId: String(randomBytes(4).readUInt32BE()), timezone: "Europe/Berlin" },
    });
    const destinationId = randomUUID();
    const destination = await prisma.destination.create({
      data: {
        id: destinationId,
        tenantId: tenant.id,
        name: `${options.kind} destination`,
        kind: options.kind,
        config: (options.destinationConfig ?? {}) as object,
        sealedCredentials: options.credentials
          ? sealJson(options.credentials, keyring, destinationCredentialsContext(tenant.id, destinationId))
          : null,
      },
    });
    const taskId = randomUUID();
    const task = await prisma.task.create({
      data: {
        id: taskId,
        tenantId: tenant.id,
        description: "Daily Messaging",
        reportId: "messaging-conversations",
        format: "csv",
        frequency: "daily",
        time: "00:00",
        destinationId: destination.id,
        options: (options.taskOptions ?? {}) as object,
        notifications: (options.notifications ?? {}) as object,
        sealedWebhookSecret: sealJson(webhookSecret, keyring, webhookSecretContext(tenant.id, taskId)),
        enabled: true,
      },
    });
    const run = await prisma.run.create({
      data: {
        tenantId: tenant.id,
        taskId: task.id,
        windowStart: new Date("2026-11-21T23:00:00Z"),
        windowEnd: new Date("2026-11-22T23:00:00Z"),
        scheduledFor: new Date("2026-11-22T23:00:00Z"),
        trigger: "schedule",
        status: "ENCRYPTING",
      },
    });
    const data = randomBytes(2 * 1024 * 1024 + 5);
    // Staged as the transformer names the report and the encryptor its encrypted file.
    const reportName = reportFileName({ description: task.description, windowStart: run.windowStart, windowEnd: run.windowEnd, format: task.format, zone: tenant.timezone!, encrypted: false, pattern: fileNamePatternOf(task.options), reportId: task.reportId, runId: run.id });
    // With date folders, the transformer stages the report below its folder and the encryptor keeps it.
    const folder = (options.taskOptions as { dateFolders?: boolean } | undefined)?.dateFolders ? `${dateSubfolder(run.windowStart, tenant.timezone!)}/` : "";
    const encryptedKey = stagingKey(tenant.id, run.id, "encrypted", `${folder}${reportName}.${options.armored ? "asc" : "pgp"}`);
    await staging.put(encryptedKey, Readable.from([data]));
    return { tenant, destination, task, run, data, encryptedKey };
  }

  /** The notify handler over the test's SMTP server (which refuses mail to @reject.test). */
  function notifyHandlerWithMailer() {
    return createNotifyHandler({
      config,
      prisma,
      keyring: keyringFromConfig(config),
      logger: createLogger({ name: "t", level: "silent" }),
      mailer: createMailer({ smtpUrl: config.SMTP_URL ?? "", from: config.SMTP_FROM }),
    });
  }

  async function finished(runId: string): Promise<Run> {
    return waitFor(`run ${runId} to finish`, async () => {
      const run = await prisma.run.findUniqueOrThrow({ where: { id: runId } });
      return run.status === "SUCCEEDED" || run.status === "FAILED" ? run : undefined;
    });
  }

  it("delivers to SFTP into date folders, records the delivery on the run and notifies by webhook and email", async () => {
    const { tenant, task, run, data, encryptedKey } = await setUp({
      kind: "sftp",
      destinationConfig: { host: sshd.host, port: sshd.port, username: sshd.username, folder: "drop", hostKeyFingerprint: sshd.hostKeyFingerprint },
      credentials: { password: sshd.password },
      notifications: { webhookUrl: hookUrl, emails: ["ops@acme.test"], on: "always", emailSubject: "{{task}} {{status}}" },
      taskOptions: { dateFolders: true },
    });
    // Changed after the file was made: the delivery still lands on the path it was made for (a
    // retry must never put a second copy into another folder).
    await prisma.tenant.update({ where: { id: tenant.id }, data: { timezone: "America/New_York" } });
    await prisma.task.update({ where: { id: task.id }, data: { options: {} } });
    await producer.enqueue("deliver", { runId: run.id, tenantId: tenant.id, encryptedKey });
    const done = await finished(run.id);
    expect(done.status).toBe("SUCCEEDED");
    const fileName = "daily-messaging_2026-11-22T0000+0100_2026-11-23T0000+0100.csv.pgp";
    expect(done.fileName).toBe(fileName);
    expect(done.destinationPath).toBe(join(sshd.home, "drop", "2026/11/22", fileName));
    expect(Number(done.bytes)).toBe(data.length);
    expect(done.checksum).toBe(sha256(data));
    expect(done.deliveredAt).toBeInstanceOf(Date);
    expect(done.fileExpiresAt).toBeNull();
    expect(sha256(await readFile(done.destinationPath ?? ""))).toBe(sha256(data));

    const hook = await waitFor("the webhook", async () => hooks.find((h) => h.body.includes(run.id)));
    expect(hook.headers["x-transporter-signature"]).toBe(`sha256=${createHmac("sha256", webhookSecret).update(`${String(hook.headers["x-transporter-timestamp"])}.${hook.body}`).digest("hex")}`);
    const payload = JSON.parse(hook.body) as { run: { status: string; destinationPath: string; checksum: string } };
    expect(payload.run).toMatchObject({ status: "SUCCEEDED", destinationPath: done.destinationPath, checksum: done.checksum });
    const mail = await waitFor("the email", async () => mails.find((m) => m.includes(run.id)));
    expect(mail).toContain("Subject: Daily Messaging SUCCEEDED");
  }, 60_000);

  it("fails a run at once on an authentication error, alerts, notifies, and never logs the password", async () => {
    const wrongPassword = `wrong-${randomBytes(8).toString("hex")}`;
    const { tenant, run, encryptedKey, destination } = await setUp({
      kind: "sftp",
      destinationConfig: { host: sshd.host, port: sshd.port, username: sshd.username, folder: "drop", hostKeyFingerprint: sshd.hostKeyFingerprint },
      credentials: { password: wrongPassword },
      notifications: { webhookUrl: hookUrl, on: "failure" },
    });
    await producer.enqueue("deliver", { runId: run.id, tenantId: tenant.id, encryptedKey });
    const done = await finished(run.id);
    expect(done.status).toBe("FAILED");
    expect(done.errorCode).toBe("auth");
    expect(done.attempts).toBe(1);
    expect(done.error).toContain("rejected the credentials");
    const alert = await prisma.alert.findFirst({ where: { tenantId: tenant.id, kind: "run.failed" } });
    expect(alert?.runId).toBe(run.id);
    expect((await prisma.destination.findUniqueOrThrow({ where: { id: destination.id } })).lastError).toContain("rejected the credentials");

    const hook = await waitFor("the failure webhook", async () => hooks.find((h) => h.body.includes(run.id)));
    expect((JSON.parse(hook.body) as { run: { status: string; error: { code: string } } }).run).toMatchObject({
      status: "FAILED",
      error: { code: "auth" },
    });
    const logs = logLines.join("");
    expect(logs).toContain(run.id);
    expect(logs).not.toContain(wrongPassword);
    expect(logs).not.toContain(sshd.password);
  }, 60_000);

  it("retries a connection failure and fails the run after the last attempt", async () => {
    const closedPort = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, "127.0.0.1", () => {
        const port = (probe.address() as AddressInfo).port;
        probe.close(() => resolve(port));
      });
    });
    const { tenant, run, encryptedKey } = await setUp({
      kind: "sftp",
      destinationConfig: { host: "127.0.0.1", port: closedPort, username: sshd.username, folder: "drop" },
      credentials: { password: sshd.password },
    });
    await producer.enqueue("deliver", { runId: run.id, tenantId: tenant.id, encryptedKey });
    const done = await finished(run.id);
    expect(done.status).toBe("FAILED");
    expect(done.errorCode).toBe("connect");
    expect(done.attempts).toBe(3);
  }, 60_000);

  it("delivers to managed storage with an expiry after the retention period", async () => {
    const { tenant, run, data, encryptedKey } = await setUp({ kind: "managed" });
    await producer.enqueue("deliver", { runId: run.id, tenantId: tenant.id, encryptedKey });
    const done = await finished(run.id);
    expect(done.status).toBe("SUCCEEDED");
    expect(done.checksum).toBe(sha256(data));
    const expiresIn = (done.fileExpiresAt?.getTime() ?? 0) - (done.deliveredAt?.getTime() ?? 0);
    expect(Math.abs(expiresIn - 28 * 24 * 3600 * 1000)).toBeLessThan(60_000);
    const managed = createManagedStore(config);
    expect((await managed.stat(done.destinationPath ?? ""))?.bytes).toBe(data.length);
  }, 60_000);

  it("names the delivered file after the task's file name pattern", async () => {
    const { tenant, run, encryptedKey } = await setUp({ kind: "managed", taskOptions: { fileNamePattern: "{report}_{startDate}_{endTime}" } });
    await producer.enqueue("deliver", { runId: run.id, tenantId: tenant.id, encryptedKey });
    const done = await finished(run.id);
    expect(done.status).toBe("SUCCEEDED");
    // The window 2026-11-21T23:00Z – 2026-11-22T23:00Z in the tenant's zone (Europe/Paris).
    expect(done.fileName).toBe("messaging-conversations_2026-11-22_0000.csv.pgp");
    expect(done.destinationPath?.endsWith("/messaging-conversations_2026-11-22_0000.csv.pgp")).toBe(true);
  }, 60_000);

  it("delivers an ASCII-armored file under an .asc name", async () => {
    const { tenant, run, encryptedKey } = await setUp({ kind: "managed", taskOptions: { armor: true }, armored: true });
    await producer.enqueue("deliver", { runId: run.id, tenantId: tenant.id, encryptedKey });
    const done = await finished(run.id);
    expect(done.status).toBe("SUCCEEDED");
    expect(done.fileName).toBe("daily-messaging_2026-11-22T0000+0100_2026-11-23T0000+0100.csv.asc");
    expect(done.destinationPath?.endsWith("/daily-messaging_2026-11-22T0000+0100_2026-11-23T0000+0100.csv.asc")).toBe(true);
  }, 60_000);

  it("raises an alert for the task when its notification cannot be delivered, without touching the run", async () => {
    const { tenant, run, task } = await setUp({ kind: "managed", notifications: { emails: ["nobody@reject.test"], on: "always" } });
    await prisma.run.update({ where: { id: run.id }, data: { status: "SUCCEEDED", finishedAt: new Date(), notificationDueAt: new Date() } });
    const notify = notifyHandlerWithMailer();
    const outcome = await notify({ runId: run.id, tenantId: tenant.id, trace: {}, outcome: "succeeded" });
    expect(outcome).toEqual({ webhook: "skipped", email: "failed" });
    const alert = await prisma.alert.findFirst({ where: { tenantId: tenant.id, dedupeKey: `notification.email:${task.id}`, resolvedAt: null } });
    expect(alert).toMatchObject({ kind: "notification.email", severity: "warning", runId: run.id });
    expect((await prisma.run.findUniqueOrThrow({ where: { id: run.id } })).status).toBe("SUCCEEDED");
  });

  it("tries an email the relay refuses for now (451, greylisting) again, and it goes", async () => {
    const { tenant, run, task } = await setUp({ kind: "managed", notifications: { emails: ["ops@grey.test"], on: "always" } });
    await prisma.run.update({ where: { id: run.id }, data: { status: "SUCCEEDED", finishedAt: new Date(), notificationDueAt: new Date() } });
    const before = mails.length;
    expect(await notifyHandlerWithMailer()({ runId: run.id, tenantId: tenant.id, trace: {}, outcome: "succeeded" })).toEqual({ webhook: "skipped", email: "sent" });
    expect(mails.length).toBe(before + 1);
    expect(await prisma.alert.findFirst({ where: { tenantId: tenant.id, dedupeKey: `notification.email:${task.id}`, resolvedAt: null } })).toBeNull();
  });

  it("raises the email alert when the relay refuses some of the recipients, though it took the message for the others", async () => {
    const { tenant, run, task } = await setUp({ kind: "managed", notifications: { emails: ["ops@acme.test", "boss@reject.test"], on: "always" } });
    await prisma.run.update({ where: { id: run.id }, data: { status: "SUCCEEDED", finishedAt: new Date(), notificationDueAt: new Date() } });
    expect(await notifyHandlerWithMailer()({ runId: run.id, tenantId: tenant.id, trace: {}, outcome: "succeeded" })).toEqual({ webhook: "skipped", email: "sent" });
    const alert = await prisma.alert.findFirst({ where: { tenantId: tenant.id, dedupeKey: `notification.email:${task.id}`, resolvedAt: null } });
    expect(alert?.message).toContain("1 of 2 recipient(s) refused");
  });

  it("a deleted task's last run still notifies, but a notification that fails raises no alert for the deleted task", async () => {
    const { tenant, run, task } = await setUp({ kind: "managed", notifications: { emails: ["nobody@reject.test"], on: "always" } });
    await prisma.run.update({ where: { id: run.id }, data: { status: "SUCCEEDED", finishedAt: new Date(), notificationDueAt: new Date() } });
    await prisma.task.update({ where: { id: task.id }, data: { deletedAt: new Date(), enabled: false } });
    const notify = notifyHandlerWithMailer();
    expect(await notify({ runId: run.id, tenantId: tenant.id, trace: {}, outcome: "succeeded" })).toEqual({ webhook: "skipped", email: "failed" });
    expect(await prisma.alert.findMany({ where: { tenantId: tenant.id, taskId: task.id, resolvedAt: null } })).toEqual([]);
  });

  it("a webhook that went out stays sent when its alert bookkeeping fails: no second send, no false failure", async () => {
    const { tenant, run } = await setUp({ kind: "managed", notifications: { webhookUrl: hookUrl, on: "always" } });
    await prisma.run.update({ where: { id: run.id }, data: { status: "SUCCEEDED", finishedAt: new Date(), notificationDueAt: new Date() } });
    // The database drops out just after the send: the alert writes fail.
    const unreachable = () => Promise.reject(new Error("Can't reach database server"));
    const flaky = new Proxy(prisma, {
      get(target, property, receiver) {
        if (property === "$executeRaw") return unreachable;
        if (property === "alert") return { updateMany: unreachable };
        return Reflect.get(target, property, receiver);
      },
    });
    const notify = createNotifyHandler({ config, prisma: flaky, keyring: keyringFromConfig(config), logger: createLogger({ name: "t", level: "silent" }) });
    const outcome = await notify({ runId: run.id, tenantId: tenant.id, trace: {}, outcome: "succeeded" });
    expect(outcome).toMatchObject({ webhook: "sent" });
    expect(hooks.filter((h) => h.body.includes(run.id))).toHaveLength(1);
  });

  it("marks the run's notification handled once sent: a second notify job for the run sends nothing", async () => {
    const { tenant, run } = await setUp({ kind: "managed", notifications: { webhookUrl: hookUrl, on: "always" } });
    await prisma.run.update({ where: { id: run.id }, data: { status: "SUCCEEDED", finishedAt: new Date(), notificationDueAt: new Date() } });
    const notify = createNotifyHandler({ config, prisma, keyring: keyringFromConfig(config), logger: createLogger({ name: "t", level: "silent" }) });
    expect(await notify({ runId: run.id, tenantId: tenant.id, trace: {}, outcome: "succeeded" })).toMatchObject({ webhook: "sent" });
    expect((await prisma.run.findUniqueOrThrow({ where: { id: run.id } })).notificationDueAt).toBeNull();
    // A duplicate (queued again after the first job was removed from the queue) finds it handled.
    expect(await notify({ runId: run.id, tenantId: tenant.id, trace: {}, outcome: "succeeded" })).toEqual({ webhook: "skipped", email: "skipped" });
    expect(hooks.filter((h) => h.body.includes(run.id))).toHaveLength(1);
  });

  it("sends a notification sent again (its job re-run after a crash before the bookkeeping) under the same delivery id, so the receiver can drop the repeat", async () => {
    const { tenant, run } = await setUp({ kind: "managed", notifications: { webhookUrl: hookUrl, on: "always" } });
    const dueAt = new Date();
    await prisma.run.update({ where: { id: run.id }, data: { status: "SUCCEEDED", finishedAt: new Date(), notificationDueAt: dueAt } });
    const notify = createNotifyHandler({ config, prisma, keyring: keyringFromConfig(config), logger: createLogger({ name: "t", level: "silent" }) });
    expect(await notify({ runId: run.id, tenantId: tenant.id, trace: {}, outcome: "succeeded" })).toMatchObject({ webhook: "sent" });
    // As if the first attempt had died before marking the notification handled.
    await prisma.run.update({ where: { id: run.id }, data: { notificationDueAt: dueAt } });
    expect(await notify({ runId: run.id, tenantId: tenant.id, trace: {}, outcome: "succeeded" })).toMatchObject({ webhook: "sent" });
    const sent = hooks.filter((h) => h.body.includes(run.id));
    expect(sent).toHaveLength(2);
    const ids = sent.map((h) => [h.headers["x-transporter-delivery"], (JSON.parse(h.body) as { deliveryId: string }).deliveryId]);
    expect(ids[0]![0]).toBe(ids[0]![1]);
    expect(ids[1]).toEqual(ids[0]);
    expect(ids[0]![0]).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it("sends nothing for a successful run when the task asks for failures only", async () => {
    const { tenant, run } = await setUp({ kind: "managed", notifications: { webhookUrl: hookUrl, emails: ["ops@acme.test"], on: "failure" } });
    await prisma.run.update({ where: { id: run.id }, data: { status: "SUCCEEDED", finishedAt: new Date(), notificationDueAt: new Date() } });
    const notify = createNotifyHandler({ config, prisma, keyring: keyringFromConfig(config), logger: createLogger({ name: "t", level: "silent" }) });
    const outcome = await notify({ runId: run.id, tenantId: tenant.id, trace: {}, outcome: "succeeded" });
    expect(outcome).toEqual({ webhook: "skipped", email: "skipped" });
  });
});
