/** Every platform API a report can be fed from. The strings are stable: tasks and reports name sources by them. */
export const SOURCE_APIS = [
  "messaging-interactions",
  "engagement-history",
  "messaging-operations-queue-health",
  "messaging-operations-agent-activity",
  "account-config-users",
  "account-config-skills",
  "account-config-agent-groups",
  "data-access-agent-activity",
  "data-access-web-session",
  "data-access-engagement",
  "data-access-survey",
] as const;

export type SourceApi = (typeof SOURCE_APIS)[number];

export function isSourceApi(value: unknown): value is SourceApi {
  return typeof value === "string" && (SOURCE_APIS as readonly string[]).includes(value);
}

/** Human names, as the platform's API key permissions call them (used in error messages). */
export const SOURCE_API_LABELS: Record<SourceApi, string> = {
  "messaging-interactions": "Messaging Interactions",
  "engagement-history": "Engagement History",
  "messaging-operations-queue-health": "Messaging Operations (queue health)",
  "messaging-operations-agent-activity": "Messaging Operations (agent activity)",
  "account-config-users": "Account configuration (users)",
  "account-config-skills": "Account configuration (skills)",
  "account-config-agent-groups": "Account configuration (agent groups)",
  "data-access-agent-activity": "Data Access (agent activity)",
  "data-access-web-session": "Data Access (web session)",
  "data-access-engagement": "Data Access (engagement)",
  "data-access-survey": "Data Access (survey)",
};

/** The four-part platform API key (OAuth 1.0a). */
export interface SourceCredentials {
  consumerKey: string;
  consumerSecret: string;
  token: string;
  tokenSecret: string;
}

/** A data window: [from, to), instants. */
export interface FetchWindow {
  from: Date;
  to: Date;
}

// The platform's text times, here too so the report mappers read them with the fetcher's parser
// through this light entry point (the package root brings the HTTP client and Redis).
export { isWritableInstant, MAX_OFFSET_MINUTES, parsePlatformTime, readPlatformInstant, type InstantReading } from "./platform-time.js";
