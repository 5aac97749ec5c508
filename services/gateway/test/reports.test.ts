import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listReports } from "@transporter/reports";
import { setupGateway, type TestGateway } from "./helpers.js";

describe("report catalogue", () => {
  let gw: TestGateway;
  let adminKey: string;
  let viewerKey: string;

  beforeAll(async () => {
    gw = await setupGateway();
    ({ adminKey } = await gw.createTenant({ timezone: "Europe/Berlin" }));
    const viewer = await gw.call(adminKey, "POST", "/v1/api-keys", { name: "reader", role: "viewer" });
    viewerKey = viewer.body.key;
  });
  afterAll(async () => gw.close());

  it("lists every report with its category, source, versions, formats and params", async () => {
    const res = await gw.call(viewerKey, "GET", "/v1/reports");
    expect(res.status).toBe(200);
    expect(res.body.nextCursor).toBeNull();
    expect(res.body.items.map((r: { id: string }) => r.id)).toEqual(listReports().map((r) => r.id));
    const conversations = res.body.items.find((r: { id: string }) => r.id === "messaging-conversations");
    expect(conversations).toMatchObject({
      name: "Messaging conversations",
      category: "messaging",
      kind: "business",
      source: "messaging-interactions",
      window: "windowed",
      latestVersion: 2,
      versions: [1, 2],
      formats: ["csv", "xlsx", "json", "ndjson"],
      params: { type: "object", properties: { includeTranscript: { type: "boolean", default: false } } },
    });
    const users = res.body.items.find((r: { id: string }) => r.id === "admin-users");
    expect(users).toMatchObject({ category: "admin", window: "snapshot", source: "account-config-users" });
  });

  it("filters by category and kind", async () => {
    const admin = await gw.call(adminKey, "GET", "/v1/reports?category=admin");
    expect(admin.body.items.map((r: { id: string }) => r.id)).toEqual(["admin-users", "admin-skills", "admin-agent-groups"]);
    const raw = await gw.call(adminKey, "GET", "/v1/reports?kind=wfm-raw");
    expect(raw.body.items.every((r: { kind: string }) => r.kind === "wfm-raw")).toBe(true);
    expect(raw.body.items.length).toBe(2);
    const bad = await gw.call(adminKey, "GET", "/v1/reports?category=finance");
    expect(bad.status).toBe(400);
    expect(bad.body.errors[0].path).toBe("querystring.category");
  });

  it("shows one report with its columns and parameters, latest or pinned", async () => {
    const latest = await gw.call(adminKey, "GET", "/v1/reports/messaging-conversations");
    expect(latest.status).toBe(200);
    expect(latest.body.version).toBe(2);
    expect(latest.body.columns.map((c: { key: string }) => c.key)).toContain("transcript");
    expect(latest.body.columns[1]).toEqual({ key: "startTime", type: "datetime", description: expect.any(String) });
    expect(latest.body.versionDetails.map((v: { version: number }) => v.version)).toEqual([1, 2]);
    expect(latest.body.malformedRecords).toBe("skip");

    const pinned = await gw.call(adminKey, "GET", "/v1/reports/messaging-conversations?version=1");
    expect(pinned.body.version).toBe(1);
    expect(pinned.body.columns.map((c: { key: string }) => c.key)).not.toContain("transcript");
    expect(pinned.body.columns).toEqual(latest.body.versionDetails[0].columns);
    expect(pinned.body.params.properties).not.toHaveProperty("includeTranscript");

    const raw = await gw.call(adminKey, "GET", "/v1/reports/chat-engagements-raw");
    expect(raw.body).toMatchObject({ kind: "raw", formats: ["json", "ndjson"], columns: [] });
  });

  it("answers 404 for an unknown report and 400 for an unknown version", async () => {
    const missing = await gw.call(adminKey, "GET", "/v1/reports/no-such-report");
    expect(missing.status).toBe(404);
    expect(missing.headers["content-type"]).toContain("application/problem+json");
    const version = await gw.call(adminKey, "GET", "/v1/reports/admin-users?version=7");
    expect(version.status).toBe(400);
    expect(version.body.errors).toEqual([{ path: "query.version", message: expect.stringContaining("no version") }]);
  });

  it("needs a tenant key", async () => {
    expect((await gw.call("tp_nope_nope", "GET", "/v1/reports")).status).toBe(401);
    expect((await gw.call(gw.operatorKey, "GET", "/v1/reports")).status).toBe(403);
  });
});
