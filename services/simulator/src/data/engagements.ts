import { directoryFor } from "./directory.js";
import { platformTime, rngFor } from "./random.js";
import { eventsInRange, type EventRef, type SeriesSpec } from "./series.js";
import { AGENT_TEXTS, BROWSERS, CONSUMER_TEXTS, COUNTRIES, DEVICES, FIRST_NAMES, SURVEY_ANSWERS } from "./text.js";
import type { VolumeOptions } from "./conversations.js";

export const DEFAULT_ENGAGEMENTS_PER_HOUR = 6;

export function engagementSeries(accountId: string, seed: string, options: VolumeOptions = {}): SeriesSpec {
  return { seed, accountId, kind: "engagement", perHour: options.perHour ?? DEFAULT_ENGAGEMENTS_PER_HOUR };
}

export function engagementIdFor(accountId: string, ref: Pick<EventRef, "hour" | "rank">): string {
  // Documented engagement ids are the account id followed by a long number.
  return `${accountId}${String(ref.hour).padStart(7, "0")}${String(ref.rank).padStart(5, "0")}`;
}

function surveyEntry(rng: ReturnType<typeof rngFor>, questionID: string, displayName: string, at: number, scope: string) {
  const value = rng.pick(SURVEY_ANSWERS);
  return { displayName, value, dbValue: value, questionID, scope, source: "visitor", time: platformTime(at), timeL: at };
}

/** One Engagement History `interactionHistoryRecords[]` entry (chat with transcript and surveys). */
export function buildEngagement(accountId: string, seed: string, ref: EventRef): Record<string, unknown> {
  const dir = directoryFor(accountId, seed);
  const rng = rngFor(seed, accountId, "engagement", ref.hour, ref.rank);
  const agent = dir.agents[rng.int(0, dir.agents.length - 1)]!;
  const skill = dir.skills[rng.int(0, dir.skills.length - 1)]!;
  const group = dir.groups.find((g) => g.id === agent.groupId) ?? dir.groups[0]!;
  const visitorName = rng.pick(FIRST_NAMES);
  const requested = ref.startMs - rng.int(1_000, 20_000);
  const start = ref.startMs;
  const lines: Record<string, unknown>[] = [
    { time: platformTime(requested), timeL: requested, controlType: 4, text: "Thank you for choosing to chat with us.  An agent will be with you shortly.", by: "info", source: "system", subType: "REGULAR", textType: "plain", cannedAnswerType: 0, agentId: 0 },
    { time: platformTime(start), timeL: start, controlType: 3, text: `You are now chatting with ${agent.nickname}.`, by: "info", source: "system", subType: "REGULAR", textType: "plain", cannedAnswerType: 0, agentId: 0 },
  ];
  let t = start + rng.int(2_000, 20_000);
  const count = rng.int(2, 7);
  for (let i = 0; i < count; i++) {
    const visitor = i % 2 === 0;
    lines.push({
      time: platformTime(t),
      timeL: t,
      controlType: 0,
      text: visitor ? rng.pick(CONSUMER_TEXTS) : rng.pick(AGENT_TEXTS),
      by: visitor ? visitorName : agent.nickname,
      source: visitor ? "visitor" : "agent",
      subType: "REGULAR",
      textType: visitor ? "plain" : "html",
      cannedAnswerType: 0,
      agentId: visitor ? 0 : agent.id,
    });
    t += rng.int(4_000, 90_000);
  }
  const end = t;
  lines.push({ time: platformTime(end), timeL: end, controlType: 5, text: "Thank you for chatting with us.", by: "info", source: "system", subType: "REGULAR", textType: "plain", cannedAnswerType: 0, agentId: 0 });
  const hasPre = rng.chance(0.5);
  const hasPost = rng.chance(0.6);
  const hasOperator = rng.chance(0.3);
  const chatMCS = rng.int(0, 100);
  return {
    info: {
      startTime: platformTime(start),
      startTimeL: start,
      endTime: platformTime(end),
      endTimeL: end,
      duration: Math.round((end - start) / 1000),
      visitorId: rng.hex(22),
      visitorName,
      engagementId: engagementIdFor(accountId, ref),
      isInteractive: true,
      accountId,
      agentId: String(agent.id),
      agentNickName: agent.nickname,
      agentLoginName: agent.loginName,
      agentFullName: agent.fullName,
      skillId: skill.id,
      skillName: skill.name,
      isAgentSurvey: hasOperator,
      isPostChatSurvey: hasPost,
      isPreChatSurvey: hasPre,
      channel: 1,
      startReason: "0",
      startReasonDesc: "Visitor request",
      endReason: rng.chance(0.5) ? "201" : "210",
      endReasonDesc: rng.chance(0.5) ? "Rep stopped chat" : "Visitor closed chat",
      engagementSet: 0,
      engagementSequence: 0,
      agentGroupId: group.id,
      agentGroupName: group.name,
      mcs: chatMCS > 66 ? 1 : chatMCS < 33 ? -1 : 0,
      alertedMCS: chatMCS > 66 ? 1 : chatMCS < 33 ? -1 : 0,
      chatMCS,
      chatRequestedTime: platformTime(requested),
      chatRequestedTimeL: requested,
      chatStartUrl: "https://shop.example/help?q=%22refund%22&lang=ar",
      chatStartPage: "Help — \"Refunds\"",
      isPartial: false,
      ended: true,
      interactive: true,
      chatDataEnriched: false,
    },
    transcript: { lines },
    campaign: {
      campaignEngagementId: String(3_000_000 + rng.int(0, 99)),
      campaignEngagementName: "Sticky chat button",
      campaignId: "213185112",
      campaignName: "Live Chat on your site",
      goalId: "213184812",
      goalName: "Interact with visitors",
      visitorBehaviorId: "213184912",
      visitorBehaviorName: "Any behavior",
      visitorProfileId: "213184712",
      visitorProfileName: "All visitors",
      lobId: -1,
      lobName: "NA",
    },
    visitorInfo: {
      country: rng.pick(COUNTRIES),
      countryCode: "",
      state: "",
      city: "",
      isp: "",
      org: "",
      device: rng.pick(DEVICES),
      ipAddress: `192.0.2.${rng.int(1, 254)}`,
      browser: rng.pick(BROWSERS),
      operatingSystem: rng.pick(["WINDOWS", "MAC_OSX", "IOS", "ANDROID"]),
    },
    surveys: {
      preChat: hasPre ? [surveyEntry(rng, "1001", "Your name", requested, "preChat"), surveyEntry(rng, "1002", "What is this about?", requested, "preChat")] : [],
      postChat: hasPost ? [surveyEntry(rng, "2001", "How would you rate this chat?", end + 5_000, "postChat")] : [],
      operator: hasOperator ? [surveyEntry(rng, "3001", "Chat result", end + 10_000, "operator")] : [],
    },
    sdes: { events: [] },
  };
}

/** Exactly the chat engagements whose start is in [from, to), ascending by start. */
export function* engagementsForWindow(
  accountId: string,
  from: Date | number,
  to: Date | number,
  seed: string,
  options: VolumeOptions = {},
): Generator<Record<string, unknown>> {
  const spec = engagementSeries(accountId, seed, options);
  for (const ref of eventsInRange(spec, +from, +to)) yield buildEngagement(accountId, seed, ref);
}
