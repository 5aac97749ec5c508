import { raiseAlert } from "@transporter/db";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { setupGateway, type TestGateway } from "./helpers.js";

/** The secret part of `tp_<prefix>_<secret>`: everything after the prefix (base64url, so it may itself contain "_"). */
function secretOf(key: string): string {
  const secret = key.slice(key.indexOf("_", 3) + 1);
  expect(secret.length).toBeGreaterThanOrEqual(40);
  return secret;
}

describe("gateway foundation: tenants, keys, roles, errors", () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await setupGateway();
  });
  afterAll(async () => gw.close());

  it("serves health, readiness and the OpenAPI document without a key", async () => {
    expect((await gw.app.inject({ url: "/healthz" })).json()).toEqual({ status: "ok" });
    const ready = await gw.app.inject({ url: "/readyz" });
    expect(ready.statusCode).toBe(200);
    expect(ready.json().checks).toEqual({ database: "ok", redis: "ok" });
    const doc = (await gw.app.inject({ url: "/openapi.json" })).json();
    expect(doc.openapi).toBe("3.1.0");
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(["/v1/tenants", "/v1/account", "/v1/api-keys", "/v1/audit-events"]));
    expect((await gw.app.inject({ url: "/docs" })).statusCode).toBeLessThan(400);
  });

  it("an operator creates a tenant and gets its admin key once", async () => {
    const res = await gw.call(gw.operatorKey, "POST", "/v1/tenants", { name: "Acme", accountId: "90412345", timezone: "America/New_York", taskLimit: 3 });
    expect(res.status).toBe(201);
    expect(res.body.tenant).toMatchObject({ name: "Acme", accountId: "90412345", timezone: "America/New_York", taskLimit: 3, disabled: false });
    const adminKey: string = res.body.adminApiKey.key;
    expect(adminKey).toMatch(/^tp_[A-Za-z0-9]+_[A-Za-z0-9_-]+$/);
    const secret = secretOf(adminKey);
    expect(secret.length).toBeGreaterThanOrEqual(40);
    const account = await gw.call(adminKey, "GET", "/v1/account");
    expect(account.body).toMatchObject({ accountId: "90412345", timezone: "America/New_York", taskLimit: 3, taskCount: 0 });
    const keys = await gw.call(adminKey, "GET", "/v1/api-keys");
    expect(keys.status).toBe(200);
    expect(JSON.stringify(keys.body)).not.toContain(secret);
    expect(keys.body.items[0]).not.toHaveProperty("key");
    const row = await gw.prisma.apiKey.findFirstOrThrow({ where: { id: res.body.adminApiKey.id } });
    expect(row.secretHash).not.toContain(secret);
    const duplicate = await gw.call(gw.operatorKey, "POST", "/v1/tenants", { name: "Acme again", accountId: "90412345" });
    expect(duplicate.status).toBe(409);
    const audit = await gw.call(adminKey, "GET", "/v1/audit-events");
    expect(audit.body.items.map((e: { action: string }) => e.action)).toContain("tenant.create");
  });

  it("new tenants get setup reminders, and choosing a time zone resolves its reminder", async () => {
    const res = await gw.call(gw.operatorKey, "POST", "/v1/tenants", { name: "No zone", accountId: "777001" });
    const tenantId = res.body.tenant.id;
    const open = await gw.prisma.alert.findMany({ where: { tenantId, resolvedAt: null } });
    expect(open.map((a) => a.dedupeKey).sort()).toEqual(["setup.encryption", "setup.source", "setup.timezone"]);
    const patched = await gw.call(res.body.adminApiKey.key, "PATCH", "/v1/account", { timezone: "Asia/Kathmandu" });
    expect(patched.status).toBe(200);
    expect(patched.body.timezone).toBe("Asia/Kathmandu");
    const stillOpen = await gw.prisma.alert.findMany({ where: { tenantId, resolvedAt: null } });
    expect(stillOpen.map((a) => a.dedupeKey).sort()).toEqual(["setup.encryption", "setup.source"]);
    const bad = await gw.call(res.body.adminApiKey.key, "PATCH", "/v1/account", { timezone: "Mars/Olympus_Mons" });
    expect(bad.status).toBe(400);
    expect(bad.body.errors[0].path).toBe("body.timezone");
  });

  it("roles: tenant keys cannot manage tenants, operator keys cannot act as a tenant, viewers only read", async () => {
    const { adminKey } = await gw.createTenant();
    expect((await gw.call(adminKey, "GET", "/v1/tenants")).status).toBe(403);
    expect((await gw.call(gw.operatorKey, "GET", "/v1/account")).status).toBe(403);
    const viewer = await gw.call(adminKey, "POST", "/v1/api-keys", { name: "dashboard", role: "viewer" });
    expect(viewer.status).toBe(201);
    const viewerKey = viewer.body.key;
    expect((await gw.call(viewerKey, "GET", "/v1/account")).status).toBe(200);
    expect((await gw.call(viewerKey, "GET", "/v1/api-keys")).status).toBe(200);
    for (const [method, url, body] of [
      ["POST", "/v1/api-keys", { name: "x", role: "admin" }],
      ["PATCH", "/v1/account", { timezone: "UTC" }],
      ["DELETE", `/v1/api-keys/${viewer.body.id}`, undefined],
    ] as const) {
      const res = await gw.call(viewerKey, method, url, body);
      expect(res.status, `${method} ${url}`).toBe(403);
      expect(res.headers["content-type"]).toContain("application/problem+json");
    }
    // And an admin cannot mint an operator key.
    expect((await gw.call(adminKey, "POST", "/v1/api-keys", { name: "x", role: "operator" })).status).toBe(400);
  });

  it("refuses missing, malformed, unknown and revoked keys with 401", async () => {
    const { adminKey } = await gw.createTenant();
    expect((await gw.app.inject({ url: "/v1/account" })).statusCode).toBe(401);
    expect((await gw.call("not-a-key", "GET", "/v1/account")).status).toBe(401);
    const [prefix, secret] = [adminKey.split("_")[1], secretOf(adminKey)];
    expect((await gw.call(`tp_${prefix}_${secret.slice(0, -4)}AAAA`, "GET", "/v1/account")).status).toBe(401);
    const second = await gw.call(adminKey, "POST", "/v1/api-keys", { name: "temp", role: "admin" });
    expect((await gw.call(second.body.key, "GET", "/v1/account")).status).toBe(200);
    const revoked = await gw.call(adminKey, "DELETE", `/v1/api-keys/${second.body.id}`);
    expect(revoked.body.revokedAt).not.toBeNull();
    const refused = await gw.call(second.body.key, "GET", "/v1/account");
    expect(refused.status).toBe(401);
    expect(refused.body).toMatchObject({ status: 401, title: "Unauthorized" });
  });

  it("access rules follow the route the router matched, so percent-escaped paths get no further", async () => {
    const { adminKey } = await gw.createTenant();
    const other = await gw.createTenant();
    // The router decodes escapes before it matches: these paths do reach the tenants and reports routes.
    expect((await gw.call(gw.operatorKey, "GET", "/%761/tenants")).status).toBe(200);
    expect((await gw.call(adminKey, "GET", "/v1/r%65ports")).status).toBe(200);
    for (const [method, url] of [["GET", "/%761/tenants"], ["POST", "/%761/tenants"], ["GET", "/v1/%74enants"], ["GET", "/%761/reports"], ["GET", "/%76%31/tasks"]] as const) {
      const anonymous = await gw.app.inject({ method, url, payload: method === "POST" ? { name: "Evil", accountId: "evil1" } : undefined });
      expect(anonymous.statusCode, `${method} ${url} without a key`).toBe(401);
    }
    const escaped = await gw.call(adminKey, "PATCH", `/v1/%74enants/${other.tenant.id}`, { disabled: true });
    expect(escaped.status).toBe(403);
    expect((await gw.call(adminKey, "GET", `/%761/tenants/${other.tenant.id}`)).status).toBe(403);
    expect((await gw.call(other.adminKey, "GET", "/v1/account")).status).toBe(200);
    expect((await gw.call(gw.operatorKey, "GET", "/%761/account")).status).toBe(403);
  });

  it("never revokes an account's last admin key, so the account cannot lock itself out", async () => {
    const { tenant, adminKey } = await gw.createTenant();
    const own = await gw.prisma.apiKey.findFirstOrThrow({ where: { tenantId: tenant.id, role: "admin" } });
    const refused = await gw.call(adminKey, "DELETE", `/v1/api-keys/${own.id}`);
    expect(refused.status).toBe(409);
    expect(refused.body.detail).toMatch(/last admin key/);
    // A viewer key does not count; a second admin key does.
    await gw.call(adminKey, "POST", "/v1/api-keys", { name: "dashboard", role: "viewer" });
    expect((await gw.call(adminKey, "DELETE", `/v1/api-keys/${own.id}`)).status).toBe(409);
    const second = await gw.call(adminKey, "POST", "/v1/api-keys", { name: "second admin", role: "admin" });
    // Two admins revoking each other at once: one of them stays.
    const both = await Promise.all([gw.call(adminKey, "DELETE", `/v1/api-keys/${second.body.id}`), gw.call(second.body.key, "DELETE", `/v1/api-keys/${own.id}`)]);
    expect(both.map((r) => r.status).sort()).toEqual([200, 409]);
    expect(await gw.prisma.apiKey.count({ where: { tenantId: tenant.id, role: "admin", revokedAt: null } })).toBe(1);
  });

  it("refuses control characters in names and dates PostgreSQL cannot hold, with 400 not 500", async () => {
    const { adminKey } = await gw.createTenant();
    for (const name of ["\u0000", "a\u0000b", "line\nbreak"]) {
      const res = await gw.call(adminKey, "POST", "/v1/api-keys", { name, role: "viewer" });
      expect(res.status, JSON.stringify(name)).toBe(400);
      expect(res.body.errors[0].path).toBe("body.name");
    }
    for (const query of ["from=0000-01-01T00:00:00Z", "to=0000-01-01T00:00:00Z", "from=2026-03-01T00:00:00Z&to=2026-01-01T00:00:00Z"]) {
      expect((await gw.call(adminKey, "GET", `/v1/runs?${query}`)).status, query).toBe(400);
    }
    const cursor = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
    for (const at of ["0000-01-01T00:00:00Z", "-100000-01-01T00:00:00Z", "+275760-09-13T00:00:00.000Z"]) {
      const res = await gw.call(adminKey, "GET", `/v1/api-keys?cursor=${cursor([at, "4f1c2a3e-0000-4000-8000-000000000000"])}`);
      expect(res.status, at).toBe(400);
    }
  });

  it("a disabled tenant's keys are refused", async () => {
    const { tenant, adminKey } = await gw.createTenant();
    expect((await gw.call(gw.operatorKey, "PATCH", `/v1/tenants/${tenant.id}`, { disabled: true })).status).toBe(200);
    expect((await gw.call(adminKey, "GET", "/v1/account")).status).toBe(403);
    await gw.call(gw.operatorKey, "PATCH", `/v1/tenants/${tenant.id}`, { disabled: false });
    expect((await gw.call(adminKey, "GET", "/v1/account")).status).toBe(200);
  });

  it("malformed bodies get 400 problem+json naming the field", async () => {
    const cases: Array<[unknown, string]> = [
      [{ name: "", accountId: "1" }, "body.name"],
      [{ name: "x", accountId: "has spaces" }, "body.accountId"],
      [{ name: "x", accountId: "123", timezone: "Nowhere/City" }, "body.timezone"],
      [{ name: "x", accountId: "123", taskLimit: -1 }, "body.taskLimit"],
      [{ accountId: "123" }, "body.name"],
    ];
    for (const [body, path] of cases) {
      const res = await gw.call(gw.operatorKey, "POST", "/v1/tenants", body);
      expect(res.status).toBe(400);
      expect(res.headers["content-type"]).toContain("application/problem+json");
      expect(res.body).toMatchObject({ title: "Invalid request", status: 400 });
      expect(res.body.errors.map((e: { path: string }) => e.path)).toContain(path);
    }
    const notJson = await gw.call(gw.operatorKey, "POST", "/v1/tenants", "{not json");
    expect(notJson.status).toBe(400);
    const badId = await gw.call(gw.operatorKey, "GET", "/v1/tenants/not-a-uuid");
    expect(badId.status).toBe(400);
    expect(badId.body.errors[0].path).toBe("params.id");
    const unknown = await gw.call(gw.operatorKey, "GET", "/v1/tenants/4f1c2a3e-0000-4000-8000-000000000000");
    expect(unknown.status).toBe(404);
  });

  it("pages lists with a cursor, newest first", async () => {
    const { adminKey } = await gw.createTenant();
    for (let i = 0; i < 5; i += 1) await gw.call(adminKey, "POST", "/v1/api-keys", { name: `k${i}`, role: "viewer" });
    const first = await gw.call(adminKey, "GET", "/v1/api-keys?limit=4");
    expect(first.body.items).toHaveLength(4);
    expect(first.body.nextCursor).toEqual(expect.any(String));
    const second = await gw.call(adminKey, "GET", `/v1/api-keys?limit=4&cursor=${first.body.nextCursor}`);
    expect(second.body.items).toHaveLength(2);
    expect(second.body.nextCursor).toBeNull();
    const names = [...first.body.items, ...second.body.items].map((k: { name: string }) => k.name);
    expect(names.slice(0, 5)).toEqual(["k4", "k3", "k2", "k1", "k0"]);
    expect((await gw.call(adminKey, "GET", "/v1/api-keys?limit=501")).status).toBe(400);
  });

  it("answers 400 to any cursor it did not hand out, on every list", async () => {
    const { adminKey } = await gw.createTenant();
    const cursor = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
    const forged = [
      "garbage",
      cursor(["2026-01-01T00:00:00Z", "nope"]),
      cursor(["not a date", "4f1c2a3e-0000-4000-8000-000000000000"]),
      cursor([1, 2]),
      cursor({ createdAt: "2026-01-01T00:00:00Z" }),
      cursor(null),
    ];
    for (const list of ["/v1/api-keys", "/v1/tasks", "/v1/runs", "/v1/alerts", "/v1/audit-events", "/v1/sources", "/v1/destinations", "/v1/encryption-keys"]) {
      for (const bad of forged) {
        const res = await gw.call(adminKey, "GET", `${list}?cursor=${bad}`);
        expect(res.status, `${list} ${Buffer.from(bad, "base64url").toString()}`).toBe(400);
        expect(res.body.errors).toEqual([{ path: "cursor", message: "invalid cursor" }]);
      }
    }
    expect((await gw.call(gw.operatorKey, "GET", `/v1/tenants?cursor=${forged[1]}`)).status).toBe(400);
  });

  it("refuses a query parameter a list does not take with 400 naming it, and takes every one the API documents", async () => {
    const { adminKey } = await gw.createTenant();
    const id = "4f1c2a3e-0000-4000-8000-000000000000";
    // Misspelt filters: ignored, each would answer with the whole list.
    const unknown = [
      `/v1/runs?taskid=${id}`, "/v1/tasks?Enabled=false", "/v1/alerts?status=open", "/v1/audit-events?target=x", "/v1/api-keys?role=admin",
      "/v1/sources?name=x", "/v1/destinations?type=s3", "/v1/encryption-keys?active=true", "/v1/reports?categories=admin", "/v1/reports/messaging-conversations?v=1",
    ];
    for (const url of unknown) {
      const res = await gw.call(adminKey, "GET", url);
      const param = url.split("?")[1]!.split("=")[0]!;
      expect(res.status, url).toBe(400);
      expect(res.headers["content-type"]).toContain("application/problem+json");
      expect(JSON.stringify(res.body.errors), url).toContain(param);
    }
    expect((await gw.call(gw.operatorKey, "GET", "/v1/tenants?accountId=1")).status).toBe(400);

    // What API.md documents and this repository's clients send.
    const documented = [
      `/v1/runs?taskId=${id}&status=FAILED&from=2026-11-01T00:00:00Z&to=2026-11-10T00:00:00Z&limit=500`, `/v1/tasks?enabled=true&reportId=messaging-conversations&destinationId=${id}&limit=2`,
      "/v1/alerts?state=open&kind=run.failed&limit=1", `/v1/audit-events?action=task.create&targetType=task&targetId=${id}`, "/v1/api-keys?limit=4",
      "/v1/sources?limit=1", "/v1/destinations?kind=s3&limit=500", "/v1/encryption-keys?limit=2", "/v1/reports?category=admin&kind=wfm-raw&limit=50",
      "/v1/reports/messaging-conversations?version=1",
    ];
    for (const url of documented) expect((await gw.call(adminKey, "GET", url)).status, url).toBe(200);
    expect((await gw.call(gw.operatorKey, "GET", "/v1/tenants?limit=1")).status).toBe(200);
  });

  it("pages alerts newest first by when they were first seen: an alert that repeats while a client pages is not skipped", async () => {
    const { tenant, adminKey } = await gw.createTenant();
    for (const key of ["one", "two", "three"]) {
      await raiseAlert(gw.prisma, { tenantId: tenant.id, kind: "run.failed", severity: "error", title: key, message: key, dedupeKey: `paging:${key}` });
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const everything = (await gw.call(adminKey, "GET", "/v1/alerts?limit=50")).body.items.map((a: { id: string }) => a.id);
    let page = await gw.call(adminKey, "GET", "/v1/alerts?limit=1");
    const seen: string[] = page.body.items.map((a: { id: string }) => a.id);
    // The oldest one, not read yet, happens again meanwhile.
    await raiseAlert(gw.prisma, { tenantId: tenant.id, kind: "run.failed", severity: "error", title: "one", message: "one again", dedupeKey: "paging:one" });
    while (page.body.nextCursor) {
      page = await gw.call(adminKey, "GET", `/v1/alerts?limit=1&cursor=${page.body.nextCursor}`);
      seen.push(...page.body.items.map((a: { id: string }) => a.id));
    }
    expect(seen).toEqual(everything);
  });

  it("pages alerts with the same cursors", async () => {
    const { adminKey } = await gw.createTenant();
    // A new tenant has setup reminders (no source, no encryption key).
    const first = await gw.call(adminKey, "GET", "/v1/alerts?limit=1");
    expect(first.body.items).toHaveLength(1);
    const second = await gw.call(adminKey, "GET", `/v1/alerts?limit=1&cursor=${first.body.nextCursor}`);
    expect(second.status).toBe(200);
    expect(second.body.items).toHaveLength(1);
    const ids = [...first.body.items, ...second.body.items].map((a: { id: string }) => a.id);
    expect(new Set(ids).size).toBe(ids.length);
    const all = await gw.call(adminKey, "GET", "/v1/alerts?limit=50");
    expect(ids).toEqual(all.body.items.map((a: { id: string }) => a.id));
  });

  it("never writes an API key into the logs", async () => {
    const { adminKey } = await gw.createTenant();
    await gw.call(adminKey, "GET", "/v1/account");
    await gw.call(adminKey, "POST", "/v1/api-keys", { name: "x", role: "viewer" });
    const secret = secretOf(adminKey);
    expect(gw.logs.length).toBeGreaterThan(0);
    expect(gw.logs.join("\n")).not.toContain(secret);
  });
});

describe("rate limiting per key", () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await setupGateway({ config: { API_RATE_LIMIT_PER_MINUTE: "5" } });
  });
  afterAll(async () => gw.close());

  it("answers 429 problem+json past the per-key budget, without affecting other keys", async () => {
    const a = await gw.createTenant();
    const b = await gw.createTenant();
    const statuses: number[] = [];
    for (let i = 0; i < 7; i += 1) statuses.push((await gw.call(a.adminKey, "GET", "/v1/account")).status);
    expect(statuses.slice(0, 5).every((s) => s === 200)).toBe(true);
    const limited = await gw.call(a.adminKey, "GET", "/v1/account");
    expect(limited.status).toBe(429);
    expect(limited.body.title).toBe("Too many requests");
    expect((await gw.call(b.adminKey, "GET", "/v1/account")).status).toBe(200);
  });
});

describe("rate limiting counts the key that authenticated", () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await setupGateway({ config: { API_RATE_LIMIT_PER_MINUTE: "5" } });
  });
  afterAll(async () => gw.close());

  const basic = (key: string) => `Basic ${Buffer.from(`x:${key}`).toString("base64")}`;

  it("neither charges another key named in the header nor escapes the limit through Basic auth and X-Forwarded-For", async () => {
    const attacker = await gw.createTenant();
    const victim = await gw.createTenant();
    const victimPrefix = /^tp_([A-Za-z0-9]+)_/.exec(victim.adminKey)![1];
    const statuses: number[] = [];
    for (let i = 0; i < 8; i += 1) {
      const res = await gw.app.inject({
        url: "/v1/account",
        // The caller's own key in Basic auth, another key's prefix after it, a new address each time.
        headers: { authorization: `${basic(attacker.adminKey)} tp_${victimPrefix}_`, "x-forwarded-for": `203.0.113.${i + 1}` },
      });
      statuses.push(res.statusCode);
    }
    expect(statuses.slice(0, 5)).toEqual([200, 200, 200, 200, 200]);
    expect(statuses.slice(5)).toEqual([429, 429, 429]);
    expect((await gw.call(victim.adminKey, "GET", "/v1/account")).status).toBe(200);
  });
});

describe("operators' queue dashboard", () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await setupGateway();
  });
  afterAll(async () => gw.close());

  it("serves bull-board under /admin/queues to operator keys only (Bearer or Basic)", async () => {
    const anonymous = await gw.app.inject({ url: "/admin/queues" });
    expect(anonymous.statusCode).toBe(401);
    expect(anonymous.headers["www-authenticate"]).toContain("Basic");
    const { adminKey } = await gw.createTenant();
    expect((await gw.call(adminKey, "GET", "/admin/queues")).status).toBe(403);
    const page = await gw.app.inject({ url: "/admin/queues", headers: { authorization: `Basic ${Buffer.from(`operator:${gw.operatorKey}`).toString("base64")}` } });
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain("Transporter queues");
    const api = await gw.call(gw.operatorKey, "GET", "/admin/queues/api/queues");
    expect(api.status).toBe(200);
    expect(api.body.queues.map((q: { name: string }) => q.name).sort()).toEqual(["deliver", "encrypt", "fetch", "notify", "transform"]);
  });

  it("keeps anonymous and tenant callers out under percent-escaped paths too", async () => {
    const { adminKey } = await gw.createTenant();
    for (const [method, url] of [["GET", "/%61dmin/queues"], ["GET", "/%61dmin/queues/api/queues"], ["PUT", "/%61dmin/queues/api/queues/pause"], ["PUT", "/admin/%71ueues/api/queues/pause"]] as const) {
      expect((await gw.app.inject({ method, url })).statusCode, `${method} ${url} without a key`).toBe(401);
      expect((await gw.call(adminKey, method, url)).status, `${method} ${url} with a tenant key`).toBe(403);
    }
    // Nothing was paused on the way.
    const api = await gw.call(gw.operatorKey, "GET", "/%61dmin/queues/api/queues");
    expect(api.status).toBe(200);
    expect(api.body.queues.every((q: { isPaused: boolean }) => !q.isPaused)).toBe(true);
  });
});
