import { directoryFor } from "./directory.js";
import { MINUTE_MS, rngFor } from "./random.js";

/**
 * Messaging Operations figures. The real API answers for "the last `timeframe` minutes" in
 * intervals counted back from the request time; the simulator aligns intervals to multiples of
 * the interval size (epoch-based) so that figures for an interval are the same whoever asks when.
 *
 * Each method's interval `timestamp` is what its documentation says: msgqueuehealth gives the
 * interval's START; agentactivity gives its END ("the UTC timestamp in milliseconds representing
 * the end time of the interval"), rounds the latest interval up (now 08:07 → last interval ends
 * 08:10, holding data up to now) and lets the earliest interval hold only the remainder of the
 * timeframe (now − timeframe up to that interval's end).
 */
export const QUEUE_HEALTH_METRICS = [
  "unassignedConversations",
  "actionableConversations",
  "notActionableConversations",
  "actionableAndManualSla",
  "actionableAndDuringTransfer",
  "actionableAndConsumerLastMessage",
  "notActionableDuringTransfer",
  "notActionableAndManualSla",
  "unassignedConversationsAndFirstTimeConsumer",
] as const;

export type QueueMetrics = Record<(typeof QUEUE_HEALTH_METRICS)[number], number>;

export function queueHealthMetrics(accountId: string, seed: string, skillId: number, startMs: number, minutes: number): QueueMetrics {
  const rng = rngFor(seed, accountId, "queue", skillId, startMs, minutes);
  const actionable = rng.int(0, 40);
  const notActionable = rng.int(0, 20);
  return {
    unassignedConversations: actionable + notActionable,
    actionableConversations: actionable,
    notActionableConversations: notActionable,
    actionableAndManualSla: rng.int(0, actionable),
    actionableAndDuringTransfer: rng.int(0, actionable),
    actionableAndConsumerLastMessage: rng.int(0, actionable),
    notActionableDuringTransfer: rng.int(0, notActionable),
    notActionableAndManualSla: rng.int(0, notActionable),
    unassignedConversationsAndFirstTimeConsumer: rng.int(0, actionable + notActionable),
  };
}

export function sumMetrics(list: QueueMetrics[]): QueueMetrics {
  const total = Object.fromEntries(QUEUE_HEALTH_METRICS.map((m) => [m, 0])) as QueueMetrics;
  for (const item of list) for (const m of QUEUE_HEALTH_METRICS) total[m] += item[m];
  return total;
}

export interface StateValue {
  total: number;
  chatting: number;
  notChatting: number;
  chattingInMaxConcurrency: number;
}

/**
 * The documented per-agent state list: Online, Back in 5, Away (with reasons), Logged in, for the
 * data span starting at `startMs` and lasting `minutes` (a fraction for a partial interval).
 */
export function agentStates(accountId: string, seed: string, agentId: number, startMs: number, minutes: number): Array<Record<string, unknown>> {
  const rng = rngFor(seed, accountId, "agent-activity", agentId, startMs, minutes);
  const seconds = Math.floor(minutes * 60);
  const loggedIn = rng.int(0, seconds);
  const online = rng.int(0, loggedIn);
  const back = rng.int(0, loggedIn - online);
  const away = loggedIn - online - back;
  const value = (total: number): StateValue => {
    const chatting = rng.int(0, total);
    return { total, chatting, notChatting: total - chatting, chattingInMaxConcurrency: rng.int(0, chatting) };
  };
  const onlineValue = value(online);
  const backValue = value(back);
  const awayValue = value(away);
  const reasonSplit = rng.int(0, away);
  return [
    { id: 2, name: "Online", value: onlineValue },
    { id: 3, name: "Back in 5", value: backValue },
    {
      reasons: away > 0 ? [
        { id: "2642559712", value: { total: reasonSplit, chatting: 0, notChatting: reasonSplit, chattingInMaxConcurrency: 0 } },
        { id: "2642559112", value: { total: away - reasonSplit, chatting: 0, notChatting: away - reasonSplit, chattingInMaxConcurrency: 0 } },
      ] : [],
      id: 4,
      name: "Away",
      value: awayValue,
    },
    {
      id: -1,
      name: "Logged in",
      value: {
        total: loggedIn,
        chatting: onlineValue.chatting + backValue.chatting + awayValue.chatting,
        notChatting: onlineValue.notChatting + backValue.notChatting + awayValue.notChatting,
        chattingInMaxConcurrency: 0,
      },
    },
  ];
}

export interface AgentActivityInterval {
  /** What the response carries: the interval's end (epoch ms), possibly after `now`. */
  timestamp: number;
  /** The span the interval's figures cover: the interval, cut to [now − timeframe, now). */
  dataFrom: number;
  dataTo: number;
}

/**
 * The intervals agentactivity answers with at `now` for `timeframe` and `interval` minutes, newest
 * first: the latest one rounded up (ending after `now` unless `now` is on the grid), the earliest
 * one holding only what is left of the timeframe.
 */
export function agentActivityIntervals(now: number, timeframeMinutes: number, intervalMinutes: number): AgentActivityInterval[] {
  const size = intervalMinutes * MINUTE_MS;
  const from = now - timeframeMinutes * MINUTE_MS;
  const out: AgentActivityInterval[] = [];
  for (let end = Math.ceil(now / size) * size; end > from; end -= size) {
    out.push({ timestamp: end, dataFrom: Math.max(end - size, from), dataTo: Math.min(end, now) });
  }
  return out;
}

/**
 * Interval starts (ascending) of the aligned intervals a window [from, to) is given: those ENDING
 * in it, from < end ≤ to. Consecutive windows thus share out every interval exactly once, whether
 * or not their edges lie on the interval grid; for a window on the grid these are the intervals
 * lying inside it.
 */
export function intervalsEndingIn(from: number, to: number, minutes: number): number[] {
  const size = minutes * MINUTE_MS;
  const out: number[] = [];
  for (let t = Math.floor(from / size) * size; t + size <= to; t += size) out.push(t);
  return out;
}

/** Queue-health records (one per interval and skill) a connector yields for [from, to): the intervals ending in (from, to], each `timestamp` the interval's start. */
export function* queueHealthForWindow(accountId: string, from: Date | number, to: Date | number, seed: string, intervalMinutes = 15): Generator<Record<string, unknown>> {
  const skills = directoryFor(accountId, seed).skills.filter((s) => !s.deleted);
  for (const t of intervalsEndingIn(+from, +to, intervalMinutes)) {
    for (const skill of skills) {
      yield { timestamp: t, intervalMinutes, skillId: skill.id, ...queueHealthMetrics(accountId, seed, skill.id, t, intervalMinutes) };
    }
  }
}

/**
 * Agent-activity records (one per interval and agent) a connector yields for [from, to): the
 * intervals ending in (from, to], each `timestamp` the interval's end.
 */
export function* agentActivityForWindow(accountId: string, from: Date | number, to: Date | number, seed: string, intervalMinutes = 15): Generator<Record<string, unknown>> {
  const agents = directoryFor(accountId, seed).agents.filter((a) => !a.deleted);
  for (const t of intervalsEndingIn(+from, +to, intervalMinutes)) {
    for (const agent of agents) {
      yield { timestamp: t + intervalMinutes * MINUTE_MS, intervalMinutes, agentId: agent.id, states: agentStates(accountId, seed, agent.id, t, intervalMinutes) };
    }
  }
}
