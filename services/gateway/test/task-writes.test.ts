/**
 * Task writes as a client sees them: a misspelt field is refused rather than dropped, a task read
 * back can be sent again, and changes at once each do what they say once, audited in order.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { failWrites, readyTenant, setupGateway, type TestGateway } from "./helpers.js";

describe("task writes", () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await setupGateway({ deps: { now: () => new Date("2026-11-23T12:00:00Z") } });
  });
  afterAll(async () => gw.close());

  const unknownField = (res: { status: number; body: unknown }, field: string) => {
    expect(res.status, JSON.stringify(res.body)).toBe(400);
    expect(JSON.stringify(res.body)).toContain(field);
  };

  it("refuses a field the API does not know, instead of doing something else than asked", async () => {
    const t = await readyTenant(gw);
    const task = (await gw.call(t.adminKey, "POST", "/v1/tasks", t.body({ enabled: true }))).body;
    // Run now with misspelt window fields: would have run the latest window.
    unknownField(await gw.call(t.adminKey, "POST", `/v1/tasks/${task.id}/runs`, { windowstart: "2026-11-20T00:00:00Z", windowend: "2026-11-21T00:00:00Z" }), "windowstart");
    expect(await gw.prisma.run.count({ where: { taskId: task.id } })).toBe(0);
    // "enable" for "enabled": the task would have stayed enabled.
    unknownField(await gw.call(t.adminKey, "PATCH", `/v1/tasks/${task.id}`, { description: "Renamed", enable: false }), "enable");
    unknownField(await gw.call(t.adminKey, "PATCH", `/v1/tasks/${task.id}`, { schedule: { frequency: "daily", time: "01:00", timezone: "UTC" } }), "timezone");
    unknownField(await gw.call(t.adminKey, "POST", "/v1/tasks", { ...t.body(), descripton: "typo" }), "descripton");
    expect((await gw.call(t.adminKey, "GET", `/v1/tasks/${task.id}`)).body).toMatchObject({ description: "Daily messaging", enabled: true });
    // The account's task limit is the operator's to set.
    unknownField(await gw.call(t.adminKey, "PATCH", "/v1/account", { timezone: "UTC", taskLimit: 999 }), "taskLimit");
    unknownField(await gw.call(t.adminKey, "POST", "/v1/api-keys", { name: "ci", role: "viewer", expires: "never" }), "expires");
    unknownField(await gw.call(gw.operatorKey, "PATCH", `/v1/tenants/${t.tenant.id}`, { taskLimit: 3, suspended: true }), "suspended");
    unknownField(await gw.call(t.adminKey, "POST", "/v1/tasks/bulk", { action: "disable", ids: [task.id], dryRun: true }), "dryRun");
    expect((await gw.call(t.adminKey, "GET", "/v1/account")).body).toMatchObject({ taskLimit: 50 });
  });

  it("takes a task read back as it is, ignoring the fields the server sets", async () => {
    const t = await readyTenant(gw);
    const created = (await gw.call(t.adminKey, "POST", "/v1/tasks", t.body({ notifications: { webhookUrl: "https://hooks.example.com/runs", webhookSecret: "0123456789abcdef", on: "failure" } }))).body;
    const sentBack = await gw.call(t.adminKey, "PATCH", `/v1/tasks/${created.id}`, { ...created, description: "Sent back", id: "not-this-one", createdAt: "1999-01-01T00:00:00Z" });
    expect(sentBack.status, JSON.stringify(sentBack.body)).toBe(200);
    expect(sentBack.body).toMatchObject({ id: created.id, description: "Sent back", createdAt: created.createdAt, notifications: { webhookUrl: "https://hooks.example.com/runs", on: "failure", webhookSecretSet: true } });
    const stored = await gw.prisma.task.findUniqueOrThrow({ where: { id: created.id } });
    expect(stored.notifications).not.toHaveProperty("webhookSecretSet");
    const copy = await gw.call(t.adminKey, "POST", "/v1/tasks", { ...created, description: "A copy", options: { fileNamePattern: "copy_{startDate}" } });
    expect(copy.status, JSON.stringify(copy.body)).toBe(201);
    expect(copy.body.id).not.toBe(created.id);
  });

  it("deletes at once: one succeeds and is audited, the others are 404", async () => {
    const t = await readyTenant(gw);
    const task = (await gw.call(t.adminKey, "POST", "/v1/tasks", t.body())).body;
    const statuses = await Promise.all([1, 2, 3].map(() => gw.call(t.adminKey, "DELETE", `/v1/tasks/${task.id}`).then((r) => r.status)));
    expect(statuses.sort()).toEqual([204, 404, 404]);
    expect(await gw.prisma.auditEvent.count({ where: { targetId: task.id, action: "task.delete" } })).toBe(1);
    // Nor does a disable that comes after the delete bring a 200.
    expect((await gw.call(t.adminKey, "PATCH", `/v1/tasks/${task.id}`, { enabled: false })).status).toBe(404);
  });

  it("changes at once are audited in order: each event's before is the previous one's after", async () => {
    const t = await readyTenant(gw);
    const task = (await gw.call(t.adminKey, "POST", "/v1/tasks", t.body({ description: "v0" }))).body;
    const answers = await Promise.all(["v1", "v2", "v3"].map((description) => gw.call(t.adminKey, "PATCH", `/v1/tasks/${task.id}`, { description })));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200]);
    const events = await gw.prisma.auditEvent.findMany({ where: { targetId: task.id, action: "task.update" } });
    const steps = new Map(events.map((e) => [(e.before as { description: string }).description, (e.after as { description: string }).description]));
    const chain = ["v0"];
    while (steps.has(chain.at(-1)!)) chain.push(steps.get(chain.at(-1)!)!);
    expect(chain).toHaveLength(4);
    expect(new Set(chain)).toEqual(new Set(["v0", "v1", "v2", "v3"]));
  });

  it("a change whose audit event cannot be written is not made (no task created twice by a retry)", async () => {
    const t = await readyTenant(gw);
    const task = (await gw.call(t.adminKey, "POST", "/v1/tasks", t.body({ description: "kept" }))).body;
    const undo = await failWrites(gw, "AuditEvent");
    try {
      expect((await gw.call(t.adminKey, "POST", "/v1/tasks", t.body({ description: "not kept" }))).status).toBe(500);
      expect((await gw.call(t.adminKey, "PATCH", `/v1/tasks/${task.id}`, { description: "renamed" })).status).toBe(500);
      expect((await gw.call(t.adminKey, "DELETE", `/v1/tasks/${task.id}`)).status).toBe(500);
      // A bulk action answers per id: this one failed on our side.
      const bulk = await gw.call(t.adminKey, "POST", "/v1/tasks/bulk", { action: "disable", ids: [task.id] });
      expect(bulk.body.results).toEqual([{ id: task.id, ok: false, status: 500, error: expect.stringMatching(/our side/) }]);
    } finally {
      await undo();
    }
    const tasks = await gw.prisma.task.findMany({ where: { tenantId: t.tenant.id } });
    expect(tasks.map((x) => ({ description: x.description, deleted: x.deletedAt !== null, enabled: x.enabled }))).toEqual([{ description: "kept", deleted: false, enabled: true }]);
  });

  it("a bulk action failing on one id for a reason of ours answers 500 for that id and still does the others", async () => {
    const t = await readyTenant(gw);
    const create = async (description: string) => (await gw.call(t.adminKey, "POST", "/v1/tasks", t.body({ description }))).body.id as string;
    const [a, b, c] = [await create("a"), await create("b"), await create("c")];
    // The second task's write fails, as a database blip would; the first is done by then.
    const undo = await failWrites(gw, "Task", `NEW.id = '${b}'`);
    let res;
    try {
      res = await gw.call(t.adminKey, "POST", "/v1/tasks/bulk", { action: "disable", ids: [a, b, c] });
    } finally {
      await undo();
    }
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.results).toEqual([
      { id: a, ok: true, status: 200 },
      { id: b, ok: false, status: 500, error: expect.stringMatching(/our side/) },
      { id: c, ok: true, status: 200 },
    ]);
    const enabled = await gw.prisma.task.findMany({ where: { id: { in: [a, b, c] } }, select: { id: true, enabled: true } });
    expect(Object.fromEntries(enabled.map((x) => [x.id, x.enabled]))).toEqual({ [a]: false, [b]: true, [c]: false });
    expect(gw.logs.some((line) => line.includes("bulk task action failed") && line.includes(b))).toBe(true);
  });

  it("bulk actions are audited under the task's id as stored, however the caller spelled it", async () => {
    const t = await readyTenant(gw);
    const task = (await gw.call(t.adminKey, "POST", "/v1/tasks", t.body({ enabled: true }))).body;
    const res = await gw.call(t.adminKey, "POST", "/v1/tasks/bulk", { action: "disable", ids: [task.id.toUpperCase()] });
    expect(res.body.results).toEqual([{ id: task.id.toUpperCase(), ok: true, status: 200 }]);
    const audit = await gw.call(t.adminKey, "GET", `/v1/audit-events?targetId=${task.id}`);
    expect(audit.body.items.map((e: { action: string }) => e.action)).toContain("task.disable");
  });
});
