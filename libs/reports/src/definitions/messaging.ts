import { z } from "zod";
import { element, object, optionalArray, optionalId, optionalInstant, optionalNumber, optionalObject, optionalString, optionalText, requiredId, requiredInstant, requiredObject, type Json } from "../record-access.js";
import type { ReportDefinition, Row } from "../types.js";
import { column, recordsVersion, RECORD_FORMATS, rowsVersion, TABLE_FORMATS } from "./define.js";
import { agentGroupIds, agentIds, conversationStatus, includeText, REDACTED, skillIds } from "./params.js";

/**
 * Messaging Interactions (`conversationHistoryRecords[]`): one NDJSON line per conversation.
 * Field names follow the platform's documentation; see docs/SOURCES.md.
 */

interface Message {
  messageId: string;
  seq: number | null;
  time: number;
  sentBy: string | null;
  side: "consumer" | "agent" | "other";
  participantId: string | null;
  type: string | null;
  dialogId: string | null;
  text: string | null;
}

interface Agent {
  agentId: string;
  fullName: string | null;
  time: number | null;
}

interface Conversation {
  info: Json;
  conversationId: string;
  start: number;
  end: number | null;
  messages: Message[];
  /** Agents that took part (readers, e.g. managers watching, excluded), by join time. */
  agents: Agent[];
  agentNames: Map<string, string | null>;
}

function sideOf(sentBy: string | null): Message["side"] {
  const s = sentBy?.toLowerCase();
  return s === "consumer" ? "consumer" : s === "agent" ? "agent" : "other";
}

function readMessages(record: Json): Message[] {
  const list = optionalArray(record, "messageRecords");
  const out: Message[] = new Array(list.length);
  for (let i = 0; i < list.length; i++) {
    const path = `messageRecords[${i}]`;
    const m = element(list, i, "messageRecords");
    const data = optionalObject(m, "messageData", path);
    const msg = data ? optionalObject(data, "msg", `${path}.messageData`) : undefined;
    const sentBy = optionalString(m, "sentBy", path);
    out[i] = {
      messageId: requiredId(m, "messageId", path),
      seq: optionalNumber(m, "seq", path),
      time: requiredInstant(m, "timeL", "time", path),
      sentBy,
      side: sideOf(sentBy),
      participantId: optionalId(m, "participantId", path),
      type: optionalString(m, "type", path),
      dialogId: optionalId(m, "dialogId", path),
      text: msg ? optionalText(msg, "text", `${path}.messageData.msg`) : null,
    };
  }
  return out;
}

const NO_AGENTS: { agents: Agent[]; names: Map<string, string | null> } = Object.freeze({ agents: [], names: new Map() });

function readAgents(record: Json): { agents: Agent[]; names: Map<string, string | null> } {
  const list = optionalArray(record, "agentParticipants");
  if (list.length === 0) return NO_AGENTS;
  const agents: Agent[] = [];
  const names = new Map<string, string | null>();
  for (let i = 0; i < list.length; i++) {
    const path = `agentParticipants[${i}]`;
    const a = element(list, i, "agentParticipants");
    const agentId = optionalId(a, "agentId", path);
    if (agentId === null) continue;
    const fullName = optionalString(a, "agentFullName", path);
    names.set(agentId, fullName);
    if (optionalString(a, "permission", path)?.toLowerCase() === "reader") continue;
    agents.push({ agentId, fullName, time: optionalInstant(a, "timeL", "time", path) });
  }
  // Stable: agents with the same (or no) join time keep the record's order.
  if (agents.length > 1) agents.sort((x, y) => (x.time ?? Number.MAX_SAFE_INTEGER) - (y.time ?? Number.MAX_SAFE_INTEGER));
  return { agents, names };
}

function readConversation(value: unknown): Conversation {
  const record = object(value, "");
  const info = requiredObject(record, "info");
  const { agents, names } = readAgents(record);
  return {
    info,
    conversationId: requiredId(info, "conversationId", "info"),
    start: requiredInstant(info, "startTimeL", "startTime", "info"),
    end: optionalInstant(info, "endTimeL", "endTime", "info"),
    messages: readMessages(record),
    agents,
    agentNames: names,
  };
}

/** Seconds from the first consumer message to the first agent message after it. */
function firstResponseSeconds(messages: Message[]): number | null {
  let asked: number | null = null;
  for (const m of messages) {
    if (asked === null) {
      if (m.side === "consumer") asked = m.time;
    } else if (m.side === "agent" && m.time >= asked) {
      return (m.time - asked) / 1000;
    }
  }
  return null;
}

interface SurveyAnswer {
  surveyType: string | null;
  question: string | null;
  answer: string | null;
}

function surveyAnswers(record: Json): SurveyAnswer[] {
  const out: SurveyAnswer[] = [];
  const surveys = optionalArray(record, "conversationSurveys");
  for (let i = 0; i < surveys.length; i++) {
    const path = `conversationSurveys[${i}]`;
    const s = element(surveys, i, "conversationSurveys");
    const surveyType = optionalString(s, "surveyType", path);
    const data = optionalArray(s, "surveyData", path);
    for (let j = 0; j < data.length; j++) {
      const d = element(data, j, `${path}.surveyData`);
      out.push({
        surveyType,
        question: optionalText(d, "question", `${path}.surveyData[${j}]`),
        answer: optionalText(d, "answer", `${path}.surveyData[${j}]`),
      });
    }
  }
  return out;
}

/** First Contact Resolution: the documented "Confirm Resolution" question, answered Yes or No. */
function fcrOf(answers: SurveyAnswer[]): boolean | null {
  for (const a of answers) {
    if (a.question?.trim().toLowerCase() !== "confirm resolution" || a.answer === null) continue;
    const v = a.answer.trim().toLowerCase();
    if (v === "yes") return true;
    if (v === "no") return false;
  }
  return null;
}

/** NPS: the 0–10 answer of a survey whose surveyType is "NPS". */
function npsOf(answers: SurveyAnswer[]): number | null {
  for (const a of answers) {
    if (a.surveyType?.toUpperCase() !== "NPS" || a.answer === null) continue;
    const n = Number(a.answer.trim());
    if (a.answer.trim() !== "" && Number.isInteger(n) && n >= 0 && n <= 10) return n;
  }
  return null;
}

/** CSAT 1–5: `info.csat` as documented, or `info.csatRate` as older examples name it. */
function csatOf(info: Json): number | null {
  return optionalNumber(info, "csat", "info") ?? optionalNumber(info, "csatRate", "info");
}

function durationSeconds(c: Conversation): number | null {
  const ms = optionalNumber(c.info, "duration", "info");
  if (ms !== null && ms >= 0) return ms / 1000;
  return c.end !== null ? (c.end - c.start) / 1000 : null;
}

function transcriptOf(c: Conversation): string {
  return c.messages
    .filter((m) => m.text !== null)
    .map((m) => {
      const who = m.side === "agent" ? c.agentNames.get(m.participantId ?? "") ?? "Agent" : m.side === "consumer" ? "Consumer" : (m.sentBy ?? "System");
      return `${who}: ${m.text}`;
    })
    .join("\n");
}

const conversationColumnsV1 = [
  column("conversationId", "string", "Conversation id."),
  column("startTime", "datetime", "When the conversation started, in the account's time zone."),
  column("endTime", "datetime", "When it ended; empty while open."),
  column("durationSeconds", "number", "Duration in seconds (until retrieval for open conversations)."),
  column("status", "string", "Latest status: OPEN or CLOSE."),
  column("closeReason", "string", "Who closed it: AGENT, CONSUMER or SYSTEM."),
  column("closeReasonDescription", "string", "Close reason detail."),
  column("channel", "string", "Source channel the conversation was opened from (info.source)."),
  column("device", "string", "Device the conversation was opened from."),
  column("skillId", "string", "Latest skill id."),
  column("skillName", "string", "Latest skill name."),
  column("agentGroupId", "string", "Group of the latest agent."),
  column("agentGroupName", "string", "Group name of the latest agent."),
  column("firstAgentId", "string", "First agent to join (readers excluded)."),
  column("firstAgentName", "string", "First agent's full name."),
  column("lastAgentId", "string", "Latest agent the conversation was assigned to."),
  column("lastAgentName", "string", "Latest agent's full name."),
  column("agentCount", "integer", "Distinct agents that took part (readers excluded)."),
  column("consumerMessages", "integer", "Messages sent by the consumer."),
  column("agentMessages", "integer", "Messages sent by agents."),
  column("firstResponseSeconds", "number", "Seconds from the first consumer message to the first agent reply."),
  column("csat", "integer", "CSAT 1–5 where given."),
  column("nps", "integer", "NPS 0–10 where an NPS survey was answered."),
  column("fcr", "boolean", "First contact resolution (the Confirm Resolution survey answer) where given."),
  column("mcs", "integer", "Meaningful Connection Score 0–100."),
] as const;

function conversationRowV1(c: Conversation, answers: SurveyAnswer[]): Row {
  const { info, messages, agents } = c;
  let consumer = 0;
  let agent = 0;
  for (const m of messages) {
    if (m.side === "consumer") consumer += 1;
    else if (m.side === "agent") agent += 1;
  }
  const first = agents[0];
  return [
    c.conversationId,
    c.start,
    c.end,
    durationSeconds(c),
    optionalString(info, "status", "info"),
    optionalString(info, "closeReason", "info"),
    optionalString(info, "closeReasonDescription", "info"),
    optionalString(info, "source", "info"),
    optionalString(info, "device", "info"),
    optionalId(info, "latestSkillId", "info"),
    optionalString(info, "latestSkillName", "info"),
    optionalId(info, "latestAgentGroupId", "info"),
    optionalString(info, "latestAgentGroupName", "info"),
    first?.agentId ?? null,
    first?.fullName ?? null,
    optionalId(info, "latestAgentId", "info"),
    optionalString(info, "latestAgentFullName", "info"),
    agents.length < 2 ? agents.length : new Set(agents.map((a) => a.agentId)).size,
    consumer,
    agent,
    firstResponseSeconds(messages),
    csatOf(info),
    npsOf(answers),
    fcrOf(answers),
    optionalNumber(info, "mcs", "info"),
  ];
}

const conversationsParamsV1 = z.strictObject({ skillIds, agentIds, agentGroupIds, status: conversationStatus });
const conversationsParamsV2 = z.strictObject({
  skillIds,
  agentIds,
  agentGroupIds,
  status: conversationStatus,
  includeTranscript: z.boolean().default(false).describe("Fill the transcript column with every message's text."),
});

export const messagingConversations: ReportDefinition = {
  id: "messaging-conversations",
  name: "Messaging conversations",
  description: "One row per messaging conversation: times, duration, status, channel, skill, agents, message counts, first response time and survey scores.",
  category: "messaging",
  kind: "business",
  source: "messaging-interactions",
  window: "windowed",
  malformed: "skip",
  versions: [
    rowsVersion<z.infer<typeof conversationsParamsV1>>({
      version: 1,
      released: "2026-11-01",
      notes: "First version.",
      params: conversationsParamsV1,
      formats: TABLE_FORMATS,
      sourceContent: ["messageRecords", "agentParticipants", "conversationSurveys"],
      columns: conversationColumnsV1,
      map(record) {
        const c = readConversation(record);
        return [conversationRowV1(c, surveyAnswers(record as Json))];
      },
    }),
    rowsVersion<z.infer<typeof conversationsParamsV2>>({
      version: 2,
      released: "2026-11-20",
      notes: "Adds transferCount, summary and an optional transcript column.",
      params: conversationsParamsV2,
      formats: TABLE_FORMATS,
      sourceContent: ["messageRecords", "agentParticipants", "conversationSurveys", "transfers", "summary"],
      columns: [
        ...conversationColumnsV1,
        column("transferCount", "integer", "Transfers during the conversation."),
        column("summary", "string", "The conversation's summary text."),
        column("transcript", "string", "Every message as 'who: text', one per line (params.includeTranscript)."),
      ],
      map(record, { params }) {
        const c = readConversation(record);
        const json = record as Json;
        const summary = optionalObject(json, "summary");
        const text = summary ? optionalText(summary, "text", "summary") : null;
        return [
          [
            ...conversationRowV1(c, surveyAnswers(json)),
            optionalArray(json, "transfers").length,
            text === "" ? null : text,
            params.includeTranscript ? transcriptOf(c) : null,
          ],
        ];
      },
    }),
  ],
};

const messagesParams = z.strictObject({ skillIds, agentIds, agentGroupIds, status: conversationStatus, includeText });

export const messagingMessages: ReportDefinition = {
  id: "messaging-messages",
  name: "Messaging messages",
  description: "One row per message of the window's conversations: time, side, participant, skill and text (or redacted).",
  category: "messaging",
  kind: "business",
  source: "messaging-interactions",
  window: "windowed",
  malformed: "skip",
  versions: [
    rowsVersion<z.infer<typeof messagesParams>>({
      version: 1,
      released: "2026-11-01",
      notes: "First version.",
      params: messagesParams,
      formats: TABLE_FORMATS,
      sourceContent: ["messageRecords", "agentParticipants"],
      columns: [
        column("conversationId", "string", "Conversation id."),
        column("messageId", "string", "Message id."),
        column("seq", "integer", "Sequence in the conversation (not necessarily continuous)."),
        column("time", "datetime", "When the message was sent."),
        column("side", "string", "consumer, agent or other (system, bot)."),
        column("sentBy", "string", "The platform's sentBy value."),
        column("participantId", "string", "Sender's participant id."),
        column("agentName", "string", "Full name of the sending agent."),
        column("skillId", "string", "The conversation's latest skill id."),
        column("skillName", "string", "The conversation's latest skill name."),
        column("type", "string", "Content type, e.g. TEXT_PLAIN, RICH_CONTENT."),
        column("dialogId", "string", "Dialog the message belongs to."),
        column("text", "string", "Message text; [redacted] when params.includeText is false."),
      ],
      map(record, { params }) {
        const c = readConversation(record);
        const skillId = optionalId(c.info, "latestSkillId", "info");
        const skillName = optionalString(c.info, "latestSkillName", "info");
        return c.messages.map((m) => [
          c.conversationId,
          m.messageId,
          m.seq,
          m.time,
          m.side,
          m.sentBy,
          m.participantId,
          m.side === "agent" ? (c.agentNames.get(m.participantId ?? "") ?? null) : null,
          skillId,
          skillName,
          m.type,
          m.dialogId,
          m.text === null ? null : params.includeText ? m.text : REDACTED,
        ]);
      },
    }),
  ],
};

const rawConversationsParams = z.strictObject({ skillIds, agentIds, agentGroupIds, status: conversationStatus });

export const messagingConversationsRaw: ReportDefinition = {
  id: "messaging-conversations-raw",
  name: "Messaging conversations (raw)",
  description: "The conversation records exactly as the Messaging Interactions API returned them.",
  category: "messaging",
  kind: "raw",
  source: "messaging-interactions",
  window: "windowed",
  malformed: "skip",
  versions: [
    recordsVersion<z.infer<typeof rawConversationsParams>>({
      version: 1,
      released: "2026-11-01",
      notes: "First version.",
      params: rawConversationsParams,
      formats: RECORD_FORMATS,
      check(record) {
        const info = requiredObject(object(record, ""), "info");
        requiredId(info, "conversationId", "info");
      },
    }),
  ],
};
