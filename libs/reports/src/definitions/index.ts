import type { ReportDefinition } from "../types.js";
import { adminAgentGroups, adminSkills, adminUsers } from "./admin.js";
import { chatEngagements, chatEngagementsRaw, chatTranscriptLines } from "./chat.js";
import { dataAccessAgentActivity, dataAccessEngagements, dataAccessSurveys, dataAccessWebSessions } from "./data-access.js";
import { messagingConversations, messagingConversationsRaw, messagingMessages } from "./messaging.js";
import { wfmAgentActivity, wfmAgentActivityRaw, wfmQueueHealth, wfmQueueHealthRaw } from "./operations.js";

/** The catalogue, in the order the API lists it. */
export const REPORTS: readonly ReportDefinition[] = Object.freeze([
  messagingConversations,
  messagingMessages,
  messagingConversationsRaw,
  chatEngagements,
  chatTranscriptLines,
  chatEngagementsRaw,
  wfmAgentActivity,
  wfmQueueHealth,
  wfmAgentActivityRaw,
  wfmQueueHealthRaw,
  adminUsers,
  adminSkills,
  adminAgentGroups,
  dataAccessAgentActivity,
  dataAccessWebSessions,
  dataAccessEngagements,
  dataAccessSurveys,
]);
