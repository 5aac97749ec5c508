import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { setupGateway, type TestGateway } from "./helpers.js";

/**
 * One tenant's key gets 404 for every other tenant's object, on every route that takes an id.
 * Routes are read from the OpenAPI document, so a new route is covered the day it is added:
 * if it needs a body to get past validation, add one to BODIES (the test fails until then).
 */
const BODIES: Record<string, unknown> = {
  "PATCH /v1/sources/{id}": { name: "renamed" },
  "PATCH /v1/destinations/{id}": { name: "renamed" },
  "PATCH /v1/tasks/{id}": { description: "renamed" },
  "POST /v1/tasks/{id}/runs": {},
  "POST /v1/runs/{id}/file/decrypt": { privateKey: "-----BEGIN PGP PRIVATE KEY BLOCK-----", passphrase: "irrelevant-passphrase" },
  "PATCH /v1/encryption-keys/{id}": { name: "renamed" },
};

describe("tenant isolation", () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await setupGateway();
  });
  afterAll(async () => gw.close());

  it("a tenant's key gets 404 for another tenant's objects on every route with an id", async () => {
    const a = await gw.createTenant();
    const b = await gw.createTenant();
    const p = gw.prisma;
    const source = await p.source.create({ data: { tenantId: a.tenant.id, name: "A source", kind: "liveperson", accountId: a.tenant.accountId, sealedCredentials: "v1.x.y.z" } });
    const destination = await p.destination.create({ data: { tenantId: a.tenant.id, name: "A dest", kind: "managed", config: {} } });
    const key = await p.encryptionKey.create({ data: { tenantId: a.tenant.id, publicKey: "k", fingerprint: "AFP", algorithm: "rsa", bits: 2048, origin: "generated", active: true } });
    const task = await p.task.create({ data: { tenantId: a.tenant.id, description: "A task", reportId: "messaging-conversations", format: "csv", frequency: "daily", time: "00:00", sourceId: source.id, destinationId: destination.id } });
    const run = await p.run.create({ data: { tenantId: a.tenant.id, taskId: task.id, windowStart: new Date("2026-11-01T00:00:00Z"), windowEnd: new Date("2026-11-02T00:00:00Z"), scheduledFor: new Date(), trigger: "manual", status: "FAILED", destinationPath: "x", fileExpiresAt: new Date("2099-01-01") } });
    const alert = await p.alert.findFirstOrThrow({ where: { tenantId: a.tenant.id } });
    const apiKey = await p.apiKey.findFirstOrThrow({ where: { tenantId: a.tenant.id } });
    const ids: Record<string, string> = {
      "api-keys": apiKey.id, "encryption-keys": key.id, sources: source.id, destinations: destination.id,
      tasks: task.id, runs: run.id, alerts: alert.id,
    };
    const before = JSON.stringify(await p.tenant.findUniqueOrThrow({ where: { id: a.tenant.id }, include: { sources: true, destinations: true, tasks: true, runs: true, apiKeys: { select: { id: true, revokedAt: true } }, encryptionKeys: true, alerts: { select: { id: true, acknowledgedAt: true } } } }));

    const doc = (await gw.app.inject({ url: "/openapi.json" })).json() as { paths: Record<string, Record<string, unknown>> };
    const checked: string[] = [];
    for (const [path, operations] of Object.entries(doc.paths)) {
      // Tenants are operator objects; the report catalogue is the same for everyone.
      if (!path.includes("{id}") || path.startsWith("/v1/tenants") || path.startsWith("/v1/reports")) continue;
      const collection = path.split("/")[2]!;
      const id = ids[collection];
      expect(id, `no fixture object for ${path}: add one to this test`).toBeDefined();
      for (const method of Object.keys(operations).map((m) => m.toUpperCase())) {
        const route = `${method} ${path}`;
        const body = BODIES[route] ?? (method === "GET" || method === "DELETE" ? undefined : {});
        const res = await gw.call(b.adminKey, method, path.replace("{id}", id!), body);
        expect(res.status, `${route} → ${res.status} ${JSON.stringify(res.body)}`).toBe(404);
        checked.push(route);
      }
    }
    expect(checked.length).toBeGreaterThanOrEqual(8);
    const after = JSON.stringify(await p.tenant.findUniqueOrThrow({ where: { id: a.tenant.id }, include: { sources: true, destinations: true, tasks: true, runs: true, apiKeys: { select: { id: true, revokedAt: true } }, encryptionKeys: true, alerts: { select: { id: true, acknowledgedAt: true } } } }));
    expect(after).toBe(before);
    // And lists never show another tenant's rows.
    for (const list of ["/v1/tasks", "/v1/runs", "/v1/alerts", "/v1/api-keys", "/v1/audit-events"]) {
      const res = await gw.call(b.adminKey, "GET", list);
      expect(res.status, list).toBe(200);
      expect(JSON.stringify(res.body), list).not.toContain(a.tenant.id);
      for (const id of Object.values(ids)) expect(JSON.stringify(res.body), list).not.toContain(id);
    }
  });
});
