import { directoryFor } from "./directory.js";
import { HOUR_MS, rngFor } from "./random.js";
import { eventsInRange, type EventRef, type SeriesSpec } from "./series.js";
import { AGENT_TEXTS, CONSUMER_TEXTS, SURVEY_ANSWERS } from "./text.js";
import type { VolumeOptions } from "./conversations.js";

/** The four Data Access data types, by the path segment the API uses. */
export const DATA_ACCESS_TYPES = ["agentActivity", "webSession", "engagement", "survey"] as const;
export type DataAccessType = (typeof DATA_ACCESS_TYPES)[number];

const TYPE_NAMES: Record<DataAccessType, { enumName: string; file: string; body: string }> = {
  agentActivity: { enumName: "AgentActivity", file: "Agent", body: "com.liveperson.dataaccess.AgentActivityData" },
  webSession: { enumName: "WebSession", file: "WebSession", body: "com.liveperson.dataaccess.WebSessionData" },
  engagement: { enumName: "Engagement", file: "Engagement", body: "com.liveperson.dataaccess.EngagementData" },
  survey: { enumName: "Survey", file: "Survey", body: "com.liveperson.dataaccess.SurveyData" },
};

export const DEFAULT_DATA_ACCESS_PER_HOUR = 4;

export function dataAccessSeries(accountId: string, seed: string, type: DataAccessType, options: VolumeOptions = {}): SeriesSpec {
  return { seed, accountId, kind: `da-${type}`, perHour: options.perHour ?? DEFAULT_DATA_ACCESS_PER_HOUR };
}

/** File name of the hourly batch (documented form `<Type>.<startMs>.<endMs>.part-00000-0.gz`). */
export function dataAccessFileName(type: DataAccessType, hour: number): string {
  return `${TYPE_NAMES[type].file}.${hour * HOUR_MS}.${(hour + 1) * HOUR_MS}.part-00000-0.gz`;
}

export function parseDataAccessFileName(type: DataAccessType, name: string): number | null {
  const m = /^([A-Za-z]+)\.(\d+)\.(\d+)\.part-00000-0\.gz$/.exec(name);
  if (!m || m[1] !== TYPE_NAMES[type].file) return null;
  const start = Number(m[2]);
  if (start % HOUR_MS !== 0 || Number(m[3]) !== start + HOUR_MS) return null;
  return start / HOUR_MS;
}

const str = (s: string) => ({ string: s });
const long = (n: number) => ({ long: n });

/** One Data Access session document (dataType, metaData, recordCollection) in the Avro-JSON style. */
export function buildDataAccessRecord(accountId: string, seed: string, type: DataAccessType, ref: EventRef): Record<string, unknown> {
  const rng = rngFor(seed, accountId, "da", type, ref.hour, ref.rank);
  const dir = directoryFor(accountId, seed);
  const agent = dir.agents[rng.int(0, dir.agents.length - 1)]!;
  const start = ref.startMs;
  const end = start + rng.int(60_000, 1_800_000);
  const visitId = `${accountId}-${ref.hour}-${ref.rank}`;
  const visitorHeader = { "com.liveperson.dataaccess.VisitorHeader": { visitId: str(visitId), visitorId: str(rng.hex(22)), contextId: str(String(ref.rank)) } };
  let body: Record<string, unknown>;
  switch (type) {
    case "agentActivity":
      body = {
        header: { "com.liveperson.dataaccess.AgentHeader": { agentSessionId: str(`${accountId}-${ref.hour}${String(ref.rank).padStart(4, "0")}`) } },
        agentSessionsData: {
          array: [3, 1, 4].map((eventType, i) => ({
            agentID: long(agent.id),
            type: long(eventType),
            state: long(i === 2 ? 1 : 2),
            timestamp: long(start + i * Math.floor((end - start) / 3)),
            prevState: long(i === 0 ? 1 : 2),
            agentEmployeeId: str(agent.employeeId),
            agentUsername: str(agent.fullName),
            agentNickname: str(agent.nickname),
            agentLoginname: str(agent.loginName),
            prevConcurrentEng: long(0),
            concurrentEng: long(i === 1 ? 1 : 0),
            maxConcurrentEng: long(i === 1 ? agent.maxChats : -9),
            agentGroupID: long(agent.groupId),
          })),
        },
      };
      break;
    case "webSession":
      body = {
        header: visitorHeader,
        sessionStartTime: long(start),
        sessionEndTime: long(end),
        pageViews: {
          array: [0, 1, 2].slice(0, rng.int(1, 3)).map((i) => ({
            url: str(`https://shop.example/p/${rng.int(1, 999)}?ref=${i}`),
            title: str(rng.pick(["Home", "Checkout — \"Step 2\"", "製品ページ", "סל קניות"])),
            timestamp: long(start + i * 30_000),
          })),
        },
        visitorInfo: { country: str(rng.pick(["US", "ES", "JP", "IL"])), device: str(rng.pick(["DESKTOP", "MOBILE"])) },
      };
      break;
    case "engagement":
      body = {
        header: visitorHeader,
        engagements: {
          array: [
            {
              "com.liveperson.dataaccess.Conversation": {
                type: { "com.liveperson.dataaccess.ConversationType": "LIVE_CHAT" },
                conversationId: str(`${accountId}${ref.hour}${ref.rank}`),
                conversationStartTime: long(start),
                interactionStartTime: long(start + 5_000),
                conversationEndTime: long(end),
                consumerId: null,
                isInteractive: { boolean: true },
                sourceOrigin: str("Web"),
                endReasonId: { int: 201 },
                skills: { array: [dir.skills[rng.int(0, dir.skills.length - 1)]!.id] },
                startReasonId: { int: 0 },
                transcripts: {
                  array: [0, 1, 2].map((i) => ({
                    text: str(i % 2 === 0 ? rng.pick(CONSUMER_TEXTS) : rng.pick(AGENT_TEXTS)),
                    timestamp: long(start + 5_000 + i * 20_000),
                    by: str(i % 2 === 0 ? "visitor" : agent.nickname),
                    type: str(i % 2 === 0 ? "0" : "1"),
                    controlType: str("0"),
                    agentId: str(i % 2 === 0 ? "0" : String(agent.id)),
                    contentFormat: str("TEXT_PLAIN"),
                    messageId: str(rng.hex(22)),
                  })),
                },
                transfers: { array: [] },
                secureForms: { array: [] },
                mcs: null,
                queueStartTime: long(start),
                queueEndTime: long(start + 5_000),
              },
            },
          ],
        },
      };
      break;
    case "survey":
      body = {
        header: visitorHeader,
        surveys: {
          array: [
            {
              id: long(275_000 + rng.int(0, 999)),
              type: { int: rng.int(1, 4) },
              viewTime: null,
              conversationId: str(`${accountId}${ref.hour}${ref.rank}`),
              contents: {
                array: [0, 1].map((i) => ({
                  question: str(i === 0 ? "Chat Result" : "¿Le ayudamos? / 満足しましたか？"),
                  answer: str(rng.pick(SURVEY_ANSWERS)),
                  answerSubmitTime: long(end + i),
                  surveyName: str("Post chat"),
                  answerType: { int: 4 },
                  csatThreshold: { double: -1 },
                })),
              },
            },
          ],
        },
      };
      break;
  }
  return {
    dataType: { "com.liveperson.dataaccess.DataTypeEnum": TYPE_NAMES[type].enumName },
    metaData: { accountId: str(accountId), schemaVersion: "1.0.0.22", startTime: long(start), endTime: long(end) },
    recordCollection: [{ body: { [TYPE_NAMES[type].body]: body } }],
  };
}

/** Longest simulated session (see buildDataAccessRecord): a file's sessions began at most this long before its hour. */
const MAX_SESSION_MS = 1_800_000;

/** The hour (epoch hours) in which a session document closed. */
function closeHourOf(record: Record<string, unknown>): number {
  const end = (record.metaData as { endTime: { long: number } }).endTime.long;
  return Math.floor(end / HOUR_MS);
}

/**
 * The session documents of one hourly file: the sessions that closed in that hour, as the
 * platform groups a session's events once it is closed and writes the closed sessions hourly.
 * A session that starts in one hour and closes in the next is in the next hour's file.
 */
export function* dataAccessFileRecords(accountId: string, seed: string, type: DataAccessType, hour: number, options: VolumeOptions = {}): Generator<Record<string, unknown>> {
  const spec = dataAccessSeries(accountId, seed, type, options);
  for (const ref of eventsInRange(spec, hour * HOUR_MS - MAX_SESSION_MS, (hour + 1) * HOUR_MS)) {
    const record = buildDataAccessRecord(accountId, seed, type, ref);
    if (closeHourOf(record) === hour) yield record;
  }
}

/**
 * Exactly what a connector must deliver for [from, to): every document of the hourly files whose
 * hour ends in (from, to], file by file. Consecutive windows thus get every session once.
 */
export function* dataAccessRecordsForWindow(
  accountId: string,
  type: DataAccessType,
  from: Date | number,
  to: Date | number,
  seed: string,
  options: VolumeOptions = {},
): Generator<Record<string, unknown>> {
  for (let hour = Math.floor(+from / HOUR_MS); (hour + 1) * HOUR_MS <= +to; hour++) yield* dataAccessFileRecords(accountId, seed, type, hour, options);
}
