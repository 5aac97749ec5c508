/**
 * @transporter/simulator — a stand-in for the platform's data APIs (CSDS, Messaging Interactions,
 * Engagement History, Messaging Operations, account configuration, Data Access) that serves
 * deterministic synthetic data. Used by tests, the demo and the benchmarks; never in production
 * unless explicitly asked.
 *
 * The generator functions are exported so other packages' tests can compute exactly what the
 * simulator serves for an account and window.
 */
export {
  startSimulator,
  LIMITS,
  SIMULATED_APIS,
  type AccountRegistration,
  type Faults,
  type RequestLogEntry,
  type SimulatedApi,
  type Simulator,
  type SimulatorControl,
  type SimulatorOptions,
} from "./server.js";
export { conversationsForWindow, buildConversation, conversationSeries, conversationIdFor, DEFAULT_CONVERSATIONS_PER_HOUR, type VolumeOptions } from "./data/conversations.js";
export { engagementsForWindow, buildEngagement, engagementSeries, engagementIdFor, DEFAULT_ENGAGEMENTS_PER_HOUR } from "./data/engagements.js";
export { queueHealthForWindow, agentActivityForWindow, agentActivityIntervals, queueHealthMetrics, agentStates, QUEUE_HEALTH_METRICS, type AgentActivityInterval } from "./data/operations.js";
export { dataAccessRecordsForWindow, dataAccessFileRecords, dataAccessFileName, DATA_ACCESS_TYPES, DEFAULT_DATA_ACCESS_PER_HOUR, type DataAccessType } from "./data/data-access.js";
export { directoryFor, usersResource, skillsResource, agentGroupsResource, type Directory, type Agent, type Skill, type AgentGroup } from "./data/directory.js";
export { countInRange, eventsInRange, type SeriesSpec, type EventRef } from "./data/series.js";
export { verifyOAuth, parseAuthorizationHeader, NonceLog, type OAuthVerdict, type VerifyOptions } from "./oauth.js";
export { CONSUMER_TEXTS, AGENT_TEXTS } from "./data/text.js";

import type { Simulator, SimulatorOptions } from "./server.js";
import { startSimulator } from "./server.js";

/** The service entry point of the conventions: `start(config) → { stop }`. */
export async function start(
  config: { SIMULATOR_HOST: string; SIMULATOR_PORT: number; SIMULATOR_SEED: string },
  deps: Partial<SimulatorOptions> = {},
): Promise<Simulator> {
  return startSimulator({ host: config.SIMULATOR_HOST, port: config.SIMULATOR_PORT, seed: config.SIMULATOR_SEED, ...deps });
}
