import type { SourceApi } from "./apis.js";
import { accountConfigAgentGroups, accountConfigSkills, accountConfigUsers } from "./connectors/account-config.js";
import { dataAccessAgentActivity, dataAccessEngagement, dataAccessSurvey, dataAccessWebSession } from "./connectors/data-access.js";
import { messagingOperationsAgentActivity, messagingOperationsQueueHealth } from "./connectors/operations.js";
import { engagementHistory, messagingInteractions } from "./connectors/search.js";
import type { Connector } from "./connectors/types.js";

const CONNECTORS: Record<SourceApi, Connector> = {
  "messaging-interactions": messagingInteractions,
  "engagement-history": engagementHistory,
  "messaging-operations-queue-health": messagingOperationsQueueHealth,
  "messaging-operations-agent-activity": messagingOperationsAgentActivity,
  "account-config-users": accountConfigUsers,
  "account-config-skills": accountConfigSkills,
  "account-config-agent-groups": accountConfigAgentGroups,
  "data-access-agent-activity": dataAccessAgentActivity,
  "data-access-web-session": dataAccessWebSession,
  "data-access-engagement": dataAccessEngagement,
  "data-access-survey": dataAccessSurvey,
};

/** The connector of an API, by its stable name. */
export function connectorFor(api: SourceApi): Connector {
  const connector = CONNECTORS[api];
  if (!connector) throw new Error(`unknown source API "${String(api)}"`);
  return connector;
}
