import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  describeReport,
  getReport,
  listReports,
  REPORT_CATEGORIES,
  resolveVersion,
  SOURCE_APIS,
  UnknownReportError,
  validateTaskReport,
} from "../src/index.js";

/** Published versions and their columns (key:type). A pinned version must never change. */
const snapshot = JSON.parse(readFileSync(new URL("./fixtures/columns.json", import.meta.url), "utf8")) as Record<string, string[]>;

describe("catalogue", () => {
  it("lists the reports the product promises", () => {
    const ids = listReports().map((r) => r.id);
    for (const id of [
      "messaging-conversations",
      "messaging-messages",
      "messaging-conversations-raw",
      "chat-engagements",
      "chat-transcript-lines",
      "chat-engagements-raw",
      "wfm-agent-activity",
      "wfm-queue-health",
      "wfm-agent-activity-raw",
      "wfm-queue-health-raw",
      "admin-users",
      "admin-skills",
      "admin-agent-groups",
      "data-access-agent-activity",
      "data-access-web-sessions",
      "data-access-engagements",
      "data-access-surveys",
    ]) {
      expect(ids).toContain(id);
    }
    expect(new Set(ids).size).toBe(ids.length);
  });

  it("gives every report a known category, source, window and well-formed versions", () => {
    for (const r of listReports()) {
      expect(REPORT_CATEGORIES).toContain(r.category);
      expect(SOURCE_APIS).toContain(r.source);
      expect(r.window).toBe(r.category === "admin" ? "snapshot" : "windowed");
      expect(r.versions.length).toBeGreaterThan(0);
      r.versions.forEach((v, i) => {
        expect(v.version).toBe(i + 1);
        expect(v.formats.length).toBeGreaterThan(0);
        if (v.shape === "rows") {
          expect(r.kind === "business" || r.kind === "wfm-business").toBe(true);
          const keys = v.columns.map((c) => c.key);
          expect(new Set(keys).size).toBe(keys.length);
          expect(v.formats).toEqual(["csv", "xlsx", "json", "ndjson"]);
        } else {
          expect(r.kind === "raw" || r.kind === "wfm-raw").toBe(true);
          expect(v.formats).toEqual(["json", "ndjson"]);
        }
      });
    }
  });

  it("never changes a published version's columns", () => {
    const current: Record<string, string[]> = {};
    for (const r of listReports()) {
      for (const v of r.versions) current[`${r.id}@${v.version}`] = v.shape === "rows" ? v.columns.map((c) => `${c.key}:${c.type}`) : [];
    }
    // Every published version is still there, unchanged …
    for (const [key, columns] of Object.entries(snapshot)) expect(current[key], key).toEqual(columns);
    // … and a new version is added to the snapshot when it is published.
    for (const key of Object.keys(current)) expect(snapshot[key], `${key} is missing from test/fixtures/columns.json`).toBeDefined();
  });

  it("keeps definitions immutable at run time", () => {
    const { version } = getReport("messaging-conversations", 1);
    expect(Object.isFrozen(version)).toBe(true);
    if (version.shape !== "rows") throw new Error("expected rows");
    expect(Object.isFrozen(version.columns)).toBe(true);
    expect(() => (version.columns as unknown as unknown[]).push({})).toThrow();
  });

  it("resolves latest and pinned versions", () => {
    expect(resolveVersion("messaging-conversations", "latest")).toBe(2);
    expect(resolveVersion("messaging-conversations", 1)).toBe(1);
    expect(resolveVersion("messaging-conversations", "1")).toBe(1);
    expect(getReport("admin-users").version.version).toBe(1);
  });

  it("throws a typed error naming the wrong field", () => {
    const unknownReport = (() => {
      try {
        getReport("no-such-report", "latest");
      } catch (err) {
        return err;
      }
    })();
    expect(unknownReport).toBeInstanceOf(UnknownReportError);
    expect((unknownReport as UnknownReportError).field).toBe("reportId");
    for (const bad of [3, "7", "01", "v1", 0, 1.5]) {
      try {
        getReport("messaging-conversations", bad);
        throw new Error(`version ${String(bad)} was accepted`);
      } catch (err) {
        expect(err).toBeInstanceOf(UnknownReportError);
        expect((err as UnknownReportError).field).toBe("reportVersion");
        expect((err as Error).message).toContain("versions: 1, 2");
      }
    }
  });

  it("describes reports for the API with JSON-schema params", () => {
    const entry = describeReport(getReport("messaging-messages").definition);
    expect(entry).toMatchObject({ id: "messaging-messages", category: "messaging", source: "messaging-interactions", latestVersion: 1 });
    expect(entry.formats).toEqual(["csv", "xlsx", "json", "ndjson"]);
    expect(entry.columns.map((c) => c.key)).toContain("text");
    expect(entry.params).toMatchObject({ type: "object", properties: { includeText: { type: "boolean", default: true } } });
    const conversations = describeReport(getReport("messaging-conversations").definition);
    expect(conversations.versions.map((v) => v.version)).toEqual([1, 2]);
    expect(conversations.versions[0]!.columns).not.toEqual(conversations.versions[1]!.columns);
    expect(JSON.parse(JSON.stringify(conversations))).toEqual(conversations);
  });

  it("gives the Messaging Operations reports the API's 24-hour look-back, and no other report a limit", () => {
    for (const r of listReports()) {
      const operations = r.source === "messaging-operations-agent-activity" || r.source === "messaging-operations-queue-health";
      expect(describeReport(r).maxLookBackMinutes, r.id).toBe(operations ? 1440 : null);
    }
    expect(listReports().filter((r) => r.maxLookBackMinutes === 1440).map((r) => r.id).sort()).toEqual(["wfm-agent-activity", "wfm-agent-activity-raw", "wfm-queue-health", "wfm-queue-health-raw"]);
  });
});

describe("validateTaskReport", () => {
  it("accepts a valid choice", () => {
    expect(validateTaskReport({ reportId: "messaging-conversations", reportVersion: "latest", format: "csv", params: { skillIds: [12, 13] } })).toEqual([]);
    expect(validateTaskReport({ reportId: "messaging-conversations", reportVersion: 1, format: "xlsx" })).toEqual([]);
    expect(validateTaskReport({ reportId: "admin-users", reportVersion: "1", format: "json", params: { includeDeleted: true } })).toEqual([]);
  });

  it("names the field that is wrong", () => {
    expect(validateTaskReport({ reportId: "nope", format: "csv" })).toEqual([{ path: "reportId", message: 'unknown report "nope"' }]);
    expect(validateTaskReport({ reportId: "messaging-conversations", reportVersion: 9, format: "csv" })[0]!.path).toBe("reportVersion");
    expect(validateTaskReport({ reportId: "messaging-conversations-raw", format: "csv" })).toEqual([
      { path: "format", message: "must be one of json, ndjson for messaging-conversations-raw v1" },
    ]);
    const params = validateTaskReport({ reportId: "messaging-conversations", format: "csv", params: { skillIds: ["x"], colour: 1 } });
    expect(params.map((p) => p.path).sort()).toEqual(["params", "params.skillIds.0"]);
    // v2 knows includeTranscript; the pinned v1 does not.
    expect(validateTaskReport({ reportId: "messaging-conversations", reportVersion: 2, format: "csv", params: { includeTranscript: true } })).toEqual([]);
    expect(validateTaskReport({ reportId: "messaging-conversations", reportVersion: 1, format: "csv", params: { includeTranscript: true } })[0]!.path).toBe("params");
  });

  it("refuses skillIds for agent activity: the platform's agentactivity API has no skill filter", () => {
    for (const reportId of ["wfm-agent-activity", "wfm-agent-activity-raw"]) {
      const format = reportId.endsWith("-raw") ? "ndjson" : "csv";
      const problems = validateTaskReport({ reportId, format, params: { skillIds: [12] } });
      expect(problems).toEqual([{ path: "params", message: expect.stringMatching(/skillIds is not supported.*no skill filter/) }]);
      expect(validateTaskReport({ reportId, format, params: { agentIds: [7], intervalMinutes: 30 } })).toEqual([]);
    }
    // Queue health does filter by skill.
    expect(validateTaskReport({ reportId: "wfm-queue-health", format: "csv", params: { skillIds: [12] } })).toEqual([]);
  });
});
