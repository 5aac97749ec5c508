import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { keyringFromConfig, unsealJson } from "@transporter/crypto";
import { startSimulator, type Simulator } from "@transporter/simulator";
import { createPlatform, SOURCE_APIS, type SourceCredentials } from "@transporter/sources";
import type { GatewayApp } from "../src/app.js";
import sourceRoutes from "../src/routes/sources.js";
import { setupGateway, type TestGateway } from "./helpers.js";

const newCredentials = (): SourceCredentials => ({
  consumerKey: `ck${randomBytes(6).toString("hex")}`,
  consumerSecret: `cs${randomBytes(10).toString("hex")}`,
  token: `tk${randomBytes(6).toString("hex")}`,
  tokenSecret: `ts${randomBytes(10).toString("hex")}`,
});

describe("source endpoints", () => {
  let gw: TestGateway;
  let sim: Simulator;
  let adminKey: string;
  let tenantId: string;
  let accountId: string;
  let credentials: SourceCredentials;

  beforeAll(async () => {
    sim = await startSimulator({ seed: "gateway-sources" });
    const platform = createPlatform({ csdsUrl: sim.url, dataAccessUrl: sim.url, allowInsecure: true, http: { maxAttempts: 2, backoffBaseMs: 5, backoffMaxMs: 10 } });
    gw = await setupGateway({ deps: { sourcePlatform: platform } });
    // Until the route index lists the module, register it here (same plugin, same app).
    if (!gw.app.hasRoute({ method: "GET", url: "/v1/sources" })) await gw.app.register(async (scope) => sourceRoutes(scope as unknown as GatewayApp));
    accountId = `55${process.pid % 1000}${Date.now() % 100_000}`;
    const created = await gw.createTenant({ accountId });
    adminKey = created.adminKey;
    tenantId = created.tenant.id;
    credentials = newCredentials();
    sim.control.registerAccount(accountId, credentials);
  }, 120_000);

  afterAll(async () => {
    await gw?.close();
    await sim?.stop();
  });

  const secretsOf = (c: SourceCredentials) => [c.consumerSecret, c.tokenSecret];

  it("verifies a key before saving it, lists the APIs it may use, and seals the credentials", async () => {
    const res = await gw.call(adminKey, "POST", "/v1/sources", { name: "Main account", kind: "liveperson", credentials });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ name: "Main account", kind: "liveperson", accountId, credentialsSet: true, lastError: null, verification: { ok: true, missing: [] } });
    expect(res.body.permissions).toEqual([...SOURCE_APIS]);
    expect(res.body.verification.allowed).toEqual([...SOURCE_APIS]);
    for (const s of secretsOf(credentials)) expect(JSON.stringify(res.body)).not.toContain(s);

    const row = await gw.prisma.source.findUniqueOrThrow({ where: { id: res.body.id } });
    for (const s of secretsOf(credentials)) expect(row.sealedCredentials).not.toContain(s);
    expect(unsealJson(row.sealedCredentials, keyringFromConfig(gw.config), `tenant:${tenantId}/source:${row.id}`)).toEqual(credentials);

    const read = await gw.call(adminKey, "GET", `/v1/sources/${row.id}`);
    expect(read.status).toBe(200);
    expect(read.body).not.toHaveProperty("credentials");
    const list = await gw.call(adminKey, "GET", "/v1/sources");
    expect(list.body.items.map((s: { id: string }) => s.id)).toContain(row.id);
    for (const s of secretsOf(credentials)) expect(gw.logs.join("")).not.toContain(s);
  });

  it("refuses with 422 and the reason when the key is wrong or the account unknown, saving nothing", async () => {
    const before = await gw.prisma.source.count({ where: { tenantId } });
    const wrong = await gw.call(adminKey, "POST", "/v1/sources", { name: "Typo", credentials: { ...credentials, consumerSecret: "wrong-secret-value" } });
    expect(wrong.status).toBe(422);
    expect(wrong.headers["content-type"]).toMatch(/application\/problem\+json/);
    expect(wrong.body).toMatchObject({ code: "bad_credentials", errors: [{ path: "credentials" }] });
    expect(wrong.body.detail).toMatch(/rejected the API key/);
    expect(JSON.stringify(wrong.body)).not.toContain("wrong-secret-value");

    const unknown = await gw.call(adminKey, "POST", "/v1/sources", { name: "Elsewhere", accountId: "404404", credentials });
    expect(unknown.status).toBe(422);
    expect(unknown.body).toMatchObject({ code: "unknown_account" });
    expect(await gw.prisma.source.count({ where: { tenantId } })).toBe(before);
  });

  it("saves a restricted key and says which APIs it may not use, and why", async () => {
    const restricted = newCredentials();
    const otherAccount = `66${Date.now() % 100_000}`;
    sim.control.registerAccount(otherAccount, { ...restricted, permissions: ["messaging-interactions", "account-config-users", "data-access-survey"], dataAccessEnabled: false });
    const res = await gw.call(adminKey, "POST", "/v1/sources", { name: "Limited", accountId: otherAccount, credentials: restricted });
    expect(res.status).toBe(201);
    expect(res.body.permissions).toEqual(["messaging-interactions", "account-config-users"]);
    expect(res.body.verification.apis["engagement-history"]).toMatchObject({ ok: false, code: "missing_permission" });
    expect(res.body.verification.apis["data-access-survey"]).toMatchObject({ ok: false, code: "data_access_not_enabled" });
  });

  it("rejects malformed bodies with 400", async () => {
    const res = await gw.call(adminKey, "POST", "/v1/sources", { name: "x", credentials: { consumerKey: "a" } });
    expect(res.status).toBe(400);
  });

  it("re-verifies on PATCH of credentials, keeping the old key when the new one fails", async () => {
    const created = await gw.call(adminKey, "POST", "/v1/sources", { name: "Rotating", credentials });
    const id = created.body.id;
    const renamed = await gw.call(adminKey, "PATCH", `/v1/sources/${id}`, { name: "Rotated" });
    expect(renamed.status).toBe(200);
    expect(renamed.body.name).toBe("Rotated");

    const bad = await gw.call(adminKey, "PATCH", `/v1/sources/${id}`, { credentials: { ...credentials, tokenSecret: "nope-nope" } });
    expect(bad.status).toBe(422);
    const row = await gw.prisma.source.findUniqueOrThrow({ where: { id } });
    expect(unsealJson(row.sealedCredentials, keyringFromConfig(gw.config), `tenant:${tenantId}/source:${id}`)).toEqual(credentials);

    const rotated = newCredentials();
    sim.control.registerAccount(accountId, rotated);
    const good = await gw.call(adminKey, "PATCH", `/v1/sources/${id}`, { credentials: rotated });
    expect(good.status).toBe(200);
    expect(good.body.verification).toMatchObject({ ok: true });
    credentials = rotated;
  });

  it("verify reports the APIs the source's tasks need but the key lacks, with an alert; 409 on delete while tasks use it", async () => {
    const created = await gw.call(adminKey, "POST", "/v1/sources", { name: "Shared", credentials });
    const id = created.body.id;
    const destination = await gw.prisma.destination.create({ data: { tenantId, name: "managed", kind: "managed", config: {} } });
    const task = await gw.prisma.task.create({
      data: { tenantId, description: "Daily chats", reportId: "chat-engagements", format: "csv", frequency: "daily", time: "00:00", sourceId: id, destinationId: destination.id },
    });

    const ok = await gw.call(adminKey, "POST", `/v1/sources/${id}/verify`);
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ ok: true, missing: [], source: { lastError: null } });

    sim.control.registerAccount(accountId, { ...credentials, permissions: SOURCE_APIS.filter((a) => a !== "engagement-history") });
    const lacking = await gw.call(adminKey, "POST", `/v1/sources/${id}/verify`);
    expect(lacking.status).toBe(200);
    expect(lacking.body).toMatchObject({ ok: true, missing: ["engagement-history"] });
    expect(lacking.body.source.lastError).toMatch(/engagement-history/);
    expect(lacking.body.source.permissions).not.toContain("engagement-history");
    const alert = await gw.prisma.alert.findFirst({ where: { tenantId, dedupeKey: `source.verification:${id}`, resolvedAt: null } });
    expect(alert).not.toBeNull();

    sim.control.registerAccount(accountId, { ...credentials, consumerSecret: "rotated-elsewhere" });
    const broken = await gw.call(adminKey, "POST", `/v1/sources/${id}/verify`);
    expect(broken.body).toMatchObject({ ok: false, error: { code: "bad_credentials" } });
    sim.control.registerAccount(accountId, credentials);

    const refused = await gw.call(adminKey, "DELETE", `/v1/sources/${id}`);
    expect(refused.status).toBe(409);
    expect(refused.body.detail).toContain("Daily chats");
    // A deleted task keeps its run history, which still points at the source: soft delete.
    await gw.prisma.task.update({ where: { id: task.id }, data: { deletedAt: new Date(), enabled: false } });
    const removed = await gw.call(adminKey, "DELETE", `/v1/sources/${id}`);
    expect(removed.status).toBe(204);
    expect((await gw.call(adminKey, "GET", `/v1/sources/${id}`)).status).toBe(404);
    expect((await gw.call(adminKey, "GET", "/v1/sources")).body.items.map((s: { id: string }) => s.id)).not.toContain(id);
    expect((await gw.call(adminKey, "POST", `/v1/sources/${id}/verify`)).status).toBe(404);
    const row = await gw.prisma.source.findUniqueOrThrow({ where: { id } });
    expect(row.deletedAt).not.toBeNull();
    expect(row.sealedCredentials).toBe("");
  });

  it("refuses a source reading another tenant's platform account, without a call to the platform", async () => {
    const theirAccount = `77${Date.now() % 100_000}`;
    const theirs = await gw.createTenant({ accountId: theirAccount });
    const theirCredentials = newCredentials();
    sim.control.registerAccount(theirAccount, theirCredentials);
    sim.control.clearRequestLog(theirAccount);
    const before = await gw.prisma.source.count({ where: { tenantId } });
    // Even with that account's own (valid) key: the account, and its request budget, are the other tenant's.
    const created = await gw.call(adminKey, "POST", "/v1/sources", { name: "Theirs", accountId: theirAccount, credentials: theirCredentials });
    expect(created.status).toBe(403);
    expect(created.body).toMatchObject({ errors: [{ path: "accountId" }] });
    expect(created.body.detail).toMatch(/another Transporter account/);
    const mine = await gw.call(adminKey, "POST", "/v1/sources", { name: "Mine", credentials });
    const moved = await gw.call(adminKey, "PATCH", `/v1/sources/${mine.body.id}`, { accountId: theirAccount });
    expect(moved.status).toBe(403);
    expect(sim.control.requestLog(theirAccount)).toEqual([]);
    expect(await gw.prisma.source.count({ where: { tenantId } })).toBe(before + 1);
    expect((await gw.prisma.source.findUniqueOrThrow({ where: { id: mine.body.id } })).accountId).toBe(accountId);
    // The account's own tenant may of course use it.
    expect((await gw.call(theirs.adminKey, "POST", "/v1/sources", { name: "Ours", credentials: theirCredentials })).status).toBe(201);
  });

  it("stops verifying a source whose account was onboarded as another tenant after it was saved", async () => {
    const laterAccount = `88${Date.now() % 100_000}`;
    const laterCredentials = newCredentials();
    sim.control.registerAccount(laterAccount, laterCredentials);
    const saved = await gw.call(adminKey, "POST", "/v1/sources", { name: "Second account", accountId: laterAccount, credentials: laterCredentials });
    expect(saved.status).toBe(201);
    await gw.createTenant({ accountId: laterAccount });
    sim.control.clearRequestLog(laterAccount);
    const verify = await gw.call(adminKey, "POST", `/v1/sources/${saved.body.id}/verify`);
    expect(verify.status).toBe(403);
    expect(sim.control.requestLog(laterAccount)).toEqual([]);
  });

  it("audits a verification, which may change what the source may use", async () => {
    const created = await gw.call(adminKey, "POST", "/v1/sources", { name: "Audited", credentials });
    sim.control.registerAccount(accountId, { ...credentials, permissions: SOURCE_APIS.filter((a) => a !== "engagement-history") });
    await gw.call(adminKey, "POST", `/v1/sources/${created.body.id}/verify`);
    sim.control.registerAccount(accountId, credentials);
    const audit = await gw.call(adminKey, "GET", `/v1/audit-events?targetId=${created.body.id}`);
    const verify = audit.body.items.find((e: { action: string }) => e.action === "source.verify");
    expect(verify?.before.permissions).toContain("engagement-history");
    expect(verify?.after.permissions).not.toContain("engagement-history");
  });

  it("keeps one tenant's sources away from another", async () => {
    const other = await gw.createTenant();
    const mine = await gw.prisma.source.findFirstOrThrow({ where: { tenantId } });
    expect((await gw.call(other.adminKey, "GET", `/v1/sources/${mine.id}`)).status).toBe(404);
    expect((await gw.call(other.adminKey, "GET", "/v1/sources")).body.items).toEqual([]);
  });
});
