/**
 * @transporter/sources — the platform's data APIs as async iterables of records.
 *
 * Record shapes (one NDJSON line each, as the fetcher stores them):
 * - messaging-interactions: a `conversationHistoryRecords[]` entry (info, messageRecords, …)
 * - engagement-history: an `interactionHistoryRecords[]` entry (info, transcript.lines, surveys, …)
 * - messaging-operations-queue-health: `{ timestamp, intervalMinutes, skillId, unassignedConversations, actionableConversations, … }`
 * - messaging-operations-agent-activity: `{ timestamp, intervalMinutes, agentId, states: [{ id, name, value: { total, chatting, notChatting, chattingInMaxConcurrency }, reasons? }] }`
 * - account-config-users / -skills / -agent-groups: the API's list entries (a snapshot, not windowed)
 * - data-access-*: one session document `{ dataType, metaData, recordCollection }` (Avro-JSON style)
 */
export { SOURCE_APIS, SOURCE_API_LABELS, isSourceApi, type SourceApi, type SourceCredentials, type FetchWindow } from "./apis.js";
export { parsePlatformTime } from "./platform-time.js";
export { SourceError, isSourceError, sourceErrors, type SourceErrorCode } from "./errors.js";
export { oauthHeader, oauthEncode } from "./oauth.js";
export { CsdsClient, type CsdsService, type CsdsOptions } from "./csds.js";
export { createRateBudget, unlimitedBudget, type RateBudget, type RateBudgetOptions } from "./rate-budget.js";
export { PlatformHttp, parseJson, parseJsonText, parseRetryAfter, type HttpOptions, type CallContext, type StreamedResponse } from "./http.js";
export { splitWindow, RecentIds, type Range } from "./window.js";
export { connectorFor } from "./registry.js";
export { jsonDocuments, JsonDocumentSplitter, type JsonDocumentSplitterOptions } from "./json-document-splitter.js";
export { ndjsonChunks } from "./ndjson.js";
export { RAW_JSON, attachRawJson, rawJsonOf } from "./raw-json.js";
export { scanSearchPage, type SearchPageLayout } from "./search-page.js";
export { MESSAGING_INTERACTIONS_SOURCE } from "./connectors/search.js";
export type { Connector, FetchOptions, SourceRecord, SourceSession } from "./connectors/types.js";
export {
  createPlatform,
  platformFromConfig,
  verifySource,
  type Platform,
  type PlatformOptions,
  type OpenedSource,
  type VerifyResult,
  type ApiVerdict,
} from "./platform.js";
