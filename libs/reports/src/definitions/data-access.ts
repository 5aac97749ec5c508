import { object } from "../record-access.js";
import type { ReportDefinition, SourceApi } from "../types.js";
import { recordsVersion, RECORD_FORMATS } from "./define.js";
import { noParams } from "./params.js";

/**
 * Data Access: the platform's prepared data files for the window (one session document per
 * NDJSON line), delivered as they came. The documents are deep and vary by data type, so
 * there is no flat form: these are raw reports.
 */
function dataAccessReport(id: string, name: string, source: SourceApi, what: string): ReportDefinition {
  return {
    id,
    name,
    description: `The Data Access ${what} data for the window, as the platform prepared it.`,
    category: "data-access",
    kind: "raw",
    source,
    window: "windowed",
    malformed: "skip",
    versions: [
      recordsVersion<Record<string, never>>({
        version: 1,
        released: "2026-11-01",
        notes: "First version.",
        params: noParams,
        formats: RECORD_FORMATS,
        check(record) {
          object(record, "");
        },
      }),
    ],
  };
}

export const dataAccessAgentActivity = dataAccessReport("data-access-agent-activity", "Data Access: agent activity", "data-access-agent-activity", "agent activity");
export const dataAccessWebSessions = dataAccessReport("data-access-web-sessions", "Data Access: web sessions", "data-access-web-session", "web session");
export const dataAccessEngagements = dataAccessReport("data-access-engagements", "Data Access: engagements", "data-access-engagement", "engagement");
export const dataAccessSurveys = dataAccessReport("data-access-surveys", "Data Access: surveys", "data-access-survey", "survey");
