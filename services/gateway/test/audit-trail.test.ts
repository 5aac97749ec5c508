/**
 * The audit trail: a change and its event are written in one transaction (both or neither), the
 * events of changes at once follow each other (each "before" is the previous "after"), and a
 * request that changes nothing writes none.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { credentialsOf, destinationGate, fakeDestinations, fakePlatform } from "./fakes.js";
import { failWrites, readyTenant, setupGateway, type TestGateway } from "./helpers.js";

describe("the audit trail", () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await setupGateway({ deps: { destinations: fakeDestinations, sourcePlatform: fakePlatform, now: () => new Date("2026-11-23T12:00:00Z") } });
  }, 120_000);
  afterAll(async () => gw?.close());

  const eventsOf = (targetId: string, action = "") => gw.prisma.auditEvent.findMany({ where: { targetId, action: { startsWith: action } }, orderBy: [{ createdAt: "asc" }, { id: "asc" }] });

  /**
   * Each event is the one whose "before" is the previous one's "after", from the event that
   * created the object: followed by content, not by time (events of transactions at once may
   * carry times in another order than their commits).
   */
  async function expectChained(targetId: string, action: string) {
    const [created, ...changes] = await eventsOf(targetId, action);
    expect(created?.before).toBeNull();
    let after = JSON.stringify(created!.after);
    while (changes.length > 0) {
      const next = changes.findIndex((e) => JSON.stringify(e.before) === after);
      expect(next, `no event follows ${after} among ${JSON.stringify(changes.map((e) => e.before))}`).not.toBe(-1);
      after = JSON.stringify(changes.splice(next, 1)[0]!.after);
    }
  }

  const createDestination = async (adminKey: string) =>
    (await gw.call(adminKey, "POST", "/v1/destinations", { name: "Partner", kind: "sftp", config: { host: "a.example" }, credentials: { password: "pw" } })).body as { id: string };

  it("a change whose event cannot be written is not made; a retry then makes it once", async () => {
    const t = await readyTenant(gw);
    const viewer = (await gw.call(t.adminKey, "POST", "/v1/api-keys", { name: "viewer", role: "viewer" })).body;
    const destination = await createDestination(t.adminKey);
    const source = (await gw.call(t.adminKey, "POST", "/v1/sources", { name: "Second account", kind: "liveperson", credentials: credentialsOf(1) })).body;
    const task = (await gw.call(t.adminKey, "POST", "/v1/tasks", t.body())).body;
    const failed = await gw.prisma.run.create({
      data: { tenantId: t.tenant.id, taskId: task.id, windowStart: new Date("2026-11-20T05:00:00Z"), windowEnd: new Date("2026-11-21T05:00:00Z"), scheduledFor: new Date(), trigger: "manual", status: "FAILED" },
    });
    const where = { tenantId: t.tenant.id };
    const state = async () => ({
      tenant: await gw.prisma.tenant.findUniqueOrThrow({ where: { id: t.tenant.id } }),
      apiKeys: await gw.prisma.apiKey.findMany({ where, orderBy: { id: "asc" } }),
      destinations: await gw.prisma.destination.findMany({ where, orderBy: { id: "asc" } }),
      sources: await gw.prisma.source.findMany({ where, orderBy: { id: "asc" } }),
      runs: await gw.prisma.run.findMany({ where, orderBy: { id: "asc" } }),
      events: await gw.prisma.auditEvent.count({ where }),
    });
    const before = await state();

    const changes: Array<[key: string, method: string, url: string, body?: unknown]> = [
      [t.adminKey, "POST", "/v1/api-keys", { name: "ci", role: "admin" }],
      [t.adminKey, "DELETE", `/v1/api-keys/${viewer.id}`],
      [t.adminKey, "POST", "/v1/destinations", { name: "Another", kind: "sftp", config: { host: "b.example" }, credentials: { password: "pw" } }],
      [t.adminKey, "POST", `/v1/destinations/${destination.id}/verify`],
      [t.adminKey, "DELETE", `/v1/destinations/${destination.id}`],
      [t.adminKey, "POST", "/v1/sources", { name: "Third account", kind: "liveperson", credentials: credentialsOf(2) }],
      [t.adminKey, "POST", `/v1/sources/${source.id}/verify`],
      [t.adminKey, "DELETE", `/v1/sources/${source.id}`],
      [t.adminKey, "POST", `/v1/tasks/${task.id}/runs`, {}],
      [t.adminKey, "POST", `/v1/runs/${failed.id}/retry`],
      [gw.operatorKey, "PATCH", `/v1/tenants/${t.tenant.id}`, { taskLimit: 7 }],
    ];
    const undo = await failWrites(gw, "AuditEvent");
    try {
      for (const [key, method, url, body] of changes) {
        const res = await gw.call(key, method, url, body);
        expect(res.status, `${method} ${url}: ${JSON.stringify(res.body)}`).toBe(500);
        expect(await state(), `${method} ${url}`).toEqual(before);
      }
    } finally {
      await undo();
    }

    // Nothing half-done is left in the way: the retry deletes, audited once.
    expect((await gw.call(t.adminKey, "DELETE", `/v1/destinations/${destination.id}`)).status).toBe(204);
    expect((await eventsOf(destination.id)).map((e) => e.action)).toEqual(["destination.create", "destination.delete"]);
  });

  it("changes at once are audited in order: each event's before is the previous one's after", async () => {
    const t = await readyTenant(gw);
    const limits = await Promise.all([10, 11, 12].map((taskLimit) => gw.call(gw.operatorKey, "PATCH", `/v1/tenants/${t.tenant.id}`, { taskLimit })));
    expect(limits.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(await eventsOf(t.tenant.id, "tenant.")).toHaveLength(4);
    await expectChained(t.tenant.id, "tenant.");

    // A destination renamed while a change of its settings is being verified: the change was
    // made from the old name, so it is refused rather than audited from a "before" that is gone.
    const destination = await createDestination(t.adminKey);
    const held = destinationGate.hold();
    const slow = gw.call(t.adminKey, "PATCH", `/v1/destinations/${destination.id}`, { config: { folder: "out" } });
    await held.started;
    expect((await gw.call(t.adminKey, "PATCH", `/v1/destinations/${destination.id}`, { name: "Renamed" })).status).toBe(200);
    held.release();
    expect((await slow).status).toBe(409);
    expect((await eventsOf(destination.id)).map((e) => e.action)).toEqual(["destination.create", "destination.update"]);
    await expectChained(destination.id, "destination.");
  });

  it("a request that changes nothing answers as usual and writes no event", async () => {
    const t = await readyTenant(gw);
    const viewer = (await gw.call(t.adminKey, "POST", "/v1/api-keys", { name: "viewer", role: "viewer" })).body;
    // Revokes at once of one key: one revokes and is audited; the others find it revoked.
    const revokes = await Promise.all([1, 2, 3].map(() => gw.call(t.adminKey, "DELETE", `/v1/api-keys/${viewer.id}`)));
    expect(revokes.map((r) => [r.status, r.body.revokedAt !== null])).toEqual([[200, true], [200, true], [200, true]]);
    expect((await gw.call(t.adminKey, "DELETE", `/v1/api-keys/${viewer.id}`)).status).toBe(200);
    expect((await eventsOf(viewer.id)).map((e) => e.action)).toEqual(["api_key.create", "api_key.revoke"]);

    // The time zone it has, and the tenant's own values.
    const account = await gw.call(t.adminKey, "PATCH", "/v1/account", { timezone: "America/New_York" });
    expect(account).toMatchObject({ status: 200, body: { timezone: "America/New_York" } });
    const tenant = await gw.call(gw.operatorKey, "PATCH", `/v1/tenants/${t.tenant.id}`, { name: (await gw.call(gw.operatorKey, "GET", `/v1/tenants/${t.tenant.id}`)).body.name, taskLimit: 50, disabled: false });
    expect(tenant).toMatchObject({ status: 200, body: { taskLimit: 50, disabled: false } });
    expect((await eventsOf(t.tenant.id)).map((e) => e.action)).toEqual(["tenant.create"]);

    // Disabling a disabled task and enabling an enabled one, alone and in bulk.
    const off = (await gw.call(t.adminKey, "POST", "/v1/tasks", t.body({ enabled: false, description: "off" }))).body;
    const on = (await gw.call(t.adminKey, "POST", "/v1/tasks", t.body({ enabled: true, description: "on" }))).body;
    expect(await gw.call(t.adminKey, "PATCH", `/v1/tasks/${off.id}`, { enabled: false })).toMatchObject({ status: 200, body: { enabled: false } });
    expect(await gw.call(t.adminKey, "PATCH", `/v1/tasks/${on.id}`, { enabled: true })).toMatchObject({ status: 200, body: { enabled: true } });
    for (const [action, id] of [["disable", off.id], ["enable", on.id]]) {
      expect((await gw.call(t.adminKey, "POST", "/v1/tasks/bulk", { action, ids: [id] })).body.results).toEqual([{ id, ok: true, status: 200 }]);
    }
    expect((await eventsOf(off.id)).map((e) => e.action)).toEqual(["task.create"]);
    expect((await eventsOf(on.id)).map((e) => e.action)).toEqual(["task.create"]);
    // A change that does change something is still audited.
    expect((await gw.call(t.adminKey, "POST", "/v1/tasks/bulk", { action: "disable", ids: [on.id] })).body.results[0].ok).toBe(true);
    expect((await eventsOf(on.id)).map((e) => e.action)).toEqual(["task.create", "task.disable"]);
  });
});
