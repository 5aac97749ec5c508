import { z } from "zod";
import { MalformedRecordError } from "../errors.js";
import {
  element,
  isWritableInstant,
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
 * (queue health) or per interval and agent (agent activity), with `intervalMinutes` the interval's
 * length and `timestamp` (epoch ms) what each method documents: the interval's START for
 * msgqueuehealth, its END for agentactivity ("the UTC timestamp in milliseconds representing the
 * end time of the interval": 07:30–08:00 → 08:00).
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

interface Interval {
  start: number;
  end: number;
  minutes: number;
}

/**
 * The platform aggregates by whole minutes (`interval=<minutes>`; no fixed set of values is
 * documented) over short look-backs of hours, so a length is a whole number of minutes from 1 to
 * a day (1440). Anything else (a fraction, zero, a negative, 1e12) would be written as a garbled,
 * reversed or unwritable interval end.
 */
const MAX_INTERVAL_MINUTES = 1440;

function intervalMinutesOf(record: Json): number {
  const minutes = requiredNumber(record, "intervalMinutes");
  if (Number.isInteger(minutes) && minutes >= 1 && minutes <= MAX_INTERVAL_MINUTES) return minutes;
  throw new MalformedRecordError("intervalMinutes", `expected whole minutes from 1 to ${MAX_INTERVAL_MINUTES}, got ${minutes}`);
}

/** The interval's other end, `minutes` from `timestamp`, must be writable too (1970 to 9999). */
function otherEnd(timestamp: number, minutes: number, direction: 1 | -1): number {
  const ms = timestamp + direction * minutes * 60_000;
  if (isWritableInstant(ms)) return ms;
  const which = direction > 0 ? "ends after 9999" : "starts before 1970";
  throw new MalformedRecordError("timestamp", `the ${minutes}-minute interval at ${timestamp} ${which}`);
}

/** The interval of a record whose `timestamp` marks its start (msgqueuehealth). */
function intervalFromStart(record: Json): Interval {
  const start = requiredInstant(record, "timestamp", null);
  const minutes = intervalMinutesOf(record);
  return { start, end: otherEnd(start, minutes, 1), minutes };
}

/** The interval of a record whose `timestamp` marks its end (agentactivity). */
function intervalFromEnd(record: Json): Interval {
  const end = requiredInstant(record, "timestamp", null);
  const minutes = intervalMinutesOf(record);
  return { start: otherEnd(end, minutes, -1), end, minutes };
}

/**
 * The Messaging Operations API answers for at most the last 1440 minutes (timeframe ≤ 1440) from
 * the moment it is asked: a window's data must still be within that when its run fetches it.
 */
const LOOK_BACK_MINUTES = 1440;
const LOOK_BACK_NOTE = " The platform answers for the last 24 hours only: a task's window, delay and interval must fit in them (an interval schedule; daily and weekly windows reach back too far).";

const queueParams = z.strictObject({ skillIds, intervalMinutes });

export const wfmQueueHealth: ReportDefinition = {
  id: "wfm-queue-health",
  name: "Queue health per skill and interval",
  description: "Workforce management: queue figures per skill and interval from Messaging Operations." + LOOK_BACK_NOTE,
  category: "messaging",
  kind: "wfm-business",
  source: "messaging-operations-queue-health",
  window: "windowed",
  maxLookBackMinutes: LOOK_BACK_MINUTES,
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
        const { start, end, minutes } = intervalFromStart(record);
        return [
          [
            start,
            end,
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

/**
 * The documented agentactivity method filters by agent only (agentIds; no skillIds), so a skill
 * filter is refused when the task is created instead of being silently ignored.
 */
const activityParams = z.strictObject(
  { agentIds, intervalMinutes },
  {
    error: (issue) => {
      if (issue.code !== "unrecognized_keys" || !issue.keys.includes("skillIds")) return undefined;
      const others = issue.keys.filter((k) => k !== "skillIds");
      return `skillIds is not supported: the platform's agent activity API has no skill filter (filter by agentIds)${others.length > 0 ? `; unrecognized key(s): ${others.join(", ")}` : ""}`;
    },
  },
);

export const wfmAgentActivity: ReportDefinition = {
  id: "wfm-agent-activity",
  name: "Agent activity per interval",
  description: "Workforce management: time per agent state (online, back soon, away), chatting time and handled conversations, per agent and interval." + LOOK_BACK_NOTE,
  category: "messaging",
  kind: "wfm-business",
  source: "messaging-operations-agent-activity",
  window: "windowed",
  maxLookBackMinutes: LOOK_BACK_MINUTES,
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
        const { start, end, minutes } = intervalFromEnd(record);
        const states = readStates(record);
        const loggedIn = states.get("logged in");
        return [
          [
            start,
            end,
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

function checkInterval(value: unknown, read: (record: Json) => Interval): Json {
  const record = object(value, "");
  read(record);
  return record;
}

export const wfmQueueHealthRaw: ReportDefinition = {
  id: "wfm-queue-health-raw",
  name: "Queue health (raw)",
  description: "Workforce management: Messaging Operations queue-health records as they came." + LOOK_BACK_NOTE,
  category: "messaging",
  kind: "wfm-raw",
  source: "messaging-operations-queue-health",
  window: "windowed",
  maxLookBackMinutes: LOOK_BACK_MINUTES,
  malformed: "skip",
  versions: [
    recordsVersion<z.infer<typeof queueParams>>({
      version: 1,
      released: "2026-11-01",
      notes: "First version.",
      params: queueParams,
      formats: RECORD_FORMATS,
      check(value) {
        requiredId(checkInterval(value, intervalFromStart), "skillId");
      },
    }),
  ],
};

export const wfmAgentActivityRaw: ReportDefinition = {
  id: "wfm-agent-activity-raw",
  name: "Agent activity (raw)",
  description: "Workforce management: Messaging Operations agent-activity records as they came." + LOOK_BACK_NOTE,
  category: "messaging",
  kind: "wfm-raw",
  source: "messaging-operations-agent-activity",
  window: "windowed",
  maxLookBackMinutes: LOOK_BACK_MINUTES,
  malformed: "skip",
  versions: [
    recordsVersion<z.infer<typeof activityParams>>({
      version: 1,
      released: "2026-11-01",
      notes: "First version.",
      params: activityParams,
      formats: RECORD_FORMATS,
      check(value) {
        requiredId(checkInterval(value, intervalFromEnd), "agentId");
      },
    }),
  ],
};
