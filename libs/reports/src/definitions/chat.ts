import { z } from "zod";
import { element, object, optionalArray, optionalId, optionalInstant, optionalNumber, optionalObject, optionalString, optionalText, requiredId, requiredInstant, requiredObject, type Json } from "../record-access.js";
import type { ReportDefinition, Row } from "../types.js";
import { column, recordsVersion, RECORD_FORMATS, rowsVersion, TABLE_FORMATS } from "./define.js";
import { agentIds, includeText, REDACTED, skillIds } from "./params.js";

/**
 * Engagement History (`interactionHistoryRecords[]`): one NDJSON line per chat engagement.
 * `info.duration` is in seconds in this API (Messaging Interactions uses milliseconds).
 */

interface Line {
  time: number;
  source: string | null;
  by: string | null;
  agentId: string | null;
  text: string | null;
  textType: string | null;
}

function readLines(record: Json): Line[] {
  const transcript = optionalObject(record, "transcript");
  if (!transcript) return [];
  const list = optionalArray(transcript, "lines", "transcript");
  const out: Line[] = new Array(list.length);
  for (let i = 0; i < list.length; i++) {
    const path = `transcript.lines[${i}]`;
    const l = element(list, i, "transcript.lines");
    const agentId = optionalId(l, "agentId", path);
    out[i] = {
      time: requiredInstant(l, "timeL", "time", path),
      source: optionalString(l, "source", path),
      by: optionalString(l, "by", path),
      agentId: agentId === "0" ? null : agentId,
      text: optionalText(l, "text", path),
      textType: optionalString(l, "textType", path),
    };
  }
  return out;
}

/** A survey's answers as one cell: "question: answer" pairs separated by " | ". */
function surveyText(surveys: Json | undefined, key: string): string | null {
  if (!surveys) return null;
  const list = optionalArray(surveys, key, "surveys");
  if (list.length === 0) return null;
  const parts: string[] = [];
  for (let i = 0; i < list.length; i++) {
    const path = `surveys.${key}[${i}]`;
    const s = element(list, i, `surveys.${key}`);
    parts.push(`${optionalText(s, "displayName", path) ?? optionalId(s, "questionID", path) ?? "?"}: ${optionalText(s, "value", path) ?? ""}`);
  }
  return parts.join(" | ");
}

function readEngagement(value: unknown): { record: Json; info: Json; engagementId: string; start: number } {
  const record = object(value, "");
  const info = requiredObject(record, "info");
  return {
    record,
    info,
    engagementId: requiredId(info, "engagementId", "info"),
    start: requiredInstant(info, "startTimeL", "startTime", "info"),
  };
}

const engagementsParams = z.strictObject({ skillIds, agentIds });

export const chatEngagements: ReportDefinition = {
  id: "chat-engagements",
  name: "Chat engagements",
  description: "One row per chat engagement: visitor, skill, agent, duration, transcript line counts and survey answers.",
  category: "chat",
  kind: "business",
  source: "engagement-history",
  window: "windowed",
  malformed: "skip",
  versions: [
    rowsVersion<z.infer<typeof engagementsParams>>({
      version: 1,
      released: "2026-11-01",
      notes: "First version.",
      params: engagementsParams,
      formats: TABLE_FORMATS,
      columns: [
        column("engagementId", "string", "Engagement id."),
        column("startTime", "datetime", "When the chat started."),
        column("endTime", "datetime", "When it ended."),
        column("durationSeconds", "number", "Chat duration in seconds."),
        column("visitorId", "string", "Visitor id."),
        column("visitorName", "string", "Name the visitor gave."),
        column("skillId", "string", "Skill id."),
        column("skillName", "string", "Skill name."),
        column("agentId", "string", "Agent id."),
        column("agentName", "string", "Agent's full name."),
        column("agentGroupId", "string", "Agent group id."),
        column("agentGroupName", "string", "Agent group name."),
        column("channel", "string", "Channel code."),
        column("startReason", "string", "Why the chat started."),
        column("endReason", "string", "Why the chat ended."),
        column("chatStartUrl", "string", "Page where the chat started."),
        column("country", "string", "Visitor's country."),
        column("device", "string", "Visitor's device."),
        column("visitorLines", "integer", "Transcript lines written by the visitor."),
        column("agentLines", "integer", "Transcript lines written by agents."),
        column("systemLines", "integer", "Other transcript lines (system messages)."),
        column("mcs", "integer", "Meaningful Connection Score 0–100 (info.chatMCS)."),
        column("preChatSurvey", "string", "Pre-chat survey answers, 'question: answer' separated by ' | '."),
        column("postChatSurvey", "string", "Post-chat survey answers."),
        column("operatorSurvey", "string", "Agent (operator) survey answers."),
      ],
      map(value) {
        const { record, info, engagementId, start } = readEngagement(value);
        const lines = readLines(record);
        let visitor = 0;
        let agent = 0;
        for (const l of lines) {
          if (l.source === "visitor") visitor += 1;
          else if (l.source === "agent") agent += 1;
        }
        const visitorInfo = optionalObject(record, "visitorInfo");
        const surveys = optionalObject(record, "surveys");
        return [
          [
            engagementId,
            start,
            optionalInstant(info, "endTimeL", "endTime", "info"),
            optionalNumber(info, "duration", "info"),
            optionalId(info, "visitorId", "info"),
            optionalText(info, "visitorName", "info"),
            optionalId(info, "skillId", "info"),
            optionalString(info, "skillName", "info"),
            optionalId(info, "agentId", "info"),
            optionalString(info, "agentFullName", "info"),
            optionalId(info, "agentGroupId", "info"),
            optionalString(info, "agentGroupName", "info"),
            optionalString(info, "channel", "info"),
            optionalString(info, "startReasonDesc", "info"),
            optionalString(info, "endReasonDesc", "info"),
            optionalString(info, "chatStartUrl", "info"),
            visitorInfo ? optionalString(visitorInfo, "country", "visitorInfo") : null,
            visitorInfo ? optionalString(visitorInfo, "device", "visitorInfo") : null,
            visitor,
            agent,
            lines.length - visitor - agent,
            optionalNumber(info, "chatMCS", "info"),
            surveyText(surveys, "preChat"),
            surveyText(surveys, "postChat"),
            surveyText(surveys, "operator"),
          ],
        ];
      },
    }),
  ],
};

const linesParams = z.strictObject({
  skillIds,
  agentIds,
  includeText,
  includeSystemLines: z.boolean().default(true).describe("Include system lines (greetings, 'you are now chatting with…')."),
});

export const chatTranscriptLines: ReportDefinition = {
  id: "chat-transcript-lines",
  name: "Chat transcript lines",
  description: "One row per transcript line of the window's chat engagements.",
  category: "chat",
  kind: "business",
  source: "engagement-history",
  window: "windowed",
  malformed: "skip",
  versions: [
    rowsVersion<z.infer<typeof linesParams>>({
      version: 1,
      released: "2026-11-01",
      notes: "First version.",
      params: linesParams,
      formats: TABLE_FORMATS,
      columns: [
        column("engagementId", "string", "Engagement id."),
        column("lineNumber", "integer", "1-based position of the line in the transcript."),
        column("time", "datetime", "When the line was written."),
        column("source", "string", "visitor, agent or system."),
        column("by", "string", "Display name of the writer."),
        column("agentId", "string", "Writing agent's id."),
        column("skillId", "string", "The engagement's skill id."),
        column("skillName", "string", "The engagement's skill name."),
        column("textType", "string", "plain or html."),
        column("text", "string", "Line text; [redacted] when params.includeText is false."),
      ],
      map(value, { params }) {
        const { record, info, engagementId } = readEngagement(value);
        const skillId = optionalId(info, "skillId", "info");
        const skillName = optionalString(info, "skillName", "info");
        const lines = readLines(record);
        const rows: Row[] = [];
        for (let i = 0; i < lines.length; i++) {
          const l = lines[i]!;
          if (!params.includeSystemLines && l.source !== "visitor" && l.source !== "agent") continue;
          rows.push([
            engagementId,
            i + 1,
            l.time,
            l.source,
            l.by,
            l.agentId,
            skillId,
            skillName,
            l.textType,
            l.text === null ? null : params.includeText ? l.text : REDACTED,
          ]);
        }
        return rows;
      },
    }),
  ],
};

const rawEngagementsParams = z.strictObject({ skillIds, agentIds });

export const chatEngagementsRaw: ReportDefinition = {
  id: "chat-engagements-raw",
  name: "Chat engagements (raw)",
  description: "The engagement records exactly as the Engagement History API returned them.",
  category: "chat",
  kind: "raw",
  source: "engagement-history",
  window: "windowed",
  malformed: "skip",
  versions: [
    recordsVersion<z.infer<typeof rawEngagementsParams>>({
      version: 1,
      released: "2026-11-01",
      notes: "First version.",
      params: rawEngagementsParams,
      formats: RECORD_FORMATS,
      check(record) {
        requiredId(requiredObject(object(record, ""), "info"), "engagementId", "info");
      },
    }),
  ],
};
