import type { Readable } from "node:stream";
import { metrics, SpanStatusCode, startSpan, trace, type Counter } from "@transporter/telemetry";
import { SOURCE_API_LABELS, type SourceApi, type SourceCredentials } from "./apis.js";
import { isSourceError, SourceError, sourceErrors } from "./errors.js";
import { firstJsonError } from "./json-offset.js";
import { oauthHeader } from "./oauth.js";
import { unlimitedBudget, type RateBudget } from "./rate-budget.js";
import { bodyStream } from "./response-body.js";

export interface HttpOptions {
  /** Per attempt, including reading the body; for a streamed body, up to the headers and then between bytes. */
  timeoutMs?: number;
  /** Attempts for 5xx, 408, timeouts and network errors (default 4). */
  maxAttempts?: number;
  /** 429 answers waited out before giving up with `rate_limited` (default 8). */
  max429Waits?: number;
  /** Longest single Retry-After honoured (default 120 s); longer asks give up at once. */
  maxRetryAfterMs?: number;
  /** Largest body read whole (default 256 MiB): a larger 2xx page fails as `response_too_large`. */
  maxBodyBytes?: number;
  /** Exponential backoff: base * 2^(attempt-1), capped, with full jitter (defaults 500 ms / 15 s). */
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  budget?: RateBudget;
  fetch?: typeof fetch;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  random?: () => number;
}

export interface CallContext {
  accountId: string;
  credentials: SourceCredentials;
  api: SourceApi;
  /** Called once per HTTP request actually sent (retries included). */
  onCall?: () => void;
  signal?: AbortSignal;
}

export interface RawResponse {
  status: number;
  headers: Headers;
  body: Buffer;
}

export interface StreamedResponse {
  status: number;
  headers: Headers;
  /** Read as it arrives; destroy it to stop the download (see `PlatformHttp.stream`). */
  body: Readable;
}

const defaultSleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });

/**
 * Retry-After as seconds or an HTTP date; null when absent or unreadable. A date is measured
 * against `now`: pass the response's own Date header, so a clock of ours that runs ahead of the
 * platform's does not shorten the wait to nothing.
 */
export function parseRetryAfter(value: string | null, now = Date.now()): number | null {
  if (!value) return null;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

/** JSON.parse with failures turned into `malformed_response` carrying the byte offset. */
export function parseJson(body: Buffer, api?: SourceApi): unknown {
  return parseJsonText(body.toString("utf8"), api);
}

export function parseJsonText(text: string, api?: SourceApi): unknown {
  try {
    return JSON.parse(text);
  } catch {
    const at = firstJsonError(text);
    const index = at < 0 ? text.length : at;
    const offset = Buffer.byteLength(text.slice(0, index));
    const what = index >= text.length ? "JSON ends early (truncated body)" : "invalid JSON";
    throw sourceErrors.malformed(api, what, offset);
  }
}

/**
 * A 401 about the key itself: its signature, consumer key, access token, secret, nonce or
 * timestamp. Whatever else such an answer names, the key is what is wrong.
 */
const CREDENTIAL_PROBLEM =
  /signature|nonce|timestamp|token|secret|consumer|oauth|(?:invalid|unknown|wrong|bad|missing|expired|revoked|disabled)\s+(?:api\s+|app\s+)?(?:key|credentials?)\b|\bkey\s+(?:is\s+)?(?:invalid|unknown|wrong|not\s+found|expired|revoked|disabled)/i;

/** A 401 saying the key may not use something: a permission, or an API it is not allowed. */
const PERMISSION_NAMED = /permission|privilege|entitle|\bscopes?\b|not\s+(?:authori[sz]ed|permitted|allowed|entitled|enabled)\s+(?:for|to)\b/i;

/** The platform's names of the APIs (their domain-discovery services), as a 401 may name them. */
const SERVICE_NAMES = ["msgHist", "engHistDomain", "leDataReporting", "accountConfigReadOnly", "accountConfigReadWrite"];

/**
 * Whether a 401's body says the key lacks one API's permission (the platform answers so for some
 * APIs, e.g. "API key is not authorized for msgHist") rather than that the key is wrong. An
 * answer about the key's signature, token, nonce or timestamp, or one that names nothing (an
 * empty or unreadable body), is about the key.
 */
function namesMissingPermission(body: Buffer, api: SourceApi): boolean {
  const text = body.toString("utf8");
  if (CREDENTIAL_PROBLEM.test(text)) return false;
  if (PERMISSION_NAMED.test(text)) return true;
  const lower = text.toLowerCase();
  return [api, SOURCE_API_LABELS[api], ...SERVICE_NAMES].some((name) => lower.includes(name.toLowerCase()));
}

/** Error bodies are read up to this much: enough to name the problem. */
const MAX_ERROR_BODY_BYTES = 64 * 1024;

/**
 * The body read as it arrives, never more than `maxBytes` of it in memory: past that the download
 * is cancelled and `tooLarge` thrown or, when null, the first `maxBytes` kept.
 */
async function readCapped(body: ReadableStream<Uint8Array> | null, maxBytes: number, tooLarge: (() => Error) | null): Promise<Buffer> {
  if (!body) return Buffer.alloc(0);
  const reader = body.getReader();
  const chunks: Buffer[] = [];
  let size = 0;
  for (;;) {
    const next = await reader.read();
    if (next.done) break;
    const chunk = Buffer.from(next.value.buffer, next.value.byteOffset, next.value.byteLength);
    if (size + chunk.length > maxBytes) {
      reader.cancel().catch(() => {});
      if (tooLarge) throw tooLarge();
      chunks.push(chunk.subarray(0, maxBytes - size));
      size = maxBytes;
      break;
    }
    chunks.push(chunk);
    size += chunk.length;
  }
  return Buffer.concat(chunks, size);
}

function upstreamMessage(body: Buffer): string {
  const text = body.subarray(0, 300).toString("utf8");
  try {
    const parsed = JSON.parse(body.toString("utf8")) as { message?: unknown; error?: unknown };
    const m = parsed.message ?? parsed.error;
    if (typeof m === "string") return m.slice(0, 200);
  } catch {
    /* not JSON */
  }
  return text.replace(/\s+/g, " ").slice(0, 200);
}

/**
 * Signed requests to the platform with a timeout per attempt, retries with exponential backoff
 * and full jitter for 5xx, 408, timeouts and network errors, 429 waited out per `Retry-After` (and
 * the account's shared rate budget paused as long), and every attempt paced by that budget.
 * Status codes become typed errors.
 */
export class PlatformHttp {
  private readonly o: Required<Omit<HttpOptions, "fetch" | "budget" | "sleep" | "random">>;
  private readonly budget: RateBudget;
  private readonly doFetch: typeof fetch;
  private readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  private readonly random: () => number;
  private readonly tracer = trace.getTracer("transporter-sources");
  private readonly requests: Counter;
  private readonly rateLimited: Counter;

  constructor(options: HttpOptions = {}) {
    this.o = {
      timeoutMs: options.timeoutMs ?? 30_000,
      maxAttempts: options.maxAttempts ?? 4,
      max429Waits: options.max429Waits ?? 8,
      maxRetryAfterMs: options.maxRetryAfterMs ?? 120_000,
      backoffBaseMs: options.backoffBaseMs ?? 500,
      backoffMaxMs: options.backoffMaxMs ?? 15_000,
      maxBodyBytes: options.maxBodyBytes ?? 256 * 1024 * 1024,
    };
    this.budget = options.budget ?? unlimitedBudget;
    this.doFetch = options.fetch ?? fetch;
    this.sleep = options.sleep ?? defaultSleep;
    this.random = options.random ?? Math.random;
    // Created per client, not per module: the meter provider is installed when a process starts telemetry.
    const meter = metrics.getMeter("transporter-sources");
    this.requests = meter.createCounter("transporter.source.requests", { description: "HTTP requests sent to the platform's APIs (retries included), by API and HTTP status", unit: "{request}" });
    this.rateLimited = meter.createCounter("transporter.source.rate_limited", { description: "Platform answers HTTP 429 (rate limited), by API", unit: "{response}" });
  }

  private backoff(attempt: number): number {
    const cap = Math.min(this.o.backoffMaxMs, this.o.backoffBaseMs * 2 ** (attempt - 1));
    return Math.round(cap / 2 + (this.random() * cap) / 2);
  }

  async json<T = unknown>(ctx: CallContext, method: "GET" | "POST", url: string, body?: unknown): Promise<{ data: T; headers: Headers }> {
    const response = await this.send(ctx, method, url, body);
    return { data: parseJson(response.body, ctx.api) as T, headers: response.headers };
  }

  /** The whole answer in memory: for bodies of a page or a list. */
  async send(ctx: CallContext, method: "GET" | "POST", url: string, body?: unknown): Promise<RawResponse> {
    const { response, buffer } = await this.exchange(ctx, method, url, body, "whole");
    return { status: response.status, headers: response.headers, body: buffer! };
  }

  /**
   * The answer as soon as its headers arrive, the body as a stream read as it is consumed (for
   * files of any size). Same signing, pacing, retries and errors as `send`, up to the headers:
   * once they are in, the timeout becomes an idle timeout between bytes of the body, and a body
   * that stops or breaks off is `upstream_unavailable` (nothing is retried after the headers).
   * Destroy the body to stop the download.
   */
  async stream(ctx: CallContext, method: "GET" | "POST", url: string, body?: unknown): Promise<StreamedResponse> {
    const { response, abort } = await this.exchange(ctx, method, url, body, "streamed");
    const options = { api: ctx.api, idleMs: this.o.timeoutMs, abort, ...(ctx.signal ? { signal: ctx.signal } : {}) };
    return { status: response.status, headers: response.headers, body: bodyStream(response.body, options) };
  }

  /**
   * Attempts until a 2xx answer or a final error. The timeout covers each attempt up to its
   * headers, plus its body unless a 2xx body is `streamed` (then it is left unread, and `abort`
   * cancels it; its span ends with the headers). A 2xx body read whole is capped at `maxBodyBytes`
   * (an endless body must not fill memory); error bodies are read up to their first 64 KiB, which
   * name the problem.
   */
  private async exchange(
    ctx: CallContext,
    method: "GET" | "POST",
    url: string,
    body: unknown,
    read: "whole" | "streamed",
  ): Promise<{ response: Response; buffer: Buffer | null; abort: AbortController }> {
    let failures = 0;
    let waits429 = 0;
    let lastProblem = "";
    for (;;) {
      ctx.signal?.throwIfAborted();
      await this.budget.acquire(ctx.accountId, ctx.signal);
      let response: Response;
      let buffer: Buffer | null;
      const abort = new AbortController();
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        abort.abort(new DOMException(`no answer within ${this.o.timeoutMs} ms`, "TimeoutError"));
      }, this.o.timeoutMs);
      const signal = ctx.signal ? AbortSignal.any([ctx.signal, abort.signal]) : abort.signal;
      try {
        ctx.onCall?.();
        // One span and one count per request sent; never the URL's query or the headers (OAuth).
        const attempt = { "transporter.source_api": ctx.api, "http.request.method": method, "http.request.resend_count": failures + waits429 };
        ({ response, buffer } = await startSpan(this.tracer, "source request", attempt, async (span) => {
          try {
            const answer = await this.doFetch(url, {
              method,
              redirect: "manual",
              signal,
              headers: {
                authorization: oauthHeader(method, url, ctx.credentials),
                accept: "application/json",
                ...(body === undefined ? {} : { "content-type": "application/json" }),
              },
              ...(body === undefined ? {} : { body: JSON.stringify(body) }),
            });
            const ok = answer.status >= 200 && answer.status < 300;
            let bytes: Buffer | null = null;
            if (!ok) bytes = await readCapped(answer.body, MAX_ERROR_BODY_BYTES, null); // read for its message only
            else if (read === "whole") bytes = await readCapped(answer.body, this.o.maxBodyBytes, () => sourceErrors.responseTooLarge(ctx.api, this.o.maxBodyBytes));
            span.setAttribute("http.response.status_code", answer.status);
            if (answer.status >= 400) span.setStatus({ code: SpanStatusCode.ERROR, message: `HTTP ${answer.status}` });
            this.requests.add(1, { api: ctx.api, status: String(answer.status) });
            if (answer.status === 429) this.rateLimited.add(1, { api: ctx.api });
            return { response: answer, buffer: bytes };
          } catch (error) {
            this.requests.add(1, { api: ctx.api, status: "error" });
            throw error;
          }
        }));
      } catch (error) {
        if (ctx.signal?.aborted) throw ctx.signal.reason;
        // A page over the size cap: the same page would come again.
        if (isSourceError(error)) throw error;
        lastProblem = timedOut ? `no answer within ${this.o.timeoutMs} ms` : `network error (${(error as Error).message})`;
        failures++;
        if (failures >= this.o.maxAttempts) {
          throw new SourceError("upstream_unavailable", `The platform's ${ctx.api} API is unavailable: ${lastProblem} after ${failures} attempts`, { api: ctx.api }, { cause: error });
        }
        await this.sleep(this.backoff(failures), ctx.signal);
        continue;
      } finally {
        clearTimeout(timer);
      }
      const status = response.status;
      if (status >= 200 && status < 300) return { response, buffer, abort };
      const text = buffer ?? Buffer.alloc(0);
      // 401 is the platform's answer to a wrong key, and for some APIs to a key lacking their
      // permission: the body tells which (a missing permission must not read as a wrong key).
      if (status === 401 && !namesMissingPermission(text, ctx.api)) throw sourceErrors.badCredentials(status, ctx.api);
      if (status === 401 || status === 403) {
        if (ctx.api.startsWith("data-access-") && /not enabled/i.test(text.toString("utf8"))) throw sourceErrors.dataAccessNotEnabled(ctx.api, status);
        throw sourceErrors.missingPermission(ctx.api, status);
      }
      if (status === 429) {
        const serverNow = Date.parse(response.headers.get("date") ?? "");
        const asked = parseRetryAfter(response.headers.get("retry-after"), Number.isFinite(serverNow) ? serverNow : Date.now());
        // No wait given, or one already over (a date in the past): back off rather than retry at once.
        const retryAfter = asked !== null && asked > 0 ? asked : this.backoff(waits429 + 1);
        // The limit is the account's: every task of it holds off, not only this one. Never for
        // longer than this client honours (a longer ask fails below and is waited out by the job).
        await this.budget.pause(ctx.accountId, Math.min(retryAfter, this.o.maxRetryAfterMs));
        waits429++;
        if (waits429 > this.o.max429Waits || retryAfter > this.o.maxRetryAfterMs) {
          throw new SourceError("rate_limited", `The platform kept rate-limiting the ${ctx.api} API (HTTP 429, ${waits429} times)`, { api: ctx.api, status, retryAfterMs: retryAfter });
        }
        await this.sleep(retryAfter, ctx.signal);
        continue;
      }
      // 408: a proxy or load balancer in front of the platform gave up waiting; retried as 5xx.
      if (status >= 500 || status === 408) {
        failures++;
        lastProblem = `HTTP ${status}`;
        if (failures >= this.o.maxAttempts) {
          throw new SourceError("upstream_unavailable", `The platform's ${ctx.api} API is unavailable: HTTP ${status} after ${failures} attempts`, { api: ctx.api, status });
        }
        await this.sleep(this.backoff(failures), ctx.signal);
        continue;
      }
      throw new SourceError("upstream_rejected", `The platform rejected the ${ctx.api} request: HTTP ${status} ${upstreamMessage(text)}`, { api: ctx.api, status });
    }
  }
}
