import { SOURCE_API_LABELS, type SourceApi } from "../apis.js";
import { SourceError } from "../errors.js";
import type { Connector, SourceRecord, SourceSession } from "./types.js";

/**
 * Account configuration (users, skills, agent groups): one GET returning the whole list. These
 * are snapshots, not windowed: every run delivers the current list.
 */
function configConnector(api: SourceApi, resource: string, version: string): Connector {
  async function list(session: SourceSession): Promise<SourceRecord[]> {
    const base = await session.csds.baseUrl(session.accountId, "accountConfigReadOnly", api);
    // Deleted entries too (the API leaves them out by default): a report shows them or not
    // (its includeDeleted parameter), and conversations of deleted agents still name them.
    const url = `${base}/api/account/${encodeURIComponent(session.accountId)}/configuration/le-users/${resource}?v=${version}&include_deleted=true`;
    const { data } = await session.http.json<unknown>(
      { accountId: session.accountId, credentials: session.credentials, api, onCall: () => session.countCall(), ...(session.signal ? { signal: session.signal } : {}) },
      "GET",
      url,
    );
    if (!Array.isArray(data)) {
      throw new SourceError("malformed_response", `Malformed response from ${SOURCE_API_LABELS[api]}: expected a list`, { api, byteOffset: 0 });
    }
    return data as SourceRecord[];
  }
  return {
    api,
    label: SOURCE_API_LABELS[api],
    windowed: false,
    recordId: (r) => String(r.id),
    recordTime: () => null,
    async *fetch(session) {
      const seen = new Set<string>();
      const records = (await list(session)).sort((a, b) => Number(a.id) - Number(b.id));
      for (const record of records) {
        const id = String(record.id);
        if (seen.has(id)) continue;
        seen.add(id);
        yield record;
      }
    },
    async probe(session) {
      await list(session);
    },
  };
}

export const accountConfigUsers = configConnector("account-config-users", "users", "4.0");
export const accountConfigSkills = configConnector("account-config-skills", "skills", "2.0");
export const accountConfigAgentGroups = configConnector("account-config-agent-groups", "agentGroups", "2.0");
