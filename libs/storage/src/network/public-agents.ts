import { Agent as HttpAgent } from "node:http";
import { Agent as HttpsAgent } from "node:https";
import { publicOnlyLookup } from "./public-address.js";

/**
 * HTTP and HTTPS agents that resolve every connection's host through publicOnlyLookup, for
 * client libraries that take an agent rather than a lookup. The address checked is the one
 * connected to, so a name that resolves publicly when a setting is checked and internally when
 * the library connects (DNS rebinding) is refused. Sockets are kept alive, as the libraries' own
 * agents do: each was checked when it connected, and reusing it goes nowhere else.
 */
export const publicOnlyHttpAgent = new HttpAgent({ keepAlive: true, lookup: publicOnlyLookup });
export const publicOnlyHttpsAgent = new HttpsAgent({ keepAlive: true, lookup: publicOnlyLookup });

/** The public-only agent for a URL's scheme: node-fetch's `agent(url)` form, asked again for each redirect. */
export function publicOnlyAgentFor(url: URL): HttpAgent {
  return url.protocol === "http:" ? publicOnlyHttpAgent : publicOnlyHttpsAgent;
}
