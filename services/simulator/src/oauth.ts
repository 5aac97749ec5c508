import { createHmac, timingSafeEqual } from "node:crypto";

/**
 * Verification of OAuth 1.0a HMAC-SHA1 signatures as RFC 5849 §3.4 defines the signature base
 * string. Written here from the RFC, not shared with the connector's signing code, so the
 * simulator is an independent check of libs/sources' signatures.
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
/** How often accepted nonces past the window are forgotten (a busy simulator accepts many). */
const SWEEP_EVERY_MS = 10_000;

/** RFC 3986 percent-encoding of the UTF-8 bytes, all but the unreserved characters (RFC 5849 §3.6). */
export function rfc3986Encode(value: string): string {
  if (/^[A-Za-z0-9\-._~]*$/.test(value)) return value;
  let out = "";
  for (const byte of Buffer.from(value, "utf8")) {
    const c = String.fromCharCode(byte);
    out += /[A-Za-z0-9\-._~]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/**
 * An `application/x-www-form-urlencoded` string as name/value pairs, names and values decoded
 * (`+` is a space), repeats kept; null when an escape is broken.
 */
function formDecode(text: string): Array<[string, string]> | null {
  const pairs: Array<[string, string]> = [];
  for (const part of text.split("&")) {
    if (part === "") continue;
    const eq = part.indexOf("=");
    const [name, value] = eq < 0 ? [part, ""] : [part.slice(0, eq), part.slice(eq + 1)];
    try {
      pairs.push([decodeURIComponent(name.replace(/\+/g, " ")), decodeURIComponent(value.replace(/\+/g, " "))]);
    } catch {
      return null;
    }
  }
  return pairs;
}

const DEFAULT_PORTS: Record<string, string> = { http: "80", https: "443" };

/**
 * The signature base string (RFC 5849 §3.4.1): method, base string URI (scheme and host
 * lowercased, default port dropped, no query), and the normalised parameters: the query's, the
 * header's `oauth_*` ones but the signature, and a form-encoded body's, each name and value
 * encoded, sorted by name then value. Null when the URL or a parameter cannot be read.
 */
export function signatureBaseString(method: string, url: string, oauthParams: Record<string, string>, formBody?: string): string | null {
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)([^?#]*)(?:\?([^#]*))?/.exec(url);
  if (!m) return null;
  const scheme = m[1]!.toLowerCase();
  const authority = /^(.*?)(?::(\d*))?$/.exec(m[2]!.toLowerCase())!;
  const port = authority[2] && authority[2] !== DEFAULT_PORTS[scheme] ? `:${authority[2]}` : "";
  const baseUri = `${scheme}://${authority[1]}${port}${m[3] || "/"}`;
  const query = formDecode(m[4] ?? "");
  const body = formDecode(formBody ?? "");
  if (!query || !body) return null;
  const header = Object.entries(oauthParams).filter(([name]) => name !== "oauth_signature" && name !== "realm");
  const encoded = [...query, ...body, ...header].map(([name, value]) => [rfc3986Encode(name), rfc3986Encode(value)] as const);
  // Byte order: the encoded strings are ASCII, so code units compare as bytes.
  encoded.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  const parameters = encoded.map(([name, value]) => `${name}=${value}`).join("&");
  return [method.toUpperCase(), rfc3986Encode(baseUri), rfc3986Encode(parameters)].join("&");
}

/**
 * The (consumer key, nonce, timestamp) combinations already accepted (RFC 5849 §3.3: a server
 * refuses a repeat), kept while their timestamp is inside the allowed window: an older one is
 * refused for its timestamp anyway.
 */
export class NonceLog {
  private readonly seen = new Map<string, number>();
  private sweptAt = 0;

  /** Records the combination; false when it was recorded before. */
  record(consumerKey: string, nonce: string, timestamp: number, nowMs: number): boolean {
    if (nowMs - this.sweptAt >= SWEEP_EVERY_MS || nowMs < this.sweptAt) {
      for (const [key, at] of this.seen) if (Math.abs(nowMs / 1000 - at) > MAX_SKEW_SECONDS) this.seen.delete(key);
      this.sweptAt = nowMs;
    }
    const key = JSON.stringify([consumerKey, nonce, timestamp]);
    if (this.seen.has(key)) return false;
    this.seen.set(key, timestamp);
    return true;
  }
}

export interface VerifyOptions {
  /** Accepted nonces: with it, a repeated request is refused. */
  nonces?: NonceLog;
  /** The request's body, when it is `application/x-www-form-urlencoded` (its parameters are signed). */
  formBody?: string;
}

export function verifyOAuth(
  method: string,
  url: string,
  header: string | undefined,
  credentials: OAuthCredentials,
  nowMs: number = Date.now(),
  options: VerifyOptions = {},
): OAuthVerdict {
  const params = parseAuthorizationHeader(header);
  if (!params) return { ok: false, reason: "missing OAuth Authorization header" };
  if (params.oauth_signature_method !== "HMAC-SHA1") return { ok: false, reason: "unsupported signature method" };
  if (params.oauth_consumer_key !== credentials.consumerKey) return { ok: false, reason: "unknown consumer key" };
  if (params.oauth_token !== credentials.token) return { ok: false, reason: "unknown access token" };
  const timestamp = Number(params.oauth_timestamp);
  if (!Number.isFinite(timestamp) || Math.abs(nowMs / 1000 - timestamp) > MAX_SKEW_SECONDS) return { ok: false, reason: "timestamp outside the allowed window" };
  if (!params.oauth_nonce) return { ok: false, reason: "missing nonce" };

  const oauthParams: Record<string, string> = {};
  for (const [k, v] of Object.entries(params)) if (k.startsWith("oauth_")) oauthParams[k] = v;
  const base = signatureBaseString(method, url, oauthParams, options.formBody);
  if (base === null) return { ok: false, reason: "signature does not match (unreadable request parameters)" };
  const key = `${rfc3986Encode(credentials.consumerSecret)}&${rfc3986Encode(credentials.tokenSecret)}`;
  const given = Buffer.from(params.oauth_signature ?? "");
  const want = Buffer.from(createHmac("sha1", key).update(base).digest("base64"));
  if (given.length !== want.length || !timingSafeEqual(given, want)) return { ok: false, reason: "signature does not match" };
  // Only a genuine request uses up its nonce.
  if (options.nonces && !options.nonces.record(credentials.consumerKey, params.oauth_nonce, timestamp, nowMs)) {
    return { ok: false, reason: "nonce already used" };
  }
  return { ok: true, consumerKey: credentials.consumerKey };
}
