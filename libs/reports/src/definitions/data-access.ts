import { object } from "../record-access.js";
import type { ReportDefinition, SourceApi } from "../types.js";
import { recordsVersion, RECORD_FORMATS } from "./define.js";
import { noParams } from "./params.js";

/**
 * Data Access: the platform's prepared data files for the window (one session document per
 * NDJSON line), delivered as they came. The documents are deep and vary by data type, so
 * there is no flat form: these are raw reports.
 *
 * The platform writes a session into the hourly file of the hour it closed in, and publishes
 * 99.5% of the data within 6 hours of that (its documented SLA). A run reads the files of its
 * window once, so a file published after the run would never be delivered: tasks wait at least
 * that long after the window ends.
 */
const PUBLICATION_SLA_MINUTES = 6 * 60;

function dataAccessReport(id: string, name: string, source: SourceApi, what: string): ReportDefinition {
  return {
    id,
    name,
    description: `The Data Access ${what} data as the platform prepared it: the sessions of the hourly files for the window, each session in the window in which it closed. Tasks wait at least 6 hours after the window (the platform's publication time).`,
    category: "data-access",
    kind: "raw",
    source,
    window: "windowed",
    minDelayMinutes: PUBLICATION_SLA_MINUTES,
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
