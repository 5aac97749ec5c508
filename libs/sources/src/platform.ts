import type { Redis } from "ioredis";
import { SOURCE_APIS, type FetchWindow, type SourceApi, type SourceCredentials } from "./apis.js";
import type { FetchOptions, SourceRecord, SourceSession } from "./connectors/types.js";
import { CsdsClient } from "./csds.js";
import { SourceError, isSourceError, type SourceErrorCode } from "./errors.js";
import { PlatformHttp, type HttpOptions } from "./http.js";
import { createRateBudget, type RateBudget } from "./rate-budget.js";
import { connectorFor } from "./registry.js";

export interface PlatformOptions {
  /** CSDS base URL, e.g. https://api.liveperson.net or the simulator's URL. */
  csdsUrl: string;
  /** Data Access API base URL; empty = the regional host derived from the account's domains. */
  dataAccessUrl?: string;
  /** Permit plain http:// hosts (simulator, tests, demo). */
  allowInsecure?: boolean;
  csdsTtlMs?: number;
  http?: HttpOptions;
  now?: () => number;
}

export interface OpenedSource extends SourceSession {
  /** The window's records from one API, as an async iterable (never the whole window in memory). */
  fetch(api: SourceApi, window: FetchWindow, options?: FetchOptions): AsyncIterable<SourceRecord>;
}

export type ApiVerdict = { ok: true } | { ok: false; code: SourceErrorCode; message: string };

export interface VerifyResult {
  /** The key is genuine and the account known: false → do not save it (see `error`). */
  verified: boolean;
  accountId: string;
  /** APIs the key may use, among those asked about. */
  allowed: SourceApi[];
  apis: Partial<Record<SourceApi, ApiVerdict>>;
  error?: { code: SourceErrorCode; message: string };
  sourceCalls: number;
}

export interface Platform {
  readonly csds: CsdsClient;
  readonly http: PlatformHttp;
  openSource(accountId: string, credentials: SourceCredentials, options?: { signal?: AbortSignal }): OpenedSource;
  verifySource(credentials: SourceCredentials, accountId: string, apis?: readonly SourceApi[]): Promise<VerifyResult>;
}

const REGIONAL_DATA_ACCESS: Record<string, string> = { va: "va.da.liveperson.net", lo: "lo.da.liveperson.net", sy: "sy.da.liveperson.net" };

/**
 * The lowercased host name of a discovered domain, given bare (`lo.msghist.liveperson.net`, with
 * or without a port) or as a URL (`https://lo.msghist.liveperson.net`), as domain discovery
 * accepts both; "" when it is neither.
 */
function hostnameOf(domain: string): string {
  try {
    return new URL(/^[a-z][a-z\d+.-]*:\/\//i.test(domain) ? domain : `https://${domain}`).hostname;
  } catch {
    return "";
  }
}

export function createPlatform(options: PlatformOptions): Platform {
  const insecure = (url: string) => new URL(url).protocol === "http:";
  if (!options.allowInsecure && (insecure(options.csdsUrl) || (options.dataAccessUrl && insecure(options.dataAccessUrl)))) {
    throw new Error("Plain http:// platform URLs need ALLOW_INSECURE_ENDPOINTS=true");
  }
  const now = options.now ?? Date.now;
  const csds = new CsdsClient({ csdsUrl: options.csdsUrl, ...(options.csdsTtlMs ? { ttlMs: options.csdsTtlMs } : {}), ...(options.http?.timeoutMs ? { timeoutMs: options.http.timeoutMs } : {}), ...(options.http?.fetch ? { fetch: options.http.fetch } : {}), now });
  const http = new PlatformHttp(options.http);

  function openSource(accountId: string, credentials: SourceCredentials, opened: { signal?: AbortSignal } = {}): OpenedSource {
    let calls = 0;
    const session: OpenedSource = {
      accountId,
      credentials,
      csds,
      http,
      get calls() {
        return calls;
      },
      countCall() {
        calls++;
      },
      now,
      ...(opened.signal ? { signal: opened.signal } : {}),
      async dataAccessBaseUrl() {
        if (options.dataAccessUrl) return options.dataAccessUrl.replace(/\/$/, "");
        // "No need to retrieve your domain for this API": the host is regional. Take the region
        // from the account's other domains (va./lo./sy.).
        const domains = await csds.domains(accountId);
        const sample = domains.get("msgHist") ?? domains.get("accountConfigReadOnly") ?? [...domains.values()][0] ?? "";
        const region = /^(va|lo|sy)[.-]/.exec(hostnameOf(sample))?.[1] ?? "va";
        return `https://${REGIONAL_DATA_ACCESS[region]}`;
      },
      fetch(api, window, fetchOptions) {
        return connectorFor(api).fetch(session, window, fetchOptions);
      },
    };
    return session;
  }

  async function verifySource(credentials: SourceCredentials, accountId: string, apis: readonly SourceApi[] = SOURCE_APIS): Promise<VerifyResult> {
    const session = openSource(accountId, credentials);
    const result: VerifyResult = { verified: false, accountId, allowed: [], apis: {}, sourceCalls: 0 };
    try {
      csds.invalidate(accountId);
      await csds.domains(accountId);
    } catch (error) {
      const e = isSourceError(error) ? error : new SourceError("upstream_unavailable", (error as Error).message);
      result.error = { code: e.code, message: e.message };
      return result;
    }
    let fatal: SourceError | null = null;
    for (const api of apis) {
      try {
        await connectorFor(api).probe(session);
        result.apis[api] = { ok: true };
        result.allowed.push(api);
      } catch (error) {
        const e = isSourceError(error) ? error : new SourceError("upstream_unavailable", (error as Error).message);
        result.apis[api] = { ok: false, code: e.code, message: e.message };
        // A rejected signature or an unreachable platform says nothing about permissions: stop.
        if (e.code === "bad_credentials" || e.code === "unknown_account" || e.code === "upstream_unavailable" || e.code === "rate_limited") {
          fatal = e;
          break;
        }
      }
    }
    result.sourceCalls = session.calls + 1;
    if (fatal) result.error = { code: fatal.code, message: fatal.message };
    else result.verified = true;
    return result;
  }

  return { csds, http, openSource, verifySource };
}

/** Same as `platform.verifySource`, in the argument order the gateway uses. */
export function verifySource(credentials: SourceCredentials, accountId: string, apis: readonly SourceApi[], platform: Platform): Promise<VerifyResult> {
  return platform.verifySource(credentials, accountId, apis);
}

/** A platform from the process configuration, with the Redis-backed per-account rate budget. */
export function platformFromConfig(
  config: {
    PLATFORM_CSDS_URL: string;
    PLATFORM_DATA_ACCESS_URL?: string | undefined;
    PLATFORM_TIMEOUT_MS: number;
    PLATFORM_RATE_PER_SECOND: number;
    ALLOW_INSECURE_ENDPOINTS: boolean;
    REDIS_PREFIX: string;
  },
  redis: Redis | null,
  overrides: Partial<HttpOptions> = {},
): Platform {
  const budget: RateBudget | undefined = redis
    ? createRateBudget(redis, { prefix: `${config.REDIS_PREFIX}:source-rate`, ratePerSecond: config.PLATFORM_RATE_PER_SECOND })
    : undefined;
  return createPlatform({
    csdsUrl: config.PLATFORM_CSDS_URL,
    ...(config.PLATFORM_DATA_ACCESS_URL ? { dataAccessUrl: config.PLATFORM_DATA_ACCESS_URL } : {}),
    allowInsecure: config.ALLOW_INSECURE_ENDPOINTS,
    http: { timeoutMs: config.PLATFORM_TIMEOUT_MS, ...(budget ? { budget } : {}), ...overrides },
  });
}
