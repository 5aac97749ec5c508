import { z } from "zod";
import {
  element,
  object,
  optionalArray,
  optionalId,
  optionalNumber,
  optionalObject,
  optionalString,
  requiredId,
  requiredInstant,
  requiredNumber,
  type Json,
} from "../record-access.js";
import type { ReportDefinition } from "../types.js";
import { column, recordsVersion, RECORD_FORMATS, rowsVersion, TABLE_FORMATS } from "./define.js";
import { agentIds, intervalMinutes, skillIds } from "./params.js";

/**
 * Messaging Operations, as the connector stores it: one NDJSON line per interval and skill
 * (queue health) or per interval and agent (agent activity), `timestamp` being the interval's
 * start in epoch ms and `intervalMinutes` its length.
 */

const QUEUE_METRICS = [
  ["unassignedConversations", "Unassigned conversations (actionable + not actionable), interval average."],
  ["actionableConversations", "Actionable conversations in queue."],
  ["notActionableConversations", "Not actionable conversations in queue."],
  ["actionableAndManualSla", "Actionable conversations with a manual SLA."],
  ["actionableAndDuringTransfer", "Actionable conversations being transferred."],
  ["actionableAndConsumerLastMessage", "Actionable conversations where the consumer wrote last."],
  ["notActionableDuringTransfer", "Not actionable conversations being transferred."],
  ["notActionableAndManualSla", "Not actionable conversations with a manual SLA."],
  ["unassignedConversationsAndFirstTimeConsumer", "Unassigned conversations of first-time consumers."],
] as const;

function interval(record: Json): { start: number; minutes: number } {
  const start = requiredInstant(record, "timestamp", null);
  const minutes = requiredNumber(record, "intervalMinutes");
  return { start, minutes };
}

const queueParams = z.strictObject({ skillIds, intervalMinutes });

export const wfmQueueHealth: ReportDefinition = {
  id: "wfm-queue-health",
  name: "Queue health per skill and interval",
  description: "Workforce management: queue figures per skill and interval from Messaging Operations.",
  category: "messaging",
  kind: "wfm-business",
  source: "messaging-operations-queue-health",
  window: "windowed",
  malformed: "skip",
  versions: [
    rowsVersion<z.infer<typeof queueParams>>({
      version: 1,
      released: "2026-11-01",
      notes: "First version.",
      params: queueParams,
      formats: TABLE_FORMATS,
      columns: [
        column("intervalStart", "datetime", "Start of the interval."),
        column("intervalEnd", "datetime", "End of the interval."),
        column("intervalMinutes", "integer", "Interval length in minutes."),
        column("skillId", "string", "Skill id."),
        ...QUEUE_METRICS.map(([key, description]) => column(key, "number", description)),
      ],
      map(value) {
        const record = object(value, "");
        const { start, minutes } = interval(record);
        return [
          [
            start,
            start + minutes * 60_000,
            minutes,
            requiredId(record, "skillId"),
            ...QUEUE_METRICS.map(([key]) => optionalNumber(record, key)),
          ],
        ];
      },
    }),
  ],
};

interface StateTime {
  total: number;
  chatting: number | null;
  notChatting: number | null;
}

/** The agent's states by name ("Online", "Back in 5", "Away", "Logged in"). */
function readStates(record: Json): Map<string, StateTime> {
  const list = optionalArray(record, "states");
  const out = new Map<string, StateTime>();
  for (let i = 0; i < list.length; i++) {
    const path = `states[${i}]`;
    const s = element(list, i, "states");
    const name = optionalString(s, "name", path);
    const v = optionalObject(s, "value", path);
    if (name === null || !v) continue;
    out.set(name.toLowerCase(), {
      total: requiredNumber(v, "total", `${path}.value`),
      chatting: optionalNumber(v, "chatting", `${path}.value`),
      notChatting: optionalNumber(v, "notChatting", `${path}.value`),
    });
  }
  return out;
}

const activityParams = z.strictObject({ agentIds, skillIds, intervalMinutes });

export const wfmAgentActivity: ReportDefinition = {
  id: "wfm-agent-activity",
  name: "Agent activity per interval",
  description: "Workforce management: time per agent state (online, back soon, away), chatting time and handled conversations, per agent (and skill where given) and interval.",
  category: "messaging",
  kind: "wfm-business",
  source: "messaging-operations-agent-activity",
  window: "windowed",
  malformed: "skip",
  versions: [
    rowsVersion<z.infer<typeof activityParams>>({
      version: 1,
      released: "2026-11-01",
      notes: "First version.",
      params: activityParams,
      formats: TABLE_FORMATS,
      columns: [
        column("intervalStart", "datetime", "Start of the interval."),
        column("intervalEnd", "datetime", "End of the interval."),
        column("intervalMinutes", "integer", "Interval length in minutes."),
        column("agentId", "string", "Agent id."),
        column("skillId", "string", "Skill id, when the source splits activity by skill."),
        column("loggedInSeconds", "number", "Seconds logged in."),
        column("onlineSeconds", "number", "Seconds in state Online."),
        column("backSoonSeconds", "number", "Seconds in state Back in 5."),
        column("awaySeconds", "number", "Seconds in state Away."),
        column("chattingSeconds", "number", "Seconds logged in with at least one conversation."),
        column("notChattingSeconds", "number", "Seconds logged in without a conversation."),
        column("handledConversations", "integer", "Conversations handled in the interval, where the source gives it."),
      ],
      map(value) {
        const record = object(value, "");
        const { start, minutes } = interval(record);
        const states = readStates(record);
        const loggedIn = states.get("logged in");
        return [
          [
            start,
            start + minutes * 60_000,
            minutes,
            requiredId(record, "agentId"),
            optionalId(record, "skillId"),
            loggedIn?.total ?? null,
            states.get("online")?.total ?? null,
            states.get("back in 5")?.total ?? null,
            states.get("away")?.total ?? null,
            loggedIn?.chatting ?? null,
            loggedIn?.notChatting ?? null,
            optionalNumber(record, "handledConversations"),
          ],
        ];
      },
    }),
  ],
};

function checkInterval(value: unknown): Json {
  const record = object(value, "");
  interval(record);
  return record;
}

export const wfmQueueHealthRaw: ReportDefinition = {
  id: "wfm-queue-health-raw",
  name: "Queue health (raw)",
  description: "Workforce management: Messaging Operations queue-health records as they came.",
  category: "messaging",
  kind: "wfm-raw",
  source: "messaging-operations-queue-health",
  window: "windowed",
  malformed: "skip",
  versions: [
    recordsVersion<z.infer<typeof queueParams>>({
      version: 1,
      released: "2026-11-01",
      notes: "First version.",
      params: queueParams,
      formats: RECORD_FORMATS,
      check(value) {
        requiredId(checkInterval(value), "skillId");
      },
    }),
  ],
};

export const wfmAgentActivityRaw: ReportDefinition = {
  id: "wfm-agent-activity-raw",
  name: "Agent activity (raw)",
  description: "Workforce management: Messaging Operations agent-activity records as they came.",
  category: "messaging",
  kind: "wfm-raw",
  source: "messaging-operations-agent-activity",
  window: "windowed",
  malformed: "skip",
  versions: [
    recordsVersion<z.infer<typeof activityParams>>({
      version: 1,
      released: "2026-11-01",
      notes: "First version.",
      params: activityParams,
      formats: RECORD_FORMATS,
      check(value) {
        requiredId(checkInterval(value), "agentId");
      },
    }),
  ],
};
