import type { Agent } from "node:http";
import { createRequire } from "node:module";
import { publicOnlyAgentFor, publicOnlyHttpAgent, publicOnlyHttpsAgent } from "./public-agents.js";

/**
 * Keeping the Google Cloud client libraries' requests off this service's own network. They send
 * through two HTTP stacks, both over node-fetch, which follows redirects unless told otherwise:
 *
 * - gaxios: google-auth-library's token requests (they carry the signed JWT assertion) and
 *   @google-cloud/storage's resumable uploads. It takes an `agent` per request, and `follow`
 *   (the redirect limit handed to node-fetch; gaxios maps `maxRedirects` to it only for options
 *   given per request, not for an instance's defaults).
 * - teeny-request: every other @google-cloud/storage request (metadata, deletes, single-request
 *   uploads, downloads). It takes neither: it picks the agent from its module-wide pool by
 *   scheme, "https:forever" (keep-alive, what the library asks for) or, for a request that says
 *   `forever: false`, "https", a slot it never fills itself (such a request then uses Node's
 *   global agent; @google-cloud/storage asks for it only on Cloud Functions, where this service
 *   does not run). The public-only agents go into those unused slots. The redirects it follows
 *   are connected through the same agent, so they meet the same check (and an https agent
 *   cannot carry a redirect to http at all).
 */

/** Options for every request of a Google client; each stack reads its own and ignores the other's. */
export interface GoogleRequestOptions {
  /** gaxios: follow no redirect (a token request re-sent elsewhere would take its assertion along). */
  follow: 0;
  /** gaxios: connect through the public-only agents. */
  agent?: (url: URL) => Agent;
  /** teeny-request: take the agent from the pool slots holding the public-only agents. */
  forever?: false;
}

/**
 * The options for a Google client's requests: merge them into gaxios's (an auth client's
 * `transporterOptions`) and into @google-cloud/storage's (a request interceptor: its requests,
 * and its resumable uploads' `customRequestOptions`). `publicOnly` false (ALLOW_INSECURE_ENDPOINTS)
 * lets connections go to any address; redirects are refused either way.
 */
export function googleRequestOptions(options: { publicOnly: boolean }): GoogleRequestOptions {
  if (!options.publicOnly) return { follow: 0 };
  fillTeenyRequestPool();
  return { follow: 0, agent: publicOnlyAgentFor, forever: false };
}

let teenyRequestPoolFilled = false;

function fillTeenyRequestPool(): void {
  if (teenyRequestPoolFilled) return;
  // The teeny-request that @google-cloud/storage loads (resolved from there: it is not a dependency of ours).
  const storageEntry = createRequire(import.meta.url).resolve("@google-cloud/storage");
  const { pool } = createRequire(storageEntry)("teeny-request/build/src/agents.js") as { pool?: unknown };
  if (!(pool instanceof Map)) throw new Error("teeny-request has no agent pool to pin: @google-cloud/storage's HTTP stack changed, see network/google-http.ts");
  pool.set("http", publicOnlyHttpAgent);
  pool.set("https", publicOnlyHttpsAgent);
  teenyRequestPoolFilled = true;
}
