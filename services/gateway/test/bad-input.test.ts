import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { validateSchedule, type Schedule } from "@transporter/schedule";
import { setupGateway, type TestGateway } from "./helpers.js";

/** A tenant ready for tasks: zone, a source, a managed destination and an active key (as rows). */
async function readyTenant(gw: TestGateway) {
  const { tenant, adminKey } = await gw.createTenant({ timezone: "America/New_York" });
  const source = await gw.prisma.source.create({ data: { tenantId: tenant.id, name: "LP", kind: "liveperson", accountId: tenant.accountId, sealedCredentials: "v1.x.y.z", permissions: ["messaging-interactions", "engagement-history"], verifiedAt: new Date() } });
  const destination = await gw.prisma.destination.create({ data: { tenantId: tenant.id, name: "Managed", kind: "managed", config: {}, verifiedAt: new Date() } });
  await gw.prisma.encryptionKey.create({ data: { tenantId: tenant.id, publicKey: "k", fingerprint: `FP${tenant.id}`, algorithm: "rsa", bits: 2048, origin: "generated", active: true } });
  const body = (overrides: Record<string, unknown> = {}) => ({
    description: "Daily messaging", reportId: "messaging-conversations", reportVersion: "latest", format: "csv",
    schedule: { frequency: "daily", time: "00:00", delayMinutes: 360 }, sourceId: source.id, destinationId: destination.id,
    params: {}, enabled: false, ...overrides,
  });
  return { tenant, adminKey, body, source, destination };
}

type Reply = Awaited<ReturnType<TestGateway["call"]>>;

/** A 400 in the API's problem+json format naming `path` (and, when given, saying `message` there). */
function expectInvalid(res: Reply, path: string, message?: string | RegExp) {
  const what = JSON.stringify(res.body);
  expect(res.status, what).toBe(400);
  expect(res.headers["content-type"]).toContain("application/problem+json");
  expect(res.body).toMatchObject({ type: "https://transporter.dev/problems/invalid-request", title: "Invalid request", status: 400 });
  const at = (res.body.errors as Array<{ path: string; message: string }>).filter((e) => e.path === path);
  expect(at, what).not.toHaveLength(0);
  if (message !== undefined) expect(at.some((e) => (typeof message === "string" ? e.message === message : message.test(e.message))), what).toBe(true);
}

describe("bad input is 400 naming the field, never 500", () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await setupGateway({ deps: { now: () => new Date("2026-11-23T12:00:00Z") } });
  });
  afterAll(async () => gw.close());

  it("a URL the router cannot read (a broken percent-escape, an over-long id) is a problem+json 400 naming the path", async () => {
    const t = await readyTenant(gw);
    for (const url of ["/v1/tasks/%zz", `/v1/tasks/${"a".repeat(300)}`, `/v1/runs/${"b".repeat(101)}/retry`]) {
      const res = await gw.call(t.adminKey, "GET", url);
      expectInvalid(res, "path");
    }
  });

  describe("NUL characters (PostgreSQL text cannot hold U+0000)", () => {
    it("in a JSON body string, at any depth", async () => {
      const t = await readyTenant(gw);
      const res = await gw.call(t.adminKey, "POST", "/v1/tasks", t.body({ notifications: { emailSubject: "Report\u0000" } }));
      expectInvalid(res, "body.notifications.emailSubject", /NUL/);
      const inArray = await gw.call(t.adminKey, "POST", "/v1/tasks", t.body({ notifications: { emails: ["ops@example.com", "a\u0000@example.com"] } }));
      expectInvalid(inArray, "body.notifications.emails.1", /NUL/);
      expect(await gw.prisma.task.count({ where: { tenantId: t.tenant.id } })).toBe(0);
    });

    it("in a JSON body's field name", async () => {
      const t = await readyTenant(gw);
      const res = await gw.call(t.adminKey, "POST", "/v1/tasks", t.body({ params: { "a\u0000b": 1 } }));
      expectInvalid(res, "body.params.a\\u0000b", /NUL/);
    });

    it("lone UTF-16 surrogates, which PostgreSQL cannot store either: in a string, a field name, an API key's name", async () => {
      const t = await readyTenant(gw);
      // As a client sends them: JSON escapes of half a surrogate pair.
      const raw = (body: Record<string, unknown>, field: string, escaped: string) => JSON.stringify(body).replace(`"${field}"`, escaped);
      const description = await gw.call(t.adminKey, "POST", "/v1/tasks", raw(t.body({ description: "PLACEHOLDER" }), "PLACEHOLDER", '"d \\ud800"'));
      expectInvalid(description, "body.description", /surrogate/);
      const subject = await gw.call(t.adminKey, "POST", "/v1/tasks", raw(t.body({ notifications: { emailSubject: "PLACEHOLDER" } }), "PLACEHOLDER", '"\\udc00 report"'));
      expectInvalid(subject, "body.notifications.emailSubject", /surrogate/);
      const key = await gw.call(t.adminKey, "POST", "/v1/api-keys", '{"name":"ops \\ud800","role":"viewer"}');
      expectInvalid(key, "body.name", /surrogate/);
      const fieldName = await gw.call(t.adminKey, "POST", "/v1/tasks", raw(t.body({ params: { PLACEHOLDER: 1 } }), "PLACEHOLDER", '"a\\ud800"'));
      expect(fieldName.status).toBe(400);
      expect(JSON.stringify(fieldName.body)).toMatch(/surrogate/);
      // A whole pair is a character like any other.
      expect((await gw.call(t.adminKey, "POST", "/v1/api-keys", { name: "ops 👩‍💻", role: "viewer" })).status).toBe(201);
      expect(await gw.prisma.task.count({ where: { tenantId: t.tenant.id } })).toBe(0);
    });

    it("in the query string", async () => {
      const { adminKey } = await gw.createTenant();
      for (const [url, path] of [
        ["/v1/tasks?reportId=%00", "querystring.reportId"],
        ["/v1/alerts?kind=%00", "querystring.kind"],
        ["/v1/audit-events?targetId=x%00y", "querystring.targetId"],
      ] as const) {
        expectInvalid(await gw.call(adminKey, "GET", url), path, /NUL/);
      }
    });

    it("in a path parameter", async () => {
      const { adminKey } = await gw.createTenant();
      expectInvalid(await gw.call(adminKey, "GET", "/v1/reports/messaging%00"), "params.id", /NUL/);
    });

    it("still asks for authentication first", async () => {
      const res = await gw.app.inject({ method: "GET", url: "/v1/tasks?reportId=%00" });
      expect(res.statusCode).toBe(401);
    });

    it("walks a deeply nested body without running out of stack", async () => {
      const { adminKey } = await gw.createTenant();
      const depth = 200_000;
      // The text of a JSON string holding U+0000, inside `depth` arrays.
      const nested = `${"[".repeat(depth)}"a\\u0000"${"]".repeat(depth)}`;
      const res = await gw.call(adminKey, "POST", "/v1/api-keys", `{"name":"deep","role":"viewer","extra":${nested}}`);
      expect(res.status, JSON.stringify(res.body).slice(0, 300)).toBe(400);
      expect(res.body.errors[0].path).toMatch(/^body\.extra(\.0)+$/);
      // Without the NUL, the walk goes through and the schema answers: a field the API does not know.
      const clean = await gw.call(adminKey, "POST", "/v1/api-keys", `{"name":"deep","role":"viewer","extra":${"[".repeat(depth)}${"]".repeat(depth)}}`);
      expect(clean.status).toBe(400);
      expect(JSON.stringify(clean.body)).toMatch(/extra/);
    });
  });

  describe("the body is JSON as it reads, sent as JSON", () => {
    it("refuses objects and arrays nested deeper than 64 levels with 400 naming where, before anything runs", async () => {
      const t = await readyTenant(gw);
      // The body is level 1, "extra" holds 63 more: at the limit, the schema answers (an unknown field).
      const atLimit = await gw.call(t.adminKey, "POST", "/v1/api-keys", `{"name":"deep","role":"viewer","extra":${"[".repeat(63)}${"]".repeat(63)}}`);
      expectInvalid(atLimit, "body");
      expect(JSON.stringify(atLimit.body)).not.toMatch(/too deeply/);
      const over = await gw.call(t.adminKey, "POST", "/v1/api-keys", `{"name":"deep","role":"viewer","extra":${"[".repeat(64)}${"]".repeat(64)}}`);
      expectInvalid(over, `body.extra${".0".repeat(63)}`, /too deeply: at most 64 levels/);
      // In a field a schema passes on as it is (task params), and in objects as in arrays.
      let params: unknown = "x";
      for (let i = 0; i < 70; i++) params = { a: params };
      const task = await gw.call(t.adminKey, "POST", "/v1/tasks", t.body({ params }));
      expectInvalid(task, `body.params${".a".repeat(63)}`, /too deeply/);
      expect(await gw.prisma.task.count({ where: { tenantId: t.tenant.id } })).toBe(0);
      expect(await gw.prisma.apiKey.count({ where: { tenantId: t.tenant.id, name: "deep" } })).toBe(0);
    });

    it("refuses a field given twice in one object with 400 naming it, not last-wins", async () => {
      const t = await readyTenant(gw);
      const keys = await gw.prisma.apiKey.count({ where: { tenantId: t.tenant.id } });
      const role = await gw.call(t.adminKey, "POST", "/v1/api-keys", '{"name":"dup","role":"admin","role":"viewer"}');
      expectInvalid(role, "body.role", /more than once/);
      // Written differently, the same field: as JSON.parse reads it.
      expectInvalid(await gw.call(t.adminKey, "POST", "/v1/api-keys", '{"name":"dup","role":"admin","r\u006fle":"viewer"}'), "body.role", /more than once/);
      const enabled = JSON.stringify(t.body({ enabled: false, description: "dup enabled" })).replace(/}$/, ',"enabled":true}');
      expectInvalid(await gw.call(t.adminKey, "POST", "/v1/tasks", enabled), "body.enabled", /more than once/);
      const nested = JSON.stringify(t.body({ notifications: { emails: ["a@example.com"], on: "always" } })).replace('"on":"always"', '"on":"always","on":"failure"');
      expectInvalid(await gw.call(t.adminKey, "POST", "/v1/tasks", nested), "body.notifications.on", /more than once/);
      expect(await gw.prisma.apiKey.count({ where: { tenantId: t.tenant.id } })).toBe(keys);
      expect(await gw.prisma.task.count({ where: { tenantId: t.tenant.id } })).toBe(0);
      // The same name in two objects, and a duplicate inside a string, are no duplicates.
      const fine = await gw.call(t.adminKey, "POST", "/v1/tasks", JSON.stringify(t.body({ description: '{"a":1,"a":2}', params: {}, notifications: { emails: [] } })));
      expect(fine.status, JSON.stringify(fine.body)).toBe(201);
      // Malformed JSON and prototype keys are refused as before.
      for (const payload of ['{"name":"x",', '{"name":"x","role":"viewer","__proto__":{"a":1}}', ""]) {
        const res = await gw.app.inject({ method: "POST", url: "/v1/api-keys", headers: { authorization: `Bearer ${t.adminKey}`, "content-type": "application/json" }, payload });
        expect(res.statusCode, payload).toBe(400);
        expect(res.json().detail).toBe("the body must be valid JSON sent as application/json");
      }
    });

    it("answers JSON sent as text/plain with 415, as it does a form", async () => {
      const t = await readyTenant(gw);
      const keys = await gw.prisma.apiKey.count({ where: { tenantId: t.tenant.id } });
      for (const contentType of ["text/plain", "text/plain; charset=utf-8", "application/x-www-form-urlencoded"]) {
        const res = await gw.app.inject({ method: "POST", url: "/v1/api-keys", headers: { authorization: `Bearer ${t.adminKey}`, "content-type": contentType }, payload: '{"name":"tp","role":"viewer"}' });
        expect(res.statusCode, contentType).toBe(415);
        expect(res.headers["content-type"]).toContain("application/problem+json");
        expect(res.json()).toMatchObject({ title: "Unsupported media type", detail: "send the body as application/json" });
      }
      expect(await gw.prisma.apiKey.count({ where: { tenantId: t.tenant.id } })).toBe(keys);
    });
  });

  describe("names and descriptions are one line of visible text that reads as it displays", () => {
    const badNames: Array<[string, string]> = [
      ["a\u2028b", "LINE SEPARATOR"],
      ["a\u2029b", "PARAGRAPH SEPARATOR"],
      ["Brand\u0085Two", "C1 NEXT LINE"],
      ["ops\u009b31mred", "C1 CSI"],
      ["x\u0080y", "C1 control"],
      ["abc\u202Egpj.exe", "RIGHT-TO-LEFT OVERRIDE"],
      ["\u202Agpj", "LEFT-TO-RIGHT EMBEDDING"],
      ["a\u2066b\u2069", "LEFT-TO-RIGHT ISOLATE"],
      ["\u2067x", "RIGHT-TO-LEFT ISOLATE"],
      ["\u200B\u200B", "zero-width spaces only"],
      ["\u200B", "a zero-width space only"],
      [" \u00A0\u200D ", "spaces and a joiner only"],
      ["\u3164", "HANGUL FILLER only"],
      ["\uFEFF\u2060", "BOM and WORD JOINER only"],
    ];

    it("refuses control characters, separators, bidi overrides and invisible-only names with 400, in every name and description", async () => {
      const t = await readyTenant(gw);
      const encryptionKey = await gw.prisma.encryptionKey.findFirstOrThrow({ where: { tenantId: t.tenant.id } });
      const audits = await gw.prisma.auditEvent.count({ where: { tenantId: t.tenant.id } });
      for (const [name, what] of badNames) {
        expectInvalid(await gw.call(t.adminKey, "POST", "/v1/api-keys", { name, role: "viewer" }), "body.name");
        expectInvalid(await gw.call(t.adminKey, "POST", "/v1/destinations", { name, kind: "managed" }), "body.name");
        expectInvalid(await gw.call(t.adminKey, "PATCH", `/v1/encryption-keys/${encryptionKey.id}`, { name }), "body.name");
        expectInvalid(await gw.call(t.adminKey, "POST", "/v1/tasks", t.body({ description: name })), "body.description");
        const tenant = await gw.call(gw.operatorKey, "POST", "/v1/tenants", { name, accountId: `9${Date.now() % 1_000_000}` });
        expect(tenant.status, what).toBe(400);
        expect(tenant.body.errors[0].path, what).toBe("body.name");
      }
      expect(await gw.prisma.auditEvent.count({ where: { tenantId: t.tenant.id } })).toBe(audits);
      expect(await gw.prisma.task.count({ where: { tenantId: t.tenant.id } })).toBe(0);
      expect(await gw.prisma.destination.count({ where: { tenantId: t.tenant.id } })).toBe(1);
      expect((await gw.prisma.encryptionKey.findUniqueOrThrow({ where: { id: encryptionKey.id } })).name).toBe(encryptionKey.name);
    });

    it("says which rule a name broke", async () => {
      const { adminKey } = await gw.createTenant();
      expectInvalid(await gw.call(adminKey, "POST", "/v1/api-keys", { name: "a\u2028b", role: "viewer" }), "body.name", /control characters, line or paragraph separators, or bidi overrides/);
      expectInvalid(await gw.call(adminKey, "POST", "/v1/api-keys", { name: "\u200B\u200B", role: "viewer" }), "body.name", "must contain at least one visible character");
    });

    it("keeps accepting text with joiners, marks and scripts written right to left", async () => {
      const { adminKey } = await gw.createTenant();
      for (const name of ["ops 👩‍💻", "Café", "שלום עולם", "مرحبا\u200F", "a\u200Bb", "  padded  "]) {
        const res = await gw.call(adminKey, "POST", "/v1/api-keys", { name, role: "viewer" });
        expect(res.status, JSON.stringify(res.body)).toBe(201);
        expect(res.body.name).toBe(name.trim());
      }
    });
  });

  describe("notification settings are bounded", () => {
    it("refuses a webhook URL over 2048 characters with 400, leaving the task and its audit trail as they were", async () => {
      const t = await readyTenant(gw);
      const long = `https://hooks.example.com/${"a".repeat(2049 - "https://hooks.example.com/".length)}`;
      expectInvalid(await gw.call(t.adminKey, "POST", "/v1/tasks", t.body({ notifications: { webhookUrl: long } })), "body.notifications.webhookUrl", "at most 2048 characters");
      expect(await gw.prisma.task.count({ where: { tenantId: t.tenant.id } })).toBe(0);
      const created = await gw.call(t.adminKey, "POST", "/v1/tasks", t.body({ notifications: { webhookUrl: long.slice(0, 2048) } }));
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      const audits = await gw.prisma.auditEvent.count({ where: { tenantId: t.tenant.id } });
      const huge = await gw.call(t.adminKey, "PATCH", `/v1/tasks/${created.body.id}`, { notifications: { webhookUrl: `https://example.com/${"a".repeat(1_000_000)}` } });
      expectInvalid(huge, "body.notifications.webhookUrl", "at most 2048 characters");
      expect(JSON.stringify(huge.body).length).toBeLessThan(2000);
      expect((await gw.call(t.adminKey, "GET", `/v1/tasks/${created.body.id}`)).body.notifications.webhookUrl).toBe(long.slice(0, 2048));
      expect(await gw.prisma.auditEvent.count({ where: { tenantId: t.tenant.id } })).toBe(audits);
    });
  });

  describe("schedule fields are bounded and belong to their frequency", () => {
    it("refuses numbers out of range with 400, not a database error", async () => {
      const t = await readyTenant(gw);
      const cases: Array<[Record<string, unknown>, string, RegExp]> = [
        [{ frequency: "weekly", time: "08:00", dayOfWeek: 3_000_000_000 }, "body.schedule.dayOfWeek", /^dayOfWeek must be a whole number from 1 \(Monday\) to 7 \(Sunday\)$/],
        [{ frequency: "weekly", time: "08:00", dayOfWeek: 0 }, "body.schedule.dayOfWeek", /from 1 \(Monday\) to 7/],
        [{ frequency: "weekly", time: "08:00", dayOfWeek: 8 }, "body.schedule.dayOfWeek", /from 1 \(Monday\) to 7/],
        [{ frequency: "weekly", time: "08:00", dayOfWeek: -1.5 }, "body.schedule.dayOfWeek", /from 1 \(Monday\) to 7/],
        [{ frequency: "interval", everyMinutes: 3_000_000_000 }, "body.schedule.everyMinutes", /^everyMinutes must be a whole number from 15 to 1440$/],
        [{ frequency: "interval", everyMinutes: 0 }, "body.schedule.everyMinutes", /from 15 to 1440/],
        [{ frequency: "daily", time: "08:00", delayMinutes: 3_000_000_000 }, "body.schedule.delayMinutes", /^delayMinutes must be a whole number from 0 to 1440$/],
        [{ frequency: "daily", time: "08:00", delayMinutes: -1 }, "body.schedule.delayMinutes", /from 0 to 1440/],
        [{ frequency: "daily", time: "08:00", delayMinutes: 1441 }, "body.schedule.delayMinutes", /from 0 to 1440/],
        [{ frequency: "daily", time: "99:99" }, "body.schedule.time", /^time must be "HH:MM" between 00:00 and 23:59$/],
        [{ frequency: "daily", time: "8:00" }, "body.schedule.time", /HH:MM/],
        [{ frequency: "daily", time: "24:00" }, "body.schedule.time", /HH:MM/],
      ];
      for (const [schedule, path, message] of cases) {
        const res = await gw.call(t.adminKey, "POST", "/v1/tasks", t.body({ schedule }));
        expectInvalid(res, path, message);
        // One problem, said once, in the schedule library's words.
        expect(res.body.errors, JSON.stringify(schedule)).toHaveLength(1);
        expect(validateSchedule(schedule as unknown as Schedule)).toContain(res.body.errors[0].message);
      }
      expect(await gw.prisma.task.count({ where: { tenantId: t.tenant.id } })).toBe(0);
    });

    it("refuses fields the frequency does not use", async () => {
      const t = await readyTenant(gw);
      const cases: Array<[Record<string, unknown>, string[]]> = [
        // Out of the database's integer range, on a frequency that ignores it: once a 500.
        [{ frequency: "daily", time: "08:00", dayOfWeek: 3_000_000_000 }, ["body.schedule.dayOfWeek"]],
        // Once saved as they were, and returned.
        [{ frequency: "interval", everyMinutes: 60, time: "99:99", dayOfWeek: 9 }, ["body.schedule.time", "body.schedule.dayOfWeek"]],
        [{ frequency: "interval", everyMinutes: 60, time: "08:00" }, ["body.schedule.time"]],
        [{ frequency: "daily", time: "08:00", dayOfWeek: 3 }, ["body.schedule.dayOfWeek"]],
        [{ frequency: "daily", time: "08:00", everyMinutes: 60 }, ["body.schedule.everyMinutes"]],
        [{ frequency: "weekly", time: "08:00", dayOfWeek: 1, everyMinutes: 60 }, ["body.schedule.everyMinutes"]],
      ];
      for (const [schedule, paths] of cases) {
        const res = await gw.call(t.adminKey, "POST", "/v1/tasks", t.body({ schedule }));
        for (const path of paths) expectInvalid(res, path, /is only for/);
      }
      const daily = await gw.call(t.adminKey, "POST", "/v1/tasks", t.body({ schedule: { frequency: "daily", time: "08:00", dayOfWeek: 3 } }));
      expect(daily.body.errors).toEqual([{ path: "body.schedule.dayOfWeek", message: "dayOfWeek is only for weekly schedules" }]);
      expect(await gw.prisma.task.count({ where: { tenantId: t.tenant.id } })).toBe(0);
    });

    it("checks a PATCH's schedule the same way and leaves the task as it was", async () => {
      const t = await readyTenant(gw);
      const created = await gw.call(t.adminKey, "POST", "/v1/tasks", t.body());
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      const url = `/v1/tasks/${created.body.id}`;
      expectInvalid(await gw.call(t.adminKey, "PATCH", url, { schedule: { frequency: "daily", time: "08:00", dayOfWeek: 3_000_000_000 } }), "body.schedule.dayOfWeek", /is only for weekly/);
      expectInvalid(await gw.call(t.adminKey, "PATCH", url, { schedule: { frequency: "interval", everyMinutes: 60, time: "99:99", dayOfWeek: 9 } }), "body.schedule.time");
      expectInvalid(await gw.call(t.adminKey, "PATCH", url, { schedule: { frequency: "weekly", time: "08:00", dayOfWeek: 8 } }), "body.schedule.dayOfWeek", /from 1 \(Monday\) to 7/);
      expectInvalid(await gw.call(t.adminKey, "PATCH", url, { schedule: { frequency: "daily", time: "08:00", delayMinutes: 3_000_000_000 } }), "body.schedule.delayMinutes");
      expect((await gw.call(t.adminKey, "GET", url)).body.schedule).toEqual(created.body.schedule);
    });

    it("takes back a schedule as the task view shows it, unused fields null", async () => {
      const t = await readyTenant(gw);
      const created = await gw.call(t.adminKey, "POST", "/v1/tasks", t.body({ schedule: { frequency: "interval", everyMinutes: 60, delayMinutes: 360 } }));
      expect(created.body.schedule).toEqual({ frequency: "interval", time: null, dayOfWeek: null, everyMinutes: 60, delayMinutes: 360 });
      const again = await gw.call(t.adminKey, "PATCH", `/v1/tasks/${created.body.id}`, { schedule: created.body.schedule });
      expect(again.status, JSON.stringify(again.body)).toBe(200);
      expect(again.body.schedule).toEqual(created.body.schedule);
    });

    it("accepts the edges of every range", async () => {
      const t = await readyTenant(gw);
      for (const schedule of [
        { frequency: "weekly", time: "23:59", dayOfWeek: 7, delayMinutes: 1440 },
        { frequency: "weekly", time: "00:00", dayOfWeek: 1, delayMinutes: 0 },
        { frequency: "interval", everyMinutes: 15, delayMinutes: 0 },
        { frequency: "interval", everyMinutes: 1440, delayMinutes: 1440 },
        { frequency: "daily", time: "12:30" },
      ]) {
        const res = await gw.call(t.adminKey, "POST", "/v1/tasks", t.body({ schedule }));
        expect(res.status, JSON.stringify(res.body)).toBe(201);
        expect(res.body.schedule).toEqual({ time: null, dayOfWeek: null, everyMinutes: null, delayMinutes: 0, ...schedule });
      }
    });
  });

  describe("nothing a request says is dropped or taken for a change it is not", () => {
    it("refuses file-name placeholders every object inherits ({constructor}, {valueOf}…) like any unknown one", async () => {
      const t = await readyTenant(gw);
      for (const name of ["constructor", "toString", "valueOf", "hasOwnProperty"]) {
        const res = await gw.call(t.adminKey, "POST", "/v1/tasks", t.body({ options: { fileNamePattern: `daily_{start}_{${name}}` } }));
        expectInvalid(res, "body.options.fileNamePattern", new RegExp(`^unknown placeholder \\{${name}\\}`));
      }
      expect(await gw.prisma.task.count({ where: { tenantId: t.tenant.id } })).toBe(0);
    });

    it("refuses a destination's settings and credentials it does not know with 400 naming them, before verifying", async () => {
      const t = await readyTenant(gw);
      const cases: Array<[Record<string, unknown>, string[]]> = [
        [{ kind: "sftp", config: { host: "sftp.example.com", username: "u", foldr: "/upload" }, credentials: { password: "p" } }, ["config.foldr"]],
        [{ kind: "s3", config: { bucket: "my-bucket", prefx: "daily" }, credentials: { accessKeyId: "AK", secretAccessKey: "s", sessionTokn: "t" } }, ["config.prefx", "credentials.sessionTokn"]],
        [{ kind: "gcs", config: { bucket: "my-bucket", chunkSize: 1 }, credentials: { serviceAccountKey: {}, keyFile: "x" } }, ["config.chunkSize", "credentials.keyFile"]],
        [{ kind: "managed", config: { folder: "x" } }, ["config.folder"]],
      ];
      for (const [body, paths] of cases) {
        const res = await gw.call(t.adminKey, "POST", "/v1/destinations", { name: "Typo", ...body });
        for (const path of paths) expectInvalid(res, path, /^unknown field/);
        expect(res.body.errors, JSON.stringify(res.body)).toHaveLength(paths.length);
      }
      expect(await gw.prisma.destination.count({ where: { tenantId: t.tenant.id } })).toBe(1);
    });

    it("refuses unknown settings in a destination's PATCH, yet still reads, and lets go of, a field stored before", async () => {
      const t = await readyTenant(gw);
      const url = `/v1/destinations/${t.destination.id}`;
      const audits = await gw.prisma.auditEvent.count({ where: { tenantId: t.tenant.id } });
      expectInvalid(await gw.call(t.adminKey, "PATCH", url, { config: { bogus: 1 } }), "config.bogus", /^unknown field/);
      expectInvalid(await gw.call(t.adminKey, "PATCH", url, { config: { bogus: null } }), "config.bogus", /^unknown field/);
      expect(await gw.prisma.auditEvent.count({ where: { tenantId: t.tenant.id } })).toBe(audits);
      // A field the settings once had: the row still parses, and null removes it.
      await gw.prisma.destination.update({ where: { id: t.destination.id }, data: { config: { retired: true } } });
      expect((await gw.call(t.adminKey, "PATCH", url, { name: "Managed files" })).status).toBe(200);
      const removed = await gw.call(t.adminKey, "PATCH", url, { config: { retired: null } });
      expect(removed.status, JSON.stringify(removed.body)).toBe(200);
      expect(removed.body.config).toEqual({});
    });

    it("refuses an empty PATCH of a source or destination, and writes and audits nothing for one that changes nothing", async () => {
      const t = await readyTenant(gw);
      const key = await gw.prisma.encryptionKey.findFirstOrThrow({ where: { tenantId: t.tenant.id } });
      const audits = () => gw.prisma.auditEvent.count({ where: { tenantId: t.tenant.id } });
      const before = await audits();
      expectInvalid(await gw.call(t.adminKey, "PATCH", `/v1/sources/${t.source.id}`, {}), "body", /send at least one/);
      expectInvalid(await gw.call(t.adminKey, "PATCH", `/v1/destinations/${t.destination.id}`, {}), "body", /send at least one/);
      const source = await gw.call(t.adminKey, "PATCH", `/v1/sources/${t.source.id}`, { name: t.source.name, accountId: t.source.accountId });
      expect(source.status, JSON.stringify(source.body)).toBe(200);
      expect(source.body.updatedAt).toBe(t.source.updatedAt.toISOString());
      const destination = await gw.call(t.adminKey, "PATCH", `/v1/destinations/${t.destination.id}`, { name: t.destination.name, config: {} });
      expect(destination.status, JSON.stringify(destination.body)).toBe(200);
      expect(destination.body.updatedAt).toBe(t.destination.updatedAt.toISOString());
      expect(key.name).toBeNull();
      expect((await gw.call(t.adminKey, "PATCH", `/v1/encryption-keys/${key.id}`, { name: null })).status).toBe(200);
      expect(await audits()).toBe(before);
      // A real change is still written and audited.
      expect((await gw.call(t.adminKey, "PATCH", `/v1/destinations/${t.destination.id}`, { name: "Renamed" })).body.name).toBe("Renamed");
      expect(await audits()).toBe(before + 1);
    });

    it("answers a body in another charset than UTF-8 with 415, and takes UTF-8 however it is written", async () => {
      const t = await readyTenant(gw);
      const keys = await gw.prisma.apiKey.count({ where: { tenantId: t.tenant.id } });
      const send = (contentType: string, payload: Buffer) =>
        gw.app.inject({ method: "POST", url: "/v1/api-keys", headers: { authorization: `Bearer ${t.adminKey}`, "content-type": contentType }, payload });
      for (const contentType of ["application/json; charset=iso-8859-1", "application/json;charset=windows-1252", 'application/json; charset="latin1"', "application/json; charset=utf-16"]) {
        const res = await send(contentType, Buffer.from('{"name":"Café","role":"viewer"}', "latin1"));
        expect(res.statusCode, contentType).toBe(415);
        expect(res.headers["content-type"]).toContain("application/problem+json");
        expect(res.json()).toMatchObject({ title: "Unsupported media type", detail: expect.stringMatching(/application\/json in UTF-8/) });
      }
      expect(await gw.prisma.apiKey.count({ where: { tenantId: t.tenant.id } })).toBe(keys);
      // Latin-1 labelled ASCII (a common mislabel): not ASCII, so not read as UTF-8 either.
      expect((await send("application/json; charset=us-ascii", Buffer.from('{"name":"Café","role":"viewer"}', "latin1"))).statusCode).toBe(415);
      expect((await send("application/json; charset=us-ascii", Buffer.from('{"name":"Cafe","role":"viewer"}', "latin1"))).statusCode).toBe(201);
      // UTF-8 under any of its labels.
      for (const contentType of ["application/json", "application/json; charset=utf-8", "application/json; charset=UTF-8", 'application/json;charset="utf-8"', "application/json; charset=utf8"]) {
        const res = await send(contentType, Buffer.from('{"name":"Café","role":"viewer"}', "utf8"));
        expect(res.statusCode, contentType).toBe(201);
        expect(res.json().name).toBe("Café");
      }
    });

    it("stores a time zone under its proper name, so a change of case alone changes nothing", async () => {
      const { tenant } = await gw.createTenant({ timezone: "asia/tokyo" });
      expect((await gw.prisma.tenant.findUniqueOrThrow({ where: { id: tenant.id } })).timezone).toBe("Asia/Tokyo");
      const t = await readyTenant(gw);
      await gw.call(t.adminKey, "PATCH", "/v1/account", { timezone: "Europe/Paris" });
      const task = await gw.call(t.adminKey, "POST", "/v1/tasks", t.body({ enabled: true }));
      expect(task.status, JSON.stringify(task.body)).toBe(201);
      const audits = await gw.prisma.auditEvent.count({ where: { tenantId: t.tenant.id } });
      const row = await gw.prisma.task.findUniqueOrThrow({ where: { id: task.body.id } });
      for (const timezone of ["europe/paris", "EUROPE/PARIS"]) {
        const res = await gw.call(t.adminKey, "PATCH", "/v1/account", { timezone });
        expect(res.status, JSON.stringify(res.body)).toBe(200);
        expect(res.body.timezone).toBe("Europe/Paris");
      }
      expect(await gw.prisma.auditEvent.count({ where: { tenantId: t.tenant.id } })).toBe(audits);
      expect((await gw.prisma.task.findUniqueOrThrow({ where: { id: task.body.id } })).updatedAt).toEqual(row.updatedAt);
      // A link keeps the name it was given (the runtime's canonical one may be older: Asia/Katmandu),
      // the schedule rules take it, and a change of its case alone changes nothing either.
      for (const timezone of ["US/Pacific", "Asia/Kathmandu", "Asia/Kolkata"]) {
        const res = await gw.call(t.adminKey, "PATCH", "/v1/account", { timezone });
        expect(res.status, `${timezone}: ${JSON.stringify(res.body)}`).toBe(200);
        expect(res.body.timezone).toBe(timezone);
      }
      const linked = await gw.prisma.auditEvent.count({ where: { tenantId: t.tenant.id } });
      expect((await gw.call(t.adminKey, "PATCH", "/v1/account", { timezone: "asia/kolkata" })).body.timezone).toBe("Asia/Kolkata");
      expect(await gw.prisma.auditEvent.count({ where: { tenantId: t.tenant.id } })).toBe(linked);
    });

    it("corrects the spelling of a zone stored in another case (before names were stored in their proper case), moving no schedule", async () => {
      const t = await readyTenant(gw);
      expect((await gw.call(t.adminKey, "PATCH", "/v1/account", { timezone: "Europe/Paris" })).status).toBe(200);
      const task = await gw.call(t.adminKey, "POST", "/v1/tasks", t.body({ enabled: true }));
      expect(task.status, JSON.stringify(task.body)).toBe(201);
      const row = await gw.prisma.task.findUniqueOrThrow({ where: { id: task.body.id } });
      for (const [stored, sent] of [["europe/paris", "Europe/Paris"], ["asia/kolkata", "Asia/Kolkata"], ["utc", "UTC"]] as const) {
        await gw.prisma.tenant.update({ where: { id: t.tenant.id }, data: { timezone: stored } });
        const audits = await gw.prisma.auditEvent.count({ where: { tenantId: t.tenant.id, action: "account.update" } });
        const res = await gw.call(t.adminKey, "PATCH", "/v1/account", { timezone: sent });
        expect(res.status, JSON.stringify(res.body)).toBe(200);
        expect(res.body.timezone).toBe(sent);
        expect((await gw.prisma.tenant.findUniqueOrThrow({ where: { id: t.tenant.id } })).timezone).toBe(sent);
        expect(await gw.prisma.auditEvent.count({ where: { tenantId: t.tenant.id, action: "account.update" } })).toBe(audits + 1);
      }
      const after = await gw.prisma.task.findUniqueOrThrow({ where: { id: task.body.id } });
      expect({ nextRunAt: after.nextRunAt, updatedAt: after.updatedAt }).toEqual({ nextRunAt: row.nextRunAt, updatedAt: row.updatedAt });
    });

    it("refuses a body sent to a route that takes none, naming its fields; no body, {} or an empty body still work", async () => {
      const t = await readyTenant(gw);
      const id = "4f1c2a3e-0000-4000-8000-000000000000";
      const routes: Array<[string, string]> = [
        ["POST", `/v1/encryption-keys/${id}/activate`], ["DELETE", `/v1/encryption-keys/${id}`], ["DELETE", `/v1/tasks/${id}`],
        ["POST", `/v1/destinations/${id}/verify`], ["DELETE", `/v1/destinations/${id}`], ["POST", `/v1/sources/${id}/verify`], ["DELETE", `/v1/sources/${id}`],
        ["POST", `/v1/runs/${id}/retry`], ["POST", `/v1/alerts/${id}/ack`], ["DELETE", `/v1/api-keys/${id}`],
      ];
      for (const [method, url] of routes) {
        expectInvalid(await gw.call(t.adminKey, method, url, { id: "x" }), "body.id", /unknown field/);
        expectInvalid(await gw.call(t.adminKey, method, url, [1]), "body");
        // Without a body, the route answers as it always did (nothing with this id).
        expect((await gw.call(t.adminKey, method, url)).status, `${method} ${url}`).toBe(404);
        expect((await gw.call(t.adminKey, method, url, {})).status, `${method} ${url} {}`).toBe(404);
      }
      const task = await gw.call(t.adminKey, "POST", "/v1/tasks", t.body());
      expectInvalid(await gw.call(t.adminKey, "DELETE", `/v1/tasks/${task.body.id}`, { x: 1 }), "body.x", /unknown field/);
      expect((await gw.call(t.adminKey, "GET", `/v1/tasks/${task.body.id}`)).status).toBe(200);
      // A content type with an empty body (some clients send one with every request) is no body.
      const res = await gw.app.inject({ method: "DELETE", url: `/v1/tasks/${task.body.id}`, headers: { authorization: `Bearer ${t.adminKey}`, "content-type": "application/json" }, payload: "" });
      expect(res.statusCode, res.body).toBe(204);
    });

    it("documents what it validates: a task's source is required, a run request's body optional", async () => {
      const t = await readyTenant(gw);
      const doc = (await gw.app.inject({ url: "/openapi.json" })).json();
      expect(doc.paths["/v1/tasks"].post.requestBody.content["application/json"].schema.required).toContain("sourceId");
      expect(doc.paths["/v1/tasks/{id}/runs"].post.requestBody.required).toBe(false);
      expect(doc.paths["/v1/tasks"].post.requestBody.required).toBe(true);
      expect(JSON.stringify(doc)).not.toContain("x-transporter-optional-body");
      const { sourceId: _sourceId, ...noSource } = t.body();
      expectInvalid(await gw.call(t.adminKey, "POST", "/v1/tasks", noSource), "body.sourceId", "a task needs a source to read from");
    });

    it("names a field by one path whichever check finds it, and says one thing about a malformed instant", async () => {
      const t = await readyTenant(gw);
      const divides = await gw.call(t.adminKey, "POST", "/v1/tasks", t.body({ schedule: { frequency: "interval", everyMinutes: 7 } }));
      expectInvalid(divides, "body.schedule.everyMinutes");
      const range = await gw.call(t.adminKey, "POST", "/v1/tasks", t.body({ schedule: { frequency: "interval", everyMinutes: 1441 } }));
      expectInvalid(range, "body.schedule.everyMinutes");
      const missing = "4f1c2a3e-0000-4000-8000-000000000000";
      const refs = await gw.call(t.adminKey, "POST", "/v1/tasks", t.body({ sourceId: missing, destinationId: missing, format: "pdf" }));
      for (const path of ["body.sourceId", "body.destinationId", "body.format"]) expectInvalid(refs, path);
      const task = await gw.call(t.adminKey, "POST", "/v1/tasks", t.body());
      const leap = await gw.call(t.adminKey, "POST", `/v1/tasks/${task.body.id}/runs`, { windowStart: "2026-11-20T23:59:60Z", windowEnd: "2026-11-21T00:00:00Z" });
      expectInvalid(leap, "body.windowStart");
      expect(leap.body.errors, JSON.stringify(leap.body)).toHaveLength(1);
    });
  });
});
