import { describe, expect, it } from "vitest";
import { getReport, type Row } from "../src/index.js";

/** Maps one record through a report version and returns rows keyed by column. */
function rowsOf(reportId: string, version: number, record: unknown, params: Record<string, unknown> = {}): Record<string, Row[number]>[] {
  const v = getReport(reportId, version).version;
  if (v.shape !== "rows") throw new Error(`${reportId} has no rows`);
  const parsed = v.params.parse(params);
  return v.map(record, { params: parsed }).map((row) => {
    expect(row).toHaveLength(v.columns.length);
    return Object.fromEntries(v.columns.map((c, i) => [c.key, row[i]!]));
  });
}

const T0 = Date.UTC(2026, 10, 20, 9, 0, 0);

const conversation = {
  info: {
    conversationId: "conv-1",
    startTime: "2026-11-20 09:00:00.000+0000",
    endTimeL: -1,
    endTime: "undefined",
    duration: 95_500,
    status: "OPEN",
    latestAgentId: "200",
    latestAgentFullName: "Second Agent",
    latestSkillId: -1,
    latestSkillName: "Unassigned",
    csatRate: 5,
    mcs: 67,
  },
  agentParticipants: [
    { agentId: "200", agentFullName: "Second Agent", timeL: T0 + 60_000, permission: "ASSIGNED_AGENT" },
    { agentId: "900", agentFullName: "Watching Manager", timeL: T0 + 1_000, permission: "READER" },
    { agentId: "100", agentFullName: "First Agent", timeL: T0 + 5_000, permission: "ASSIGNED_AGENT" },
  ],
  messageRecords: [
    { messageId: "m0", seq: 0, timeL: T0 + 2_000, sentBy: "Agent", participantId: "100", messageData: { msg: { text: "Welcome" } } },
    { messageId: "m1", seq: 1, timeL: T0 + 10_000, sentBy: "Consumer", participantId: "c", messageData: { msg: { text: "Help" } } },
    { messageId: "m2", seq: 2, timeL: T0 + 12_500, sentBy: "Consumer", participantId: "c", messageData: { msg: { text: "Anyone?" } } },
    { messageId: "m3", seq: 3, timeL: T0 + 40_250, sentBy: "Agent", participantId: "200", messageData: { msg: { text: "Here" } } },
    { messageId: "m4", seq: 4, timeL: T0 + 41_000, sentBy: "System", type: "RICH_CONTENT", messageData: { richContent: { content: "{}" } } },
  ],
  transfers: [{ timeL: T0 + 30_000, targetSkillId: 5 }],
  conversationSurveys: [
    { surveyType: "Satisfaction", surveyData: [{ question: "Confirm Resolution", answer: "No" }] },
    { surveyType: "NPS", surveyData: [{ question: "How likely are you to recommend us?", answer: "9" }] },
  ],
  summary: { text: "Asked twice" },
};

describe("messaging definitions", () => {
  it("derives conversation figures from the documented fields", () => {
    const [row] = rowsOf("messaging-conversations", 2, conversation, { includeTranscript: true });
    expect(row).toMatchObject({
      conversationId: "conv-1",
      startTime: T0,
      endTime: null,
      durationSeconds: 95.5,
      status: "OPEN",
      skillId: "-1",
      firstAgentId: "100",
      firstAgentName: "First Agent",
      lastAgentId: "200",
      agentCount: 2,
      consumerMessages: 2,
      agentMessages: 2,
      firstResponseSeconds: 30.25,
      csat: 5,
      nps: 9,
      fcr: false,
      mcs: 67,
      transferCount: 1,
      summary: "Asked twice",
      transcript: "First Agent: Welcome\nConsumer: Help\nConsumer: Anyone?\nSecond Agent: Here",
    });
    expect(rowsOf("messaging-conversations", 2, conversation)[0]!.transcript).toBeNull();
    // The pinned v1 has none of v2's columns.
    expect(Object.keys(rowsOf("messaging-conversations", 1, conversation)[0]!)).not.toContain("transferCount");
  });

  it("has no first response when nobody answered the consumer", () => {
    const unanswered = { ...conversation, messageRecords: conversation.messageRecords.slice(0, 3) };
    expect(rowsOf("messaging-conversations", 1, unanswered)[0]!.firstResponseSeconds).toBeNull();
  });

  it("gives one row per message, with text or redacted", () => {
    const rows = rowsOf("messaging-messages", 1, conversation);
    expect(rows.map((r) => [r.messageId, r.side, r.agentName, r.text])).toEqual([
      ["m0", "agent", "First Agent", "Welcome"],
      ["m1", "consumer", null, "Help"],
      ["m2", "consumer", null, "Anyone?"],
      ["m3", "agent", "Second Agent", "Here"],
      ["m4", "other", null, null],
    ]);
    expect(rowsOf("messaging-messages", 1, conversation, { includeText: false }).map((r) => r.text)).toEqual([
      "[redacted]",
      "[redacted]",
      "[redacted]",
      "[redacted]",
      null,
    ]);
  });
});

describe("chat definitions", () => {
  const engagement = {
    info: { engagementId: "e-1", startTimeL: T0, endTimeL: T0 + 60_000, duration: 60, skillId: 7, channel: 1 },
    transcript: {
      lines: [
        { timeL: T0, text: "You are now chatting with Ann.", source: "system", by: "info", agentId: 0 },
        { timeL: T0 + 1_000, text: "hi", source: "visitor", by: "Zoë", agentId: 0 },
        { timeL: T0 + 2_000, text: "hello", source: "agent", by: "Ann", agentId: 44 },
      ],
    },
    surveys: { postChat: [{ displayName: "Rating", value: "5", questionID: "2001" }, { questionID: "2002", value: "ok" }] },
  };

  it("counts lines by side and flattens survey answers", () => {
    const [row] = rowsOf("chat-engagements", 1, engagement);
    expect(row).toMatchObject({ visitorLines: 1, agentLines: 1, systemLines: 1, durationSeconds: 60, channel: "1", skillId: "7", postChatSurvey: "Rating: 5 | 2002: ok", preChatSurvey: null });
  });

  it("lists transcript lines, optionally without system lines or text", () => {
    expect(rowsOf("chat-transcript-lines", 1, engagement).map((r) => [r.lineNumber, r.source, r.agentId, r.text])).toEqual([
      [1, "system", null, "You are now chatting with Ann."],
      [2, "visitor", null, "hi"],
      [3, "agent", "44", "hello"],
    ]);
    expect(rowsOf("chat-transcript-lines", 1, engagement, { includeSystemLines: false, includeText: false }).map((r) => [r.lineNumber, r.text])).toEqual([
      [2, "[redacted]"],
      [3, "[redacted]"],
    ]);
  });
});

describe("text people typed is kept as they typed it", () => {
  // The platform writes "undefined" (or "null") in fields it has no value for, e.g. a message's
  // device; a person who types the word means the word.
  it("keeps messages, summaries and survey answers that read null or undefined", () => {
    const typed = {
      ...conversation,
      messageRecords: [
        { messageId: "m0", seq: 0, timeL: T0 + 2_000, sentBy: "Consumer", participantId: "c", device: "undefined", messageData: { msg: { text: "null" } } },
        { messageId: "m1", seq: 1, timeL: T0 + 3_000, sentBy: "Agent", participantId: "100", device: "undefined", messageData: { msg: { text: "undefined" } } },
      ],
      conversationSurveys: [{ surveyType: "Satisfaction", surveyData: [{ question: "null", answer: "undefined" }] }],
      summary: { text: "null" },
    };
    expect(rowsOf("messaging-messages", 1, typed).map((r) => r.text)).toEqual(["null", "undefined"]);
    const [row] = rowsOf("messaging-conversations", 2, typed, { includeTranscript: true });
    expect(row).toMatchObject({ summary: "null", transcript: "Consumer: null\nFirst Agent: undefined" });
    const raw = rowsOf("messaging-conversations", 2, typed)[0]!;
    expect(Object.values(raw)).not.toContain("undefined");
  });

  it("keeps chat lines, survey values and visitor names that read null, and drops the platform's placeholders", () => {
    const engagement = {
      info: { engagementId: "e-2", startTimeL: T0, endTimeL: T0 + 60_000, duration: 60, skillId: 7, visitorName: "Null", chatStartUrl: "undefined" },
      visitorInfo: { country: "undefined", device: "null" },
      transcript: { lines: [{ timeL: T0 + 1_000, text: "null", source: "visitor", by: "undefined", agentId: 0 }] },
      surveys: { postChat: [{ displayName: "Comment", value: "null", questionID: "2001" }] },
    };
    const [row] = rowsOf("chat-engagements", 1, engagement);
    expect(row).toMatchObject({ visitorName: "Null", chatStartUrl: null, country: null, device: null, postChatSurvey: "Comment: null" });
    expect(rowsOf("chat-transcript-lines", 1, engagement).map((r) => [r.text, r.by])).toEqual([["null", null]]);
  });
});

describe("admin and operations definitions", () => {
  it("leaves deleted entities out unless asked", () => {
    const deleted = { id: 5, name: "Old", deleted: true, dateUpdated: "2017-11-13 13:20:01" };
    expect(rowsOf("admin-skills", 1, deleted)).toEqual([]);
    expect(rowsOf("admin-skills", 1, deleted, { includeDeleted: true })[0]).toMatchObject({ id: "5", deleted: true, dateUpdated: Date.UTC(2017, 10, 13, 13, 20, 1) });
  });

  it("reads agent states by name", () => {
    const [row] = rowsOf("wfm-agent-activity", 1, {
      timestamp: T0,
      intervalMinutes: 15,
      agentId: 77,
      states: [
        { name: "Online", value: { total: 300 } },
        { name: "Logged in", value: { total: 900, chatting: 500, notChatting: 400 } },
      ],
    });
    expect(row).toMatchObject({ agentId: "77", onlineSeconds: 300, awaySeconds: null, loggedInSeconds: 900, chattingSeconds: 500 });
  });

  it("reads an agent-activity timestamp as the interval's END (documented: 07:30–08:00 → 08:00)", () => {
    const end = Date.UTC(2014, 2, 26, 8, 0); // 1395820800000, the documentation's example
    const [row] = rowsOf("wfm-agent-activity", 1, { timestamp: end, intervalMinutes: 30, agentId: 77, states: [] });
    expect(row).toMatchObject({ intervalStart: Date.UTC(2014, 2, 26, 7, 30), intervalEnd: end, intervalMinutes: 30 });
    expect(rowsOf("wfm-agent-activity", 1, { timestamp: T0, intervalMinutes: 15, agentId: 77, states: [] })[0]).toMatchObject({ intervalStart: T0 - 900_000, intervalEnd: T0 });
  });

  it("reads a queue-health timestamp as the interval's START (documented for msgqueuehealth)", () => {
    const [row] = rowsOf("wfm-queue-health", 1, { timestamp: T0, intervalMinutes: 15, skillId: 12, unassignedConversations: 3 });
    expect(row).toMatchObject({ intervalStart: T0, intervalEnd: T0 + 900_000, intervalMinutes: 15, skillId: "12", unassignedConversations: 3 });
  });
});
