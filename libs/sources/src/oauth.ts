import { createHmac, randomBytes } from "node:crypto";
import type { SourceCredentials } from "./apis.js";

/** RFC 3986 percent-encoding, as OAuth 1.0a (RFC 5849 §3.6) requires. */
export function oauthEncode(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/**
 * The `Authorization: OAuth …` header for one request (HMAC-SHA1). Query parameters of the URL
 * take part in the signature; JSON bodies do not (they are not form-encoded).
 */
export function oauthHeader(
  method: string,
  url: string | URL,
  credentials: SourceCredentials,
  now: { timestamp?: number; nonce?: string } = {},
): string {
  const u = typeof url === "string" ? new URL(url) : url;
  const oauth: Record<string, string> = {
    oauth_consumer_key: credentials.consumerKey,
    oauth_nonce: now.nonce ?? randomBytes(16).toString("hex"),
    oauth_signature_method: "HMAC-SHA1",
    oauth_timestamp: String(now.timestamp ?? Math.floor(Date.now() / 1000)),
    oauth_token: credentials.token,
    oauth_version: "1.0",
  };
  const pairs: Array<[string, string]> = Object.entries(oauth).map(([k, v]) => [oauthEncode(k), oauthEncode(v)]);
  for (const [k, v] of u.searchParams) pairs.push([oauthEncode(k), oauthEncode(v)]);
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  const parameterString = pairs.map(([k, v]) => `${k}=${v}`).join("&");
  const baseUrl = `${u.protocol}//${u.host}${u.pathname}`.replace(/^(\w+:)/, (s) => s.toLowerCase());
  const base = [method.toUpperCase(), oauthEncode(baseUrl), oauthEncode(parameterString)].join("&");
  const key = `${oauthEncode(credentials.consumerSecret)}&${oauthEncode(credentials.tokenSecret)}`;
  const signature = createHmac("sha1", key).update(base).digest("base64");
  const header = { ...oauth, oauth_signature: signature };
  return `OAuth ${Object.entries(header)
    .map(([k, v]) => `${oauthEncode(k)}="${oauthEncode(v)}"`)
    .join(", ")}`;
}
