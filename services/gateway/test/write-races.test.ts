import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { keyringFromConfig, unsealJson } from "@transporter/crypto";
import type { Platform, SourceCredentials, VerifyResult } from "@transporter/sources";
import { DestinationError, type DestinationRegistry } from "@transporter/storage";
import { credentialsOf, destinationGate, fakeDestinations, fakePlatform, sourceGate } from "./fakes.js";
import { failWrites, setupGateway, type TestGateway } from "./helpers.js";

describe("writes racing other writes", () => {
  let gw: TestGateway;
  let adminKey: string;
  let tenantId: string;

  beforeAll(async () => {
    gw = await setupGateway({ deps: { destinations: fakeDestinations, sourcePlatform: fakePlatform } });
    ({ adminKey, tenant: { id: tenantId } } = await gw.createTenant());
  }, 120_000);

  afterAll(async () => {
    await gw?.close();
  });

  const passwordOf = async (id: string) => {
    const row = await gw.prisma.destination.findUniqueOrThrow({ where: { id } });
    return row.sealedCredentials === null ? null : unsealJson<{ password: string }>(row.sealedCredentials, keyringFromConfig(gw.config), `tenant:${tenantId}/destination:${id}`).password;
  };
  const auditActions = async (targetId: string) =>
    (await gw.prisma.auditEvent.findMany({ where: { targetId }, orderBy: [{ createdAt: "asc" }, { id: "asc" }] })).map((e) => e.action);

  async function createDestination() {
    const res = await gw.call(adminKey, "POST", "/v1/destinations", { name: "Partner", kind: "sftp", config: { host: "a.example", folder: "in" }, credentials: { password: "pw-for-A" } });
    expect(res.status).toBe(201);
    return res.body.id as string;
  }

  it("a destination PATCH verified against a stale read does not undo a move with new credentials (409)", async () => {
    const id = await createDestination();
    const held = destinationGate.hold();
    const slow = gw.call(adminKey, "PATCH", `/v1/destinations/${id}`, { config: { folder: "out" } });
    await held.started;

    const move = await gw.call(adminKey, "PATCH", `/v1/destinations/${id}`, { config: { host: "b.example" }, credentials: { password: "pw-for-B" } });
    expect(move.status).toBe(200);
    held.release();
    const late = await slow;

    expect(late.status).toBe(409);
    expect(late.headers["content-type"]).toContain("application/problem+json");
    expect(late.body.detail).toMatch(/changed meanwhile/);
    const row = await gw.prisma.destination.findUniqueOrThrow({ where: { id } });
    expect(row.config).toMatchObject({ host: "b.example", folder: "in" });
    expect(await passwordOf(id)).toBe("pw-for-B");
    expect(await auditActions(id)).toEqual(["destination.create", "destination.update"]);
  });

  it("a destination PATCH racing a DELETE answers 404 and writes no credentials onto the deleted row", async () => {
    const id = await createDestination();
    const held = destinationGate.hold();
    const slow = gw.call(adminKey, "PATCH", `/v1/destinations/${id}`, { credentials: { password: "pw-new" } });
    await held.started;

    expect((await gw.call(adminKey, "DELETE", `/v1/destinations/${id}`)).status).toBe(204);
    held.release();
    const late = await slow;

    expect(late.status).toBe(404);
    const row = await gw.prisma.destination.findUniqueOrThrow({ where: { id } });
    expect(row.deletedAt).not.toBeNull();
    expect(row.sealedCredentials).toBeNull();
    expect(await auditActions(id)).toEqual(["destination.create", "destination.delete"]);
  });

  it("a destination PATCH with nothing racing still saves", async () => {
    const id = await createDestination();
    const res = await gw.call(adminKey, "PATCH", `/v1/destinations/${id}`, { name: "Renamed", config: { host: "c.example" }, credentials: { password: "pw-for-C" } });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ name: "Renamed", config: { host: "c.example" }, verification: { ok: true } });
    expect(await passwordOf(id)).toBe("pw-for-C");
    const [one, two] = [await gw.call(adminKey, "PATCH", `/v1/destinations/${id}`, { name: "One" }), await gw.call(adminKey, "PATCH", `/v1/destinations/${id}`, { name: "Two" })];
    expect([one.status, two.status]).toEqual([200, 200]);
  });

  it("deletes at once of a destination and of a source: one deletes and is audited, the others are 404", async () => {
    const id = await createDestination();
    const statuses = await Promise.all([1, 2, 3].map(() => gw.call(adminKey, "DELETE", `/v1/destinations/${id}`).then((r) => r.status)));
    expect(statuses.sort()).toEqual([204, 404, 404]);
    expect(await auditActions(id)).toEqual(["destination.create", "destination.delete"]);
    const source = await gw.call(adminKey, "POST", "/v1/sources", { name: "Platform", kind: "liveperson", credentials: credentialsOf(9) });
    expect(source.status, JSON.stringify(source.body)).toBe(201);
    const sourceStatuses = await Promise.all([1, 2, 3].map(() => gw.call(adminKey, "DELETE", `/v1/sources/${source.body.id}`).then((r) => r.status)));
    expect(sourceStatuses.sort()).toEqual([204, 404, 404]);
    expect(await auditActions(source.body.id)).toEqual(["source.create", "source.delete"]);
  });

  it("a destination PATCH during which a delivery failure is recorded on the row still saves (its settings did not change)", async () => {
    const id = await createDestination();
    const held = destinationGate.hold();
    const fix = gw.call(adminKey, "PATCH", `/v1/destinations/${id}`, { credentials: { password: "pw-fixed" } });
    await held.started;
    // As the deliverer does when a delivery to the broken destination fails meanwhile.
    await gw.prisma.destination.update({ where: { id }, data: { lastError: "auth: permission denied" } });
    held.release();
    const saved = await fix;
    expect(saved.status, JSON.stringify(saved.body)).toBe(200);
    expect(await passwordOf(id)).toBe("pw-fixed");
    expect((await gw.prisma.destination.findUniqueOrThrow({ where: { id } })).lastError).toBeNull();
  });

  it("a source PATCH racing a DELETE answers 404 and does not restore the wiped key", async () => {
    const created = await gw.call(adminKey, "POST", "/v1/sources", { name: "LP", kind: "liveperson", credentials: credentialsOf(1) });
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    const held = sourceGate.hold();
    const slow = gw.call(adminKey, "PATCH", `/v1/sources/${id}`, { credentials: credentialsOf(2) });
    await held.started;

    expect((await gw.call(adminKey, "DELETE", `/v1/sources/${id}`)).status).toBe(204);
    held.release();
    const late = await slow;

    expect(late.status).toBe(404);
    const row = await gw.prisma.source.findUniqueOrThrow({ where: { id } });
    expect(row.deletedAt).not.toBeNull();
    expect(row.sealedCredentials).toBe("");
    expect(row.permissions).toBeNull();
    expect(await auditActions(id)).toEqual(["source.create", "source.delete"]);
  });

  it("a source PATCH verified against a stale read answers 409", async () => {
    const created = await gw.call(adminKey, "POST", "/v1/sources", { name: "LP 2", kind: "liveperson", credentials: credentialsOf(3) });
    const id = created.body.id as string;
    const held = sourceGate.hold();
    const slow = gw.call(adminKey, "PATCH", `/v1/sources/${id}`, { credentials: credentialsOf(4) });
    await held.started;
    expect((await gw.call(adminKey, "PATCH", `/v1/sources/${id}`, { credentials: credentialsOf(5) })).status).toBe(200);
    held.release();
    const late = await slow;

    expect(late.status).toBe(409);
    const row = await gw.prisma.source.findUniqueOrThrow({ where: { id } });
    expect(unsealJson(row.sealedCredentials, keyringFromConfig(gw.config), `tenant:${tenantId}/source:${id}`)).toEqual(credentialsOf(5));
  });
});

describe("a failed verification racing a delete", () => {
  let gw: TestGateway;
  let adminKey: string;
  // The fakes pass until told to fail: a destination or source is created verified first.
  let failing = false;
  const sftp = fakeDestinations.adapterFor("sftp");
  const flakyDestinations = {
    adapterFor: () => ({
      ...sftp,
      verify: (...args: Parameters<typeof sftp.verify>) => (failing ? Promise.resolve({ ok: false as const, error: new DestinationError("permission", "fake: permission denied") }) : sftp.verify(...args)),
    }),
  } as unknown as DestinationRegistry;
  const flakyPlatform = {
    ...fakePlatform,
    verifySource: async (credentials: SourceCredentials, accountId: string): Promise<VerifyResult> =>
      failing
        ? { verified: false, accountId, allowed: [], apis: {}, error: { code: "bad_credentials", message: "fake: key refused" }, sourceCalls: 1 }
        : fakePlatform.verifySource(credentials, accountId),
  } as unknown as Platform;

  beforeAll(async () => {
    gw = await setupGateway({ deps: { destinations: flakyDestinations, sourcePlatform: flakyPlatform } });
    ({ adminKey } = await gw.createTenant());
    // Raising a verification alert takes 1.5 s: a delete 500 ms after the verification began
    // comes while it is being raised.
    await gw.prisma.$executeRawUnsafe(`CREATE FUNCTION test_slow_alert() RETURNS trigger AS $$ BEGIN PERFORM pg_sleep(1.5); RETURN NEW; END $$ LANGUAGE plpgsql`);
    await gw.prisma.$executeRawUnsafe(`CREATE TRIGGER test_slow_alert BEFORE INSERT ON "Alert" FOR EACH ROW WHEN (NEW.kind LIKE '%.verification') EXECUTE FUNCTION test_slow_alert()`);
  }, 120_000);

  afterAll(async () => {
    await gw?.close();
  });

  const alertsOf = (dedupeKey: string) => gw.prisma.alert.findMany({ where: { dedupeKey }, select: { resolvedAt: true } });

  it("a destination deleted while its failed verification raises the alert: the alert does not stay open", async () => {
    failing = false;
    const created = await gw.call(adminKey, "POST", "/v1/destinations", { name: "Partner", kind: "sftp", config: { host: "a.example", folder: "in" }, credentials: { password: "pw" } });
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    failing = true;
    const verify = gw.call(adminKey, "POST", `/v1/destinations/${id}/verify`);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect((await gw.call(adminKey, "DELETE", `/v1/destinations/${id}`)).status).toBe(204);
    const verified = await verify;

    expect(verified.status).toBe(200);
    expect(verified.body).toMatchObject({ ok: false, error: { code: "permission" } });
    // Raised by the verification, then resolved by the delete.
    const alerts = await alertsOf(`destination.verification:${id}`);
    expect(alerts).toHaveLength(1);
    expect(alerts[0]!.resolvedAt).not.toBeNull();
  });

  it("a source deleted while its failed verification raises the alert: the alert does not stay open", async () => {
    failing = false;
    const created = await gw.call(adminKey, "POST", "/v1/sources", { name: "LP", kind: "liveperson", credentials: credentialsOf(7) });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const id = created.body.id as string;
    failing = true;
    const verify = gw.call(adminKey, "POST", `/v1/sources/${id}/verify`);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect((await gw.call(adminKey, "DELETE", `/v1/sources/${id}`)).status).toBe(204);
    const verified = await verify;

    expect(verified.status).toBe(200);
    expect(verified.body).toMatchObject({ ok: false, error: { code: "bad_credentials" } });
    const alerts = await alertsOf(`source.verification:${id}`);
    expect(alerts).toHaveLength(1);
    expect(alerts[0]!.resolvedAt).not.toBeNull();
  });
});

describe("generating an encryption key when a write after it fails", () => {
  let gw: TestGateway;

  beforeAll(async () => {
    gw = await setupGateway();
  }, 120_000);

  afterAll(async () => {
    await gw?.close();
  });

  const passphrase = "correct horse battery staple 42";

  it("stores no key when its audit event cannot be written; a retry makes the one active key", async () => {
    const { tenant, adminKey } = await gw.createTenant();
    const undo = await failWrites(gw, "AuditEvent", "NEW.action = 'encryption_key.generate'");
    let failed;
    try {
      failed = await gw.call(adminKey, "POST", "/v1/encryption-keys/generate", { passphrase, algorithm: "curve25519" });
    } finally {
      await undo();
    }
    expect(failed.status).toBe(500);
    expect(failed.body).not.toHaveProperty("privateKey");
    // No key whose private half nobody received.
    expect(await gw.prisma.encryptionKey.count({ where: { tenantId: tenant.id } })).toBe(0);

    const retry = await gw.call(adminKey, "POST", "/v1/encryption-keys/generate", { passphrase, algorithm: "curve25519" });
    expect(retry.status).toBe(201);
    expect(retry.body).toMatchObject({ active: true });
    expect(retry.body.privateKey).toContain("PRIVATE KEY");
    const keys = await gw.prisma.encryptionKey.findMany({ where: { tenantId: tenant.id } });
    expect(keys.map((k) => [k.id, k.active])).toEqual([[retry.body.id, true]]);
    const audit = await gw.prisma.auditEvent.findMany({ where: { tenantId: tenant.id, action: "encryption_key.generate" } });
    expect(audit.map((e) => e.targetId)).toEqual([retry.body.id]);
  });

  it("still hands over the private key when the alerts cannot be refreshed after the commit", async () => {
    const { tenant, adminKey } = await gw.createTenant();
    const undo = await failWrites(gw, "Alert");
    let res;
    try {
      res = await gw.call(adminKey, "POST", "/v1/encryption-keys/generate", { passphrase, algorithm: "curve25519" });
    } finally {
      await undo();
    }
    expect(res.status).toBe(201);
    expect(res.body.privateKey).toContain("PRIVATE KEY");
    const keys = await gw.prisma.encryptionKey.findMany({ where: { tenantId: tenant.id } });
    expect(keys.map((k) => [k.id, k.active])).toEqual([[res.body.id, true]]);
  });
});
