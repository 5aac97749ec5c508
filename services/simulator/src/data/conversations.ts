import { directoryFor } from "./directory.js";
import { platformTime, rngFor } from "./random.js";
import { eventsInRange, type EventRef, type SeriesSpec } from "./series.js";
import { AGENT_TEXTS, BROWSERS, CONSUMER_TEXTS, COUNTRIES, DEVICES, FIRST_NAMES, LAST_NAMES, SOURCES, SURVEY_ANSWERS } from "./text.js";

export interface VolumeOptions {
  /** Mean records per hour (default: 12 conversations, 6 chat engagements, 4 data-access sessions). */
  perHour?: number;
}

export const DEFAULT_CONVERSATIONS_PER_HOUR = 12;

export function conversationSeries(accountId: string, seed: string, options: VolumeOptions = {}): SeriesSpec {
  return { seed, accountId, kind: "conversation", perHour: options.perHour ?? DEFAULT_CONVERSATIONS_PER_HOUR };
}

/** A conversation id derived from its identity: stable across pages, windows and processes. */
export function conversationIdFor(accountId: string, seed: string, ref: Pick<EventRef, "hour" | "rank">): string {
  return rngFor(seed, accountId, "conversation-id", ref.hour, ref.rank).uuid();
}

/**
 * One Messaging Interactions `conversationHistoryRecords[]` entry, following the documented
 * field names (info, campaign, messageRecords, agentParticipants, consumerParticipants, transfers,
 * interactions, messageScores, messageStatuses, conversationSurveys, sdes, summary).
 */
export function buildConversation(accountId: string, seed: string, ref: EventRef): Record<string, unknown> {
  const dir = directoryFor(accountId, seed);
  const rng = rngFor(seed, accountId, "conversation", ref.hour, ref.rank);
  const conversationId = conversationIdFor(accountId, seed, ref);
  const agent = dir.agents[rng.int(0, dir.agents.length - 1)]!;
  const skill = dir.skills[rng.int(0, dir.skills.length - 1)]!;
  const group = dir.groups.find((g) => g.id === agent.groupId) ?? dir.groups[0]!;
  const consumerId = rng.uuid();
  const start = ref.startMs;
  const messageCount = rng.int(2, 8);
  const messages: Record<string, unknown>[] = [];
  const scores: Record<string, unknown>[] = [];
  let t = start + rng.int(1_000, 30_000);
  for (let seq = 0; seq < messageCount; seq++) {
    const byConsumer = seq % 2 === 0;
    const text = byConsumer ? rng.pick(CONSUMER_TEXTS) : rng.pick(AGENT_TEXTS);
    const messageId = `ms::conv:${conversationId}::msg:${seq}`;
    messages.push({
      type: "TEXT_PLAIN",
      messageData: { msg: { text } },
      messageId,
      seq,
      dialogId: conversationId,
      participantId: byConsumer ? consumerId : String(agent.id),
      source: "APP",
      time: platformTime(t),
      timeL: t,
      device: "undefined",
      sentBy: byConsumer ? "Consumer" : "Agent",
    });
    if (byConsumer) {
      const mcs = rng.int(0, 100);
      scores.push({ messageId, messageRawScore: rng.int(-1, 1), mcs, time: platformTime(t + 500), timeL: t + 500 });
    }
    t += rng.int(5_000, 120_000);
  }
  const end = t + rng.int(1_000, 60_000);
  const mcs = rng.int(0, 100);
  const csat = rng.int(1, 5);
  const device = rng.pick(DEVICES);
  const first = rng.pick(FIRST_NAMES);
  const last = rng.pick(LAST_NAMES);
  const agentJoin = start + rng.int(500, 5_000);
  return {
    info: {
      startTime: platformTime(start),
      startTimeL: start,
      endTime: platformTime(end),
      endTimeL: end,
      duration: end - start,
      conversationId,
      brandId: accountId,
      latestAgentId: String(agent.id),
      latestAgentNickname: agent.nickname,
      latestAgentFullName: agent.fullName,
      latestAgentLoginName: agent.loginName,
      agentDeleted: agent.deleted,
      latestSkillId: skill.id,
      latestSkillName: skill.name,
      source: rng.pick(SOURCES),
      closeReason: rng.chance(0.6) ? "AGENT" : "CONSUMER",
      closeReasonDescription: "MANUAL_CLOSE",
      mcs,
      alertedMCS: mcs > 66 ? 1 : mcs < 33 ? -1 : 0,
      status: "CLOSE",
      firstConversation: rng.chance(0.2),
      csat,
      device,
      browser: rng.pick(BROWSERS),
      operatingSystem: rng.pick(["WINDOWS", "MAC_OSX", "IOS", "ANDROID", "LINUX"]),
      latestAgentGroupId: group.id,
      latestAgentGroupName: group.name,
      latestQueueState: "ACTIVE",
      isPartial: false,
    },
    campaign: {
      campaignEngagementId: String(2_000_000 + rng.int(0, 99)),
      campaignEngagementName: "Sticky chat button",
      campaignId: String(1_000_000 + rng.int(0, 9)),
      campaignName: "Live Chat on your site",
      goalId: "1340122310",
      goalName: "Interact with visitors",
      engagementSource: "WEB_SITE",
      visitorProfileId: "1340122010",
      visitorProfileName: "All visitors",
      lobId: -1,
      lobName: "NA",
      locationId: "1340122610",
      locationName: "Entire site",
    },
    monitoring: { country: rng.pick(COUNTRIES), device, browser: rng.pick(BROWSERS), conversationStartPage: "https://shop.example/checkout?step=2&lang=ja" },
    messageRecords: messages,
    agentParticipants: [
      {
        agentFullName: agent.fullName,
        agentNickname: agent.nickname,
        agentLoginName: agent.loginName,
        agentId: String(agent.id),
        agentDeleted: agent.deleted,
        userType: "1",
        userTypeName: "Human",
        role: "ASSIGNED_AGENT",
        agentGroupName: group.name,
        agentGroupId: group.id,
        time: platformTime(agentJoin),
        timeL: agentJoin,
        permission: "ASSIGNED_AGENT",
      },
    ],
    consumerParticipants: [
      {
        participantId: consumerId,
        firstName: first,
        lastName: last,
        token: "undefined",
        email: "undefined",
        phone: rng.chance(0.3) ? "+1 555 0100" : "0",
        time: platformTime(start),
        timeL: start,
        joinTime: platformTime(start),
        joinTimeL: start,
        consumerName: `${first} ${last}`,
      },
    ],
    transfers: [],
    interactions: [
      {
        assignedAgentId: String(agent.id),
        assignedAgentFullName: agent.fullName,
        assignedAgentLoginName: agent.loginName,
        assignedAgentNickname: agent.nickname,
        interactionTimeL: agentJoin,
        interactionTime: platformTime(agentJoin),
        interactiveSequence: 1,
      },
    ],
    messageScores: scores,
    messageStatuses: [],
    conversationSurveys: rng.chance(0.5)
      ? [{ surveyType: "Satisfaction", surveyStatus: "FILLED", surveyData: [{ question: "How satisfied were you? 😊", answer: rng.pick(SURVEY_ANSWERS) }] }]
      : [],
    sdes: { events: [] },
    summary: { text: rng.pick(["", "Refund issued", "Address changed;\nfollow-up \"tomorrow\""]), lastUpdatedTime: end },
  };
}

/**
 * Exactly the conversations whose start is in [from, to), ascending by start: what a connector
 * must deliver for that window (the simulator serves these, plus its 10-minute rounding margin).
 */
export function* conversationsForWindow(
  accountId: string,
  from: Date | number,
  to: Date | number,
  seed: string,
  options: VolumeOptions = {},
): Generator<Record<string, unknown>> {
  const spec = conversationSeries(accountId, seed, options);
  for (const ref of eventsInRange(spec, +from, +to)) yield buildConversation(accountId, seed, ref);
}
