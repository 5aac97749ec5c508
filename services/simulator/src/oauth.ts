import { createHmac, timingSafeEqual } from "node:crypto";
import OAuth from "oauth-1.0a";

/**
 * Verification of OAuth 1.0a HMAC-SHA1 signatures. Deliberately built on the `oauth-1.0a`
 * package rather than on the connector's own signing code, so the simulator is an independent
 * check of libs/sources' signatures.
 */
export interface OAuthCredentials {
  consumerKey: string;
  consumerSecret: string;
  token: string;
  tokenSecret: string;
}

export type OAuthVerdict = { ok: true; consumerKey: string } | { ok: false; reason: string };

export function parseAuthorizationHeader(header: string | undefined): Record<string, string> | null {
  if (!header || !/^OAuth\s/i.test(header)) return null;
  const params: Record<string, string> = {};
  const re = /([A-Za-z0-9_]+)="([^"]*)"/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(header.slice(6))) !== null) {
    try {
      params[m[1]!] = decodeURIComponent(m[2]!);
    } catch {
      return null;
    }
  }
  return params;
}

const MAX_SKEW_SECONDS = 300;

export function verifyOAuth(
  method: string,
  url: string,
  header: string | undefined,
  credentials: OAuthCredentials,
  nowMs: number = Date.now(),
): OAuthVerdict {
  const params = parseAuthorizationHeader(header);
  if (!params) return { ok: false, reason: "missing OAuth Authorization header" };
  if (params.oauth_signature_method !== "HMAC-SHA1") return { ok: false, reason: "unsupported signature method" };
  if (params.oauth_consumer_key !== credentials.consumerKey) return { ok: false, reason: "unknown consumer key" };
  if (params.oauth_token !== credentials.token) return { ok: false, reason: "unknown access token" };
  const timestamp = Number(params.oauth_timestamp);
  if (!Number.isFinite(timestamp) || Math.abs(nowMs / 1000 - timestamp) > MAX_SKEW_SECONDS) return { ok: false, reason: "timestamp outside the allowed window" };
  if (!params.oauth_nonce) return { ok: false, reason: "missing nonce" };

  const oauth = new OAuth({
    consumer: { key: credentials.consumerKey, secret: credentials.consumerSecret },
    signature_method: "HMAC-SHA1",
    hash_function: (base, key) => createHmac("sha1", key).update(base).digest("base64"),
  });
  const oauthData: Record<string, string> = {};
  for (const [k, v] of Object.entries(params)) if (k.startsWith("oauth_") && k !== "oauth_signature") oauthData[k] = v;
  const expected = oauth.getSignature({ url, method }, credentials.tokenSecret, oauthData as unknown as OAuth.Data);
  const given = Buffer.from(params.oauth_signature ?? "");
  const want = Buffer.from(expected);
  if (given.length !== want.length || !timingSafeEqual(given, want)) return { ok: false, reason: "signature does not match" };
  return { ok: true, consumerKey: credentials.consumerKey };
}
