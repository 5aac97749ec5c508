import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { setupGateway, type TestGateway } from "./helpers.js";

/** A tenant ready for tasks, with a destination of each kind (as rows: nothing is reached here). */
async function readyTenant(gw: TestGateway) {
  const { tenant, adminKey } = await gw.createTenant({ timezone: "Europe/London" });
  const source = await gw.prisma.source.create({ data: { tenantId: tenant.id, name: "LP", kind: "liveperson", accountId: tenant.accountId, sealedCredentials: "v1.x.y.z", permissions: ["messaging-interactions", "engagement-history"], verifiedAt: new Date() } });
  const destination = (name: string, kind: "managed" | "sftp" | "s3", config: Record<string, string | number>) => gw.prisma.destination.create({ data: { tenantId: tenant.id, name, kind, config, verifiedAt: new Date() } });
  const sftp = await destination("SFTP", "sftp", { host: "sftp.example.com", port: 22, username: "u", folder: "reports" });
  const otherSftp = await destination("SFTP archive", "sftp", { host: "sftp.example.com", port: 22, username: "u", folder: "archive" });
  const s3 = await destination("S3", "s3", { bucket: "reports", prefix: "transporter/", region: "eu-west-1" });
  const managed = await destination("Managed", "managed", {});
  await gw.prisma.encryptionKey.create({ data: { tenantId: tenant.id, publicKey: "k", fingerprint: `FP${tenant.id}`, algorithm: "rsa", bits: 2048, origin: "generated", active: true } });
  const body = (overrides: Record<string, unknown> = {}) => ({
    description: "Daily export", reportId: "messaging-conversations", reportVersion: "latest", format: "csv",
    schedule: { frequency: "daily", time: "00:00", delayMinutes: 360 }, sourceId: source.id, destinationId: sftp.id,
    params: {}, enabled: true, ...overrides,
  });
  const create = async (overrides: Record<string, unknown> = {}) => gw.call(adminKey, "POST", "/v1/tasks", body(overrides));
  return { tenant, adminKey, sftp, otherSftp, s3, managed, body, create };
}

describe("tasks whose files would overwrite each other's", () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await setupGateway({ deps: { now: () => new Date("2026-11-23T12:00:00Z") } });
  });
  afterAll(async () => gw.close());

  it("refuses a second task whose description slugifies alike on the same SFTP destination, naming the first", async () => {
    const t = await readyTenant(gw);
    const first = await t.create();
    expect(first.status, JSON.stringify(first.body)).toBe(201);
    const second = await t.create({ description: "daily export!", reportId: "messaging-messages" });
    expect(second.status, JSON.stringify(second.body)).toBe(409);
    expect(second.headers["content-type"]).toMatch(/application\/problem\+json/);
    expect(second.body).toMatchObject({ title: "Conflict", status: 409 });
    expect(second.body.detail).toContain(first.body.id);
    expect(second.body.detail).toContain('"Daily export"');
    expect(second.body.detail).toMatch(/different description.*\{report\} or \{task\}.*another destination or folder/);
    expect(await gw.prisma.task.count({ where: { tenantId: t.tenant.id } })).toBe(1);
  });

  it("refuses one file name pattern for two reports on an S3 destination, and takes it once {report} tells them apart", async () => {
    const t = await readyTenant(gw);
    const options = { fileNamePattern: "export_{startDate}" };
    const first = await t.create({ destinationId: t.s3.id, options, description: "Conversations" });
    expect(first.status, JSON.stringify(first.body)).toBe(201);
    const second = await t.create({ destinationId: t.s3.id, options, description: "Messages", reportId: "messaging-messages" });
    expect(second.status).toBe(409);
    expect(second.body.detail).toContain(first.body.id);
    // An end date is some other window's start date: a-{endDate} meets a-{startDate}.
    expect((await t.create({ destinationId: t.s3.id, options: { fileNamePattern: "export_{endDate}" }, reportId: "messaging-messages" })).status).toBe(409);
    const apart = await t.create({ destinationId: t.s3.id, options: { fileNamePattern: "export_{report}_{startDate}" }, reportId: "messaging-messages" });
    expect(apart.status, JSON.stringify(apart.body)).toBe(201);
    const perRun = await t.create({ destinationId: t.s3.id, options: { fileNamePattern: "export_{runId}" }, reportId: "messaging-messages" });
    expect(perRun.status, JSON.stringify(perRun.body)).toBe(201);
    expect((await t.create({ destinationId: t.s3.id, options: { fileNamePattern: "export_{runId}" }, reportId: "messaging-messages" })).status).toBe(201);
  });

  it("allows alike tasks on managed storage (each run has its own folder) and on different destinations", async () => {
    const t = await readyTenant(gw);
    expect((await t.create({ destinationId: t.managed.id })).status).toBe(201);
    expect((await t.create({ destinationId: t.managed.id, description: "daily export!" })).status).toBe(201);
    expect((await t.create({ destinationId: t.sftp.id })).status).toBe(201);
    expect((await t.create({ destinationId: t.otherSftp.id })).status).toBe(201);
    expect((await t.create({ destinationId: t.s3.id })).status).toBe(201);
  });

  it("refuses a change that makes a task clash, and leaves the task as it was", async () => {
    const t = await readyTenant(gw);
    const first = await t.create();
    const second = await t.create({ description: "Weekly export", destinationId: t.otherSftp.id });
    expect(second.status, JSON.stringify(second.body)).toBe(201);
    const moved = await gw.call(t.adminKey, "PATCH", `/v1/tasks/${second.body.id}`, { destinationId: t.sftp.id });
    expect(moved.status, JSON.stringify(moved.body)).toBe(200);
    const renamed = await gw.call(t.adminKey, "PATCH", `/v1/tasks/${second.body.id}`, { description: "DAILY EXPORT" });
    expect(renamed.status).toBe(409);
    expect(renamed.body.detail).toContain(first.body.id);
    const patterned = await gw.call(t.adminKey, "PATCH", `/v1/tasks/${second.body.id}`, { options: { fileNamePattern: "daily-export_{start}_{end}" } });
    expect(patterned.status).toBe(409);
    expect((await gw.call(t.adminKey, "GET", `/v1/tasks/${second.body.id}`)).body).toMatchObject({ description: "Weekly export", destinationId: t.sftp.id, options: {} });
    // A task never clashes with itself: editing its own name keeps working.
    expect((await gw.call(t.adminKey, "PATCH", `/v1/tasks/${first.body.id}`, { description: "Daily export!" })).status).toBe(200);
  });

  it("does not count a deleted task", async () => {
    const t = await readyTenant(gw);
    const first = await t.create();
    expect((await gw.call(t.adminKey, "DELETE", `/v1/tasks/${first.body.id}`)).status).toBe(204);
    const again = await t.create({ description: "daily export" });
    expect(again.status, JSON.stringify(again.body)).toBe(201);
  });

  it("lets two concurrent creates of alike tasks never both through", async () => {
    const t = await readyTenant(gw);
    const results = await Promise.all(Array.from({ length: 6 }, (_, i) => t.create({ description: `Daily export${"!".repeat(i)}` })));
    expect(results.map((r) => r.status).sort()).toEqual([201, 409, 409, 409, 409, 409]);
  });

  it("refuses a pattern whose name before the first dot is a Windows device name", async () => {
    const t = await readyTenant(gw);
    for (const fileNamePattern of ["nul.{startDate}", "CON.{runId}"]) {
      const res = await t.create({ options: { fileNamePattern } });
      expect(res.status, fileNamePattern).toBe(400);
      expect(res.body.errors).toEqual([expect.objectContaining({ path: "body.options.fileNamePattern", message: expect.stringMatching(/Windows reserves/) })]);
    }
    expect((await t.create({ options: { fileNamePattern: "null.{startDate}" } })).status).toBe(201);
  });

  it("leaves a clash saved before the rule alone until the names or destination change", async () => {
    const t = await readyTenant(gw);
    const first = await t.create();
    // As if saved before the rule: the same names on the same destination.
    const legacy = await gw.prisma.task.create({
      data: { tenantId: t.tenant.id, description: "daily export", reportId: "messaging-conversations", format: "csv", frequency: "daily", time: "00:00", delayMinutes: 360, sourceId: first.body.sourceId, destinationId: t.sftp.id },
    });
    expect((await gw.call(t.adminKey, "PATCH", `/v1/tasks/${legacy.id}`, { schedule: { frequency: "daily", time: "06:00", delayMinutes: 360 } })).status).toBe(200);
    expect((await gw.call(t.adminKey, "PATCH", `/v1/tasks/${legacy.id}`, { enabled: true })).status).toBe(200);
    expect((await gw.call(t.adminKey, "PATCH", `/v1/tasks/${legacy.id}`, { format: "json" })).status).toBe(200);
    expect((await gw.call(t.adminKey, "PATCH", `/v1/tasks/${legacy.id}`, { format: "csv" })).status).toBe(409);
  });
});
