import { randomBytes } from "node:crypto";
import { chown, mkdir, mkdtemp, rm } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { keyringFromConfig, unsealJson } from "@transporter/crypto";
import { startGcsServer } from "../../../libs/storage/test/support/gcs-server.js";
import type { GcsTestServer } from "../../../libs/storage/test/support/gcs-server.js";
import { startS3rver } from "../../../libs/storage/test/support/s3rver.js";
import type { S3rverHandle } from "../../../libs/storage/test/support/s3rver.js";
import { startSshd } from "../../../libs/storage/test/support/sshd.js";
import type { SshdServer } from "../../../libs/storage/test/support/sshd.js";
import { readyTenant, setupGateway } from "./helpers.js";
import type { TestGateway } from "./helpers.js";

describe("destination endpoints", () => {
  let gw: TestGateway;
  let sshd: SshdServer;
  let s3: S3rverHandle;
  let managedDir: string;
  let adminKey: string;
  let tenantId: string;
  const bucket = `tp-dest-${randomBytes(3).toString("hex")}`;

  beforeAll(async () => {
    managedDir = await mkdtemp(join(tmpdir(), "tp-gw-managed-"));
    [gw, sshd, s3] = await Promise.all([setupGateway({ config: { MANAGED_DIR: managedDir } }), startSshd(), startS3rver({ buckets: [bucket] })]);
    await mkdir(join(sshd.home, "drop"));
    await chown(join(sshd.home, "drop"), sshd.uid, sshd.gid);
    const { tenant, adminKey: key } = await gw.createTenant();
    adminKey = key;
    tenantId = tenant.id;
  }, 120_000);

  afterAll(async () => {
    await gw?.close();
    await sshd?.stop();
    await s3?.stop();
    await rm(managedDir, { recursive: true, force: true });
  });

  const sftpBody = (overrides: { config?: Record<string, unknown>; credentials?: Record<string, unknown> } = {}) => ({
    name: "Partner SFTP",
    kind: "sftp",
    config: { host: sshd.host, port: sshd.port, username: sshd.username, folder: "drop", ...overrides.config },
    credentials: overrides.credentials ?? { password: sshd.password },
  });

  async function countDestinations(): Promise<number> {
    return gw.prisma.destination.count({ where: { tenantId } });
  }

  it("creates an SFTP destination after verifying it, pins the host key and seals the credentials", async () => {
    const res = await gw.call(adminKey, "POST", "/v1/destinations", sftpBody());
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      name: "Partner SFTP",
      kind: "sftp",
      credentialsSet: true,
      lastError: null,
      config: { host: sshd.host, port: sshd.port, username: sshd.username, folder: "drop", hostKeyFingerprint: sshd.hostKeyFingerprint, hostKeyType: "ssh-ed25519", renameAllowed: true },
      verification: { ok: true },
    });
    expect(res.body.verifiedAt).toEqual(expect.any(String));
    expect(JSON.stringify(res.body)).not.toContain(sshd.password);

    const row = await gw.prisma.destination.findUniqueOrThrow({ where: { id: res.body.id } });
    expect(row.sealedCredentials).not.toContain(sshd.password);
    const opened = unsealJson<{ password: string }>(row.sealedCredentials ?? "", keyringFromConfig(gw.config), `tenant:${tenantId}/destination:${row.id}`);
    expect(opened.password).toBe(sshd.password);

    const read = await gw.call(adminKey, "GET", `/v1/destinations/${row.id}`);
    expect(read.status).toBe(200);
    expect(read.body.config.hostKeyFingerprint).toBe(sshd.hostKeyFingerprint);
    expect(read.body).not.toHaveProperty("credentials");
    expect(JSON.stringify(read.body)).not.toContain(sshd.password);
    expect(gw.logs.join("")).not.toContain(sshd.password);
  });

  it("refuses with 422 and the reason when the destination cannot be verified, saving nothing", async () => {
    const before = await countDestinations();
    const wrongPassword = `wrong-${randomBytes(6).toString("hex")}`;
    const auth = await gw.call(adminKey, "POST", "/v1/destinations", sftpBody({ credentials: { password: wrongPassword } }));
    expect(auth.status).toBe(422);
    expect(auth.body).toMatchObject({ status: 422, code: "auth" });
    expect(auth.body.detail).toContain("rejected the credentials");
    expect(JSON.stringify(auth.body)).not.toContain(wrongPassword);

    const missing = await gw.call(adminKey, "POST", "/v1/destinations", sftpBody({ config: { folder: "nowhere" } }));
    expect(missing.status).toBe(422);
    expect(missing.body.code).toBe("not_found");

    const dns = await gw.call(adminKey, "POST", "/v1/destinations", sftpBody({ config: { host: "sftp.example.invalid" } }));
    expect(dns.status).toBe(422);
    expect(dns.body.code).toBe("dns");
    expect(await countDestinations()).toBe(before);
    expect(gw.logs.join("")).not.toContain(wrongPassword);
  });

  it("answers 400 for settings the kind does not accept", async () => {
    const noCredentials = await gw.call(adminKey, "POST", "/v1/destinations", { ...sftpBody(), credentials: undefined });
    expect(noCredentials.status).toBe(400);
    expect(noCredentials.body.errors[0].path).toMatch(/^credentials/);
    const badPort = await gw.call(adminKey, "POST", "/v1/destinations", sftpBody({ config: { port: "twenty-two" } }));
    expect(badPort.status).toBe(400);
    expect(badPort.body.errors.map((e: { path: string }) => e.path)).toContain("config.port");
  });

  it("creates managed and S3 destinations, and lists without credentials", async () => {
    const managed = await gw.call(adminKey, "POST", "/v1/destinations", { name: "Kept by us", kind: "managed" });
    expect(managed.status).toBe(201);
    expect(managed.body.credentialsSet).toBe(false);

    const s3Created = await gw.call(adminKey, "POST", "/v1/destinations", {
      name: "Our bucket",
      kind: "s3",
      config: { bucket, prefix: "reports", endpoint: s3.endpoint, region: s3.region },
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    });
    expect(s3Created.status).toBe(201);
    const s3Refused = await gw.call(adminKey, "POST", "/v1/destinations", {
      name: "Our bucket, wrong key",
      kind: "s3",
      config: { bucket, endpoint: s3.endpoint, region: s3.region },
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: "not-the-secret-key" },
    });
    expect(s3Refused.status).toBe(422);
    expect(s3Refused.body.code).toBe("auth");

    const list = await gw.call(adminKey, "GET", "/v1/destinations?limit=500");
    expect(list.status).toBe(200);
    expect(list.body.items.map((d: { kind: string }) => d.kind)).toEqual(expect.arrayContaining(["managed", "s3", "sftp"]));
    const text = JSON.stringify(list.body);
    expect(text).not.toContain(s3.secretAccessKey);
    expect(text).not.toContain(sshd.password);
    expect(text).not.toContain("not-the-secret-key");
    const onlyS3 = await gw.call(adminKey, "GET", "/v1/destinations?kind=s3");
    expect(onlyS3.body.items.every((d: { kind: string }) => d.kind === "s3")).toBe(true);
    expect(gw.logs.join("")).not.toContain(s3.secretAccessKey);
  });

  it("refuses S3 credentials that cannot travel in an HTTP header with 400 naming the field, before connecting", async () => {
    const before = await countDestinations();
    const audits = await gw.prisma.auditEvent.count({ where: { tenantId } });
    const good = { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey };
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ ...good, accessKeyId: "AKIA\u{1F600}" }, "credentials.accessKeyId"],
      [{ ...good, accessKeyId: "AKIA\nX" }, "credentials.accessKeyId"],
      [{ ...good, accessKeyId: "AKIA X" }, "credentials.accessKeyId"],
      [{ ...good, secretAccessKey: "secret\r\nX-Evil: 1" }, "credentials.secretAccessKey"],
      [{ ...good, secretAccessKey: "s\u00e9cret" }, "credentials.secretAccessKey"],
      [{ ...good, sessionToken: "tok\r\nX-Evil: 1" }, "credentials.sessionToken"],
      [{ ...good, sessionToken: "tok\u0000" }, "body.credentials.sessionToken"],
    ];
    for (const [credentials, path] of cases) {
      const res = await gw.call(adminKey, "POST", "/v1/destinations", { name: "S3", kind: "s3", config: { bucket, endpoint: s3.endpoint, region: s3.region }, credentials });
      expect(res.status, path).toBe(400);
      expect(res.body.errors.map((e: { path: string }) => e.path), path).toContain(path);
      expect(JSON.stringify(res.body)).not.toContain(s3.secretAccessKey);
    }
    expect(await countDestinations()).toBe(before);
    expect(await gw.prisma.auditEvent.count({ where: { tenantId } })).toBe(audits);
  });

  it("re-verifies on update and keeps the old settings when the new ones fail", async () => {
    const created = await gw.call(adminKey, "POST", "/v1/destinations", sftpBody());
    const id: string = created.body.id;
    const renamed = await gw.call(adminKey, "PATCH", `/v1/destinations/${id}`, { name: "Renamed" });
    expect(renamed.status).toBe(200);
    expect(renamed.body.name).toBe("Renamed");
    expect(renamed.body).not.toHaveProperty("verification");

    const refused = await gw.call(adminKey, "PATCH", `/v1/destinations/${id}`, { config: { folder: "missing-folder" } });
    expect(refused.status).toBe(422);
    expect(refused.body.code).toBe("not_found");
    expect((await gw.call(adminKey, "GET", `/v1/destinations/${id}`)).body.config.folder).toBe("drop");

    await mkdir(join(sshd.home, "drop", "sub"));
    await chown(join(sshd.home, "drop", "sub"), sshd.uid, sshd.gid);
    const moved = await gw.call(adminKey, "PATCH", `/v1/destinations/${id}`, {
      config: { folder: "drop/sub" },
      credentials: { privateKey: sshd.privateKey },
    });
    expect(moved.status).toBe(200);
    expect(moved.body.verification.ok).toBe(true);
    expect(moved.body.config).toMatchObject({ folder: "drop/sub", hostKeyFingerprint: sshd.hostKeyFingerprint });
    const row = await gw.prisma.destination.findUniqueOrThrow({ where: { id } });
    const opened = unsealJson<Record<string, string>>(row.sealedCredentials ?? "", keyringFromConfig(gw.config), `tenant:${tenantId}/destination:${id}`);
    expect(Object.keys(opened)).toEqual(["privateKey"]);
    expect(JSON.stringify(moved.body)).not.toContain("PRIVATE KEY");
  });

  it("sends stored credentials only to the server they were given for: moving the server needs them again", async () => {
    const created = await gw.call(adminKey, "POST", "/v1/destinations", sftpBody());
    const id: string = created.body.id;
    // Another port on the same host: a different server as far as the credentials know.
    for (const config of [{ port: sshd.port + 1 }, { host: "sftp.elsewhere.example" }]) {
      const moved = await gw.call(adminKey, "PATCH", `/v1/destinations/${id}`, { config });
      expect(moved.status, JSON.stringify(config)).toBe(400);
      expect(moved.body.errors[0].path).toBe("credentials");
    }
    expect((await gw.call(adminKey, "GET", `/v1/destinations/${id}`)).body.config).toMatchObject({ host: sshd.host, port: sshd.port });
    // The same server with the credentials given again is fine.
    const again = await gw.call(adminKey, "PATCH", `/v1/destinations/${id}`, { config: { port: sshd.port }, credentials: { password: sshd.password } });
    expect(again.status).toBe(200);
  });

  it("pins the host key's type with its fingerprint: learned for an older pin, and learned again when the pinned key is replaced by one of another type", async () => {
    const created = await gw.call(adminKey, "POST", "/v1/destinations", sftpBody());
    const id: string = created.body.id;
    // A pin saved before key types were recorded: verification adds its type, the pin stays.
    const { hostKeyType: _type, ...legacy } = created.body.config as Record<string, unknown>;
    await gw.prisma.destination.update({ where: { id }, data: { config: legacy as never } });
    const learned = await gw.call(adminKey, "POST", `/v1/destinations/${id}/verify`);
    expect(learned.body).toMatchObject({ ok: true, destination: { config: { hostKeyFingerprint: sshd.hostKeyFingerprint, hostKeyType: "ssh-ed25519" } } });

    // The server's ed25519 key is replaced by an RSA key: refused until the admin pins the new key.
    const ed25519 = sshd.hostKeyFingerprint;
    await sshd.offerHostKeys(["rsa"]);
    try {
      const refused = await gw.call(adminKey, "POST", `/v1/destinations/${id}/verify`);
      expect(refused.body).toMatchObject({ ok: false, error: { code: "host_key_changed" } });
      const repinned = await gw.call(adminKey, "PATCH", `/v1/destinations/${id}`, { config: { hostKeyFingerprint: sshd.hostKeyFingerprints.rsa } });
      expect(repinned.status).toBe(200);
      expect(repinned.body.config).toMatchObject({ hostKeyFingerprint: sshd.hostKeyFingerprints.rsa, hostKeyType: "ssh-rsa" });
    } finally {
      await sshd.offerHostKeys(["ed25519"]);
    }
    expect(sshd.hostKeyFingerprint).toBe(ed25519);
  });

  it("verifies on request, raising an alert on failure and resolving it on success", async () => {
    const created = await gw.call(adminKey, "POST", "/v1/destinations", sftpBody());
    const id: string = created.body.id;
    const dedupeKey = `destination.verification:${id}`;

    // The folder now belongs to root: the user can no longer write there.
    await chown(join(sshd.home, "drop"), 0, 0);
    try {
      const failed = await gw.call(adminKey, "POST", `/v1/destinations/${id}/verify`);
      expect(failed.status).toBe(200);
      expect(failed.body).toMatchObject({ ok: false, error: { code: "permission" } });
      expect(failed.body.destination.lastError).toContain("permission denied");
      const alert = await gw.prisma.alert.findFirst({ where: { tenantId, dedupeKey, resolvedAt: null } });
      expect(alert).toMatchObject({ kind: "destination.verification", destinationId: id });
    } finally {
      await chown(join(sshd.home, "drop"), sshd.uid, sshd.gid);
    }

    const passed = await gw.call(adminKey, "POST", `/v1/destinations/${id}/verify`);
    expect(passed.body).toMatchObject({ ok: true, destination: { lastError: null } });
    expect(await gw.prisma.alert.count({ where: { tenantId, dedupeKey, resolvedAt: null } })).toBe(0);
  });

  it("refuses to delete a destination that enabled tasks use, and deletes an unused one", async () => {
    const used = await gw.call(adminKey, "POST", "/v1/destinations", { name: "Used", kind: "managed" });
    await gw.prisma.task.create({
      data: { tenantId, description: "Daily", reportId: "messaging-conversations", format: "csv", frequency: "daily", time: "00:00", destinationId: used.body.id, enabled: true },
    });
    const refused = await gw.call(adminKey, "DELETE", `/v1/destinations/${used.body.id}`);
    expect(refused.status).toBe(409);
    expect(refused.body.detail).toContain('"Daily"');

    const unused = await gw.call(adminKey, "POST", "/v1/destinations", { name: "Unused", kind: "managed" });
    const deleted = await gw.call(adminKey, "DELETE", `/v1/destinations/${unused.body.id}`);
    expect(deleted.status).toBe(204);
    expect((await gw.call(adminKey, "GET", `/v1/destinations/${unused.body.id}`)).status).toBe(404);
  });

  it("deletes a destination once its tasks are disabled: history keeps it, credentials are wiped, the task cannot run there again", async () => {
    const s3 = await gw.prisma.destination.create({ data: { tenantId, name: "Old S3", kind: "s3", config: { bucket: "b" }, sealedCredentials: "v1.x.y.z" } });
    const task = await gw.prisma.task.create({
      data: { tenantId, description: "Weekly", reportId: "messaging-conversations", format: "csv", frequency: "weekly", time: "00:00", dayOfWeek: 1, destinationId: s3.id, enabled: false },
    });
    const run = await gw.prisma.run.create({ data: { tenantId, taskId: task.id, windowStart: new Date(0), windowEnd: new Date(1), scheduledFor: new Date(), trigger: "manual", status: "SUCCEEDED" } });
    expect((await gw.call(adminKey, "DELETE", `/v1/destinations/${s3.id}`)).status).toBe(204);
    const row = await gw.prisma.destination.findUniqueOrThrow({ where: { id: s3.id } });
    expect(row.deletedAt).toBeInstanceOf(Date);
    expect(row.sealedCredentials).toBeNull();
    expect((await gw.call(adminKey, "GET", "/v1/destinations")).body.items.map((d: { id: string }) => d.id)).not.toContain(s3.id);
    expect((await gw.call(adminKey, "GET", `/v1/runs/${run.id}`)).status).toBe(200);
    const enable = await gw.call(adminKey, "PATCH", `/v1/tasks/${task.id}`, { enabled: true });
    expect(enable.status).toBe(400);
    expect(enable.body.errors.map((e: { path: string }) => e.path)).toContain("body.destinationId");
  });

  it("refuses to delete a destination a run under way will deliver to (its task disabled, or moved after the delivery began), naming the runs; deletes it once they have finished", async () => {
    const create = (name: string) => gw.prisma.destination.create({ data: { tenantId, name, kind: "managed", config: {} } });
    const [old, next] = await Promise.all([create("Busy A"), create("Busy B")]);
    const task = await gw.prisma.task.create({
      data: { tenantId, description: "Hourly busy", reportId: "messaging-conversations", format: "csv", frequency: "interval", everyMinutes: 60, destinationId: old.id, enabled: false },
    });
    const run = (status: "ENCRYPTING" | "DELIVERING", destinationId: string | null, hour: number) =>
      gw.prisma.run.create({
        data: { tenantId, taskId: task.id, windowStart: new Date(hour * 3_600_000), windowEnd: new Date((hour + 1) * 3_600_000), scheduledFor: new Date(), trigger: "manual", status, destinationId },
      });
    // Not yet delivering: it will deliver to the task's destination, A.
    const encrypting = await run("ENCRYPTING", null, 0);
    const first = await gw.call(adminKey, "DELETE", `/v1/destinations/${old.id}`);
    expect(first.status).toBe(409);
    expect(first.body.detail).toContain(encrypting.id);

    // Delivering, pinned to A, while the task now points at B: A is still in use.
    await gw.prisma.run.update({ where: { id: encrypting.id }, data: { status: "SUCCEEDED" } });
    await gw.prisma.task.update({ where: { id: task.id }, data: { destinationId: next.id } });
    const pinned = await run("DELIVERING", old.id, 1);
    // A run not yet delivering now goes to B: no reason to keep A.
    await run("ENCRYPTING", null, 2);
    const second = await gw.call(adminKey, "DELETE", `/v1/destinations/${old.id}`);
    expect(second.status).toBe(409);
    expect(second.body.detail).toContain(pinned.id);
    expect((await gw.prisma.destination.findUniqueOrThrow({ where: { id: old.id } })).deletedAt).toBeNull();
    expect(await gw.prisma.auditEvent.count({ where: { tenantId, action: "destination.delete", targetId: old.id } })).toBe(0);

    await gw.prisma.run.update({ where: { id: pinned.id }, data: { status: "FAILED" } });
    expect((await gw.call(adminKey, "DELETE", `/v1/destinations/${old.id}`)).status).toBe(204);
  });

  it("a queued run that will never start (its scheduled task disabled since, or its task deleted) does not hold the destination", async () => {
    const create = (name: string) => gw.prisma.destination.create({ data: { tenantId, name, kind: "managed", config: {} } });
    const [a, b] = [await create("Queued A"), await create("Queued B")];
    const task = (destinationId: string) =>
      gw.prisma.task.create({ data: { tenantId, description: `Queued ${destinationId.slice(0, 4)}`, reportId: "messaging-conversations", format: "csv", frequency: "interval", everyMinutes: 60, destinationId, enabled: false } });
    const queued = (taskId: string, trigger: "schedule" | "manual") =>
      gw.prisma.run.create({ data: { tenantId, taskId, windowStart: new Date(0), windowEnd: new Date(3_600_000), scheduledFor: new Date(), trigger, status: "PENDING" } });
    // A scheduled run of a task disabled since it was queued: the fetch stage skips it.
    await queued((await task(a.id)).id, "schedule");
    expect((await gw.call(adminKey, "DELETE", `/v1/destinations/${a.id}`)).status).toBe(204);
    // Any queued run of a task deleted since.
    const deleted = await task(b.id);
    await queued(deleted.id, "manual");
    await gw.prisma.task.update({ where: { id: deleted.id }, data: { deletedAt: new Date() } });
    expect((await gw.call(adminKey, "DELETE", `/v1/destinations/${b.id}`)).status).toBe(204);
  });

  it("a PATCH that changes nothing as the adapter reads the settings (the prefix \"reports\" is \"reports/\") verifies, writes and audits nothing; a config read back is taken as it is", async () => {
    const created = await gw.call(adminKey, "POST", "/v1/destinations", {
      name: "Bucket, unchanged", kind: "s3",
      config: { bucket, prefix: "reports", endpoint: s3.endpoint, region: s3.region },
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const row = await gw.prisma.destination.findUniqueOrThrow({ where: { id: created.body.id } });
    const audits = () => gw.prisma.auditEvent.count({ where: { tenantId, targetId: created.body.id } });
    const before = await audits();
    const same = await gw.call(adminKey, "PATCH", `/v1/destinations/${created.body.id}`, { config: { prefix: "reports" } });
    expect(same.status, JSON.stringify(same.body)).toBe(200);
    expect(same.body.verification).toBeUndefined();
    // Its whole config as read, sent back: a field stored before the settings knew no other is taken too.
    await gw.prisma.destination.update({ where: { id: row.id }, data: { config: { ...(row.config as object), retiredSetting: "x" } } });
    const read = await gw.call(adminKey, "GET", `/v1/destinations/${created.body.id}`);
    const echoed = await gw.call(adminKey, "PATCH", `/v1/destinations/${created.body.id}`, { config: read.body.config });
    expect(echoed.status, JSON.stringify(echoed.body)).toBe(200);
    expect(await audits()).toBe(before);
    expect((await gw.prisma.destination.findUniqueOrThrow({ where: { id: row.id } })).verifiedAt).toEqual(row.verifiedAt);
  });

  it("a run asked for while its destination is being deleted waits for the delete, then is refused: no run is made for a deleted destination", async () => {
    const t = await readyTenant(gw, { timezone: "UTC" });
    const task = (await gw.call(t.adminKey, "POST", "/v1/tasks", t.body({ enabled: false }))).body;
    const { default: pg } = await import("pg");
    const deleting = new pg.Client({ connectionString: gw.db.url });
    await deleting.connect();
    try {
      // A delete under way: it holds the destination's row, as the DELETE route does.
      await deleting.query("BEGIN");
      await deleting.query(`SELECT id FROM "Destination" WHERE id = $1 FOR NO KEY UPDATE`, [t.destination.id]);
      const request = gw.call(t.adminKey, "POST", `/v1/tasks/${task.id}/runs`, {});
      await new Promise((resolve) => setTimeout(resolve, 500));
      await deleting.query(`UPDATE "Destination" SET "deletedAt" = now() WHERE id = $1`, [t.destination.id]);
      await deleting.query("COMMIT");
      const answer = await request;
      expect(answer.status, JSON.stringify(answer.body)).toBe(409);
      expect(answer.body.detail).toContain("destination was deleted");
      expect(await gw.prisma.run.count({ where: { taskId: task.id } })).toBe(0);
    } finally {
      await deleting.end();
    }
  });

  it("keeps destinations to their tenant and writes to admins only", async () => {
    const mine = await gw.call(adminKey, "POST", "/v1/destinations", { name: "Mine", kind: "managed" });
    const other = await gw.createTenant();
    expect((await gw.call(other.adminKey, "GET", `/v1/destinations/${mine.body.id}`)).status).toBe(404);
    expect((await gw.call(other.adminKey, "POST", `/v1/destinations/${mine.body.id}/verify`)).status).toBe(404);
    expect((await gw.call(other.adminKey, "DELETE", `/v1/destinations/${mine.body.id}`)).status).toBe(404);

    const viewer = await gw.call(adminKey, "POST", "/v1/api-keys", { name: "reader", role: "viewer" });
    expect((await gw.call(viewer.body.key, "GET", "/v1/destinations")).status).toBe(200);
    expect((await gw.call(viewer.body.key, "POST", "/v1/destinations", { name: "x", kind: "managed" })).status).toBe(403);
  });
});

describe("GCS service account keys", () => {
  let gw: TestGateway;
  let gcs: GcsTestServer;
  let adminKey: string;
  let tenantId: string;
  const bucket = `tp-gcs-${randomBytes(3).toString("hex")}`;

  beforeAll(async () => {
    [gw, gcs] = await Promise.all([setupGateway(), startGcsServer()]);
    gcs.createBucket(bucket);
    const { tenant, adminKey: key } = await gw.createTenant();
    adminKey = key;
    tenantId = tenant.id;
  }, 120_000);

  afterAll(async () => {
    await gw?.close();
    await gcs?.stop();
  });

  const gcsBody = (serviceAccountKey: unknown) => ({ name: "Our GCS", kind: "gcs", config: { bucket, apiEndpoint: gcs.url }, credentials: { serviceAccountKey } });
  /** The body's text with the string "DEEP" replaced by `depth` nested arrays. */
  const nestedIn = (body: unknown, depth: number) => JSON.stringify(body).replace('"DEEP"', `${"[".repeat(depth)}${"]".repeat(depth)}`);
  const state = async () => ({
    destinations: await gw.prisma.destination.count({ where: { tenantId } }),
    audits: await gw.prisma.auditEvent.count({ where: { tenantId } }),
    gcsRequests: gcs.requests.length,
  });

  it("refuses a key with a field nested thousands of levels deep with 400, before verifying or saving anything", async () => {
    const writer = { ...gcs.serviceAccount("writer"), token_uri: gcs.tokenUri };
    const before = await state();
    const created = await gw.call(adminKey, "POST", "/v1/destinations", nestedIn(gcsBody({ ...writer, note: "DEEP" }), 6000));
    expect(created.status, JSON.stringify(created.body).slice(0, 300)).toBe(400);
    expect(created.body.errors[0].path).toMatch(/^body\.credentials\.serviceAccountKey\.note(\.0)+$/);
    expect(created.body.errors[0].message).toMatch(/too deeply/);
    expect(await state()).toEqual(before);

    const ok = await gw.call(adminKey, "POST", "/v1/destinations", gcsBody(writer));
    expect(ok.status, JSON.stringify(ok.body)).toBe(201);
    const stored = await gw.prisma.destination.findUniqueOrThrow({ where: { id: ok.body.id } });
    const afterCreate = await state();
    const patched = await gw.call(adminKey, "PATCH", `/v1/destinations/${ok.body.id}`, nestedIn({ credentials: { serviceAccountKey: { ...writer, note: "DEEP" } } }, 6000));
    expect(patched.status, JSON.stringify(patched.body).slice(0, 300)).toBe(400);
    expect(await state()).toEqual(afterCreate);
    expect((await gw.prisma.destination.findUniqueOrThrow({ where: { id: ok.body.id } })).sealedCredentials).toBe(stored.sealedCredentials);
    expect(gw.logs.join("")).not.toMatch(/unhandled error/);
  });

  it("keeps only the fields of a key file: others are dropped, whether the key comes as an object or as JSON text", async () => {
    const writer = { ...gcs.serviceAccount("writer"), token_uri: gcs.tokenUri };
    const keyFile = { ...writer, auth_uri: "https://accounts.google.com/o/oauth2/auth", auth_provider_x509_cert_url: "https://www.googleapis.com/oauth2/v1/certs", client_x509_cert_url: "https://www.googleapis.com/robot/v1/metadata/x509/w", universe_domain: "googleapis.com" };
    const keyring = keyringFromConfig(gw.config);
    const storedKey = async (id: string) => {
      const row = await gw.prisma.destination.findUniqueOrThrow({ where: { id } });
      return unsealJson<{ serviceAccountKey: Record<string, unknown> }>(row.sealedCredentials!, keyring, `tenant:${tenantId}/destination:${id}`).serviceAccountKey;
    };
    const asObject = await gw.call(adminKey, "POST", "/v1/destinations", gcsBody({ ...keyFile, note: { any: ["thing"] } }));
    expect(asObject.status, JSON.stringify(asObject.body)).toBe(201);
    expect(await storedKey(asObject.body.id)).toEqual(keyFile);

    // As text, the gateway's depth limit does not see inside: the schema drops the field after parsing.
    const text = JSON.stringify(keyFile).replace(/}$/, `,"extra":${"[".repeat(20_000)}${"]".repeat(20_000)}}`);
    const asText = await gw.call(adminKey, "POST", "/v1/destinations", gcsBody(text));
    expect(asText.status, JSON.stringify(asText.body).slice(0, 300)).toBe(201);
    expect(await storedKey(asText.body.id)).toEqual(keyFile);

    // A field of the key file that is not text is refused, naming it, before any request.
    const before = await state();
    const deepKnown = await gw.call(adminKey, "POST", "/v1/destinations", gcsBody(JSON.stringify({ ...keyFile, client_id: "DEEP" }).replace('"DEEP"', `${"[".repeat(20_000)}${"]".repeat(20_000)}`)));
    expect(deepKnown.status).toBe(400);
    expect(deepKnown.body.errors.map((e: { path: string }) => e.path)).toContain("credentials.serviceAccountKey.client_id");
    expect(await state()).toEqual(before);
  });
});

describe("destinations on a gateway that allows no insecure endpoints (production)", () => {
  let gw: TestGateway;
  let sshd: SshdServer;
  let adminKey: string;
  let tenantId: string;

  beforeAll(async () => {
    [gw, sshd] = await Promise.all([setupGateway({ config: { ALLOW_INSECURE_ENDPOINTS: "false" } }), startSshd()]);
    const { tenant, adminKey: key } = await gw.createTenant();
    adminKey = key;
    tenantId = tenant.id;
  }, 120_000);

  afterAll(async () => {
    await gw?.close();
    await sshd?.stop();
  });

  const s3Body = (endpoint: string) => ({
    name: "Internal S3",
    kind: "s3",
    config: { bucket: "my-bucket", endpoint },
    credentials: { accessKeyId: "AKIAEXAMPLE", secretAccessKey: "secret-example" },
  });
  const sftpBody = (host: string) => ({ name: "Internal SFTP", kind: "sftp", config: { host, port: sshd.port, username: sshd.username, folder: "." }, credentials: { password: sshd.password } });
  const fakeKey = { type: "service_account", client_email: "w@p.iam.gserviceaccount.com", private_key: "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n" };

  it("refuses with 400 naming the field: plain http or internal S3 and GCS endpoints, a clear-text token_uri, an internal SFTP host", async () => {
    const cases: Array<[unknown, string]> = [
      [s3Body("http://s3.example.com"), "config.endpoint"],
      [s3Body("https://127.0.0.1:6379"), "config.endpoint"],
      [s3Body("https://169.254.169.254"), "config.endpoint"],
      [{ name: "g", kind: "gcs", config: { bucket: "my-bucket", apiEndpoint: "https://10.0.0.8" }, credentials: { serviceAccountKey: fakeKey } }, "config.apiEndpoint"],
      [{ name: "g", kind: "gcs", config: { bucket: "my-bucket" }, credentials: { serviceAccountKey: { ...fakeKey, token_uri: "http://oauth2.example.com/token" } } }, "credentials.serviceAccountKey.token_uri"],
      [sftpBody("127.0.0.1"), "config.host"],
      [sftpBody("localhost"), "config.host"],
    ];
    for (const [body, path] of cases) {
      const res = await gw.call(adminKey, "POST", "/v1/destinations", body);
      expect(res.status, path).toBe(400);
      expect(res.body.errors, path).toEqual([{ path, message: expect.stringMatching(/https|own network/) }]);
    }
    expect(await gw.prisma.destination.count({ where: { tenantId } })).toBe(0);
  });

  it("refuses with 422 naming the field a host name that resolves into the service's own network, without connecting", async () => {
    const res = await gw.call(adminKey, "POST", "/v1/destinations", sftpBody(hostname()));
    expect(res.status).toBe(422);
    expect(res.body.code).toBe("connect");
    expect(res.body.errors).toEqual([{ path: "config.host", message: expect.stringContaining("own network") }]);
    expect(await gw.prisma.destination.count({ where: { tenantId } })).toBe(0);
  });

  it("refuses a stored destination that points inside on re-verification, and a change that would move it there", async () => {
    const stored = await gw.prisma.destination.create({ data: { tenantId, name: "Saved earlier", kind: "s3", config: { bucket: "my-bucket", endpoint: "http://127.0.0.1:9000" }, sealedCredentials: null } });
    const verify = await gw.call(adminKey, "POST", `/v1/destinations/${stored.id}/verify`);
    expect(verify.status).toBe(400);
    expect(verify.body.errors.map((e: { path: string }) => e.path)).toContain("config.endpoint");
    const moved = await gw.call(adminKey, "PATCH", `/v1/destinations/${stored.id}`, { config: { endpoint: "https://[::1]:9000" } });
    expect(moved.status).toBe(400);
    expect(moved.body.errors.map((e: { path: string }) => e.path)).toContain("config.endpoint");
  });
});
