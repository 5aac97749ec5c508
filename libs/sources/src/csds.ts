import { startSpan, trace, type Span } from "@transporter/telemetry";
import type { SourceApi } from "./apis.js";
import { SourceError, sourceErrors } from "./errors.js";

/** CSDS service names of the APIs used here. */
export type CsdsService = "msgHist" | "engHistDomain" | "leDataReporting" | "accountConfigReadOnly";

export interface CsdsOptions {
  /** e.g. https://api.liveperson.net (or the simulator's URL). */
  csdsUrl: string;
  ttlMs?: number;
  timeoutMs?: number;
  fetch?: typeof fetch;
  now?: () => number;
}

interface Entry {
  at: number;
  domains: Map<string, string>;
}

/**
 * Domain discovery: `GET {csds}/api/account/{accountId}/service/baseURI.json?version=1.0`,
 * cached per account for `ttlMs` (default 10 minutes). Concurrent look-ups of one account share
 * a single request. Discovered hosts use the CSDS URL's scheme, so the simulator on plain http
 * works while production stays on https.
 */
export class CsdsClient {
  private readonly cache = new Map<string, Entry>();
  private readonly inflight = new Map<string, Promise<Map<string, string>>>();
  private readonly ttlMs: number;
  private readonly scheme: string;
  /** Number of HTTP requests made (for tests and metrics). */
  requests = 0;

  constructor(private readonly options: CsdsOptions) {
    this.ttlMs = options.ttlMs ?? 10 * 60_000;
    this.scheme = new URL(options.csdsUrl).protocol;
  }

  /**
   * Base URL (scheme://host) of a service for an account. A service the account's domains do not
   * list is an API the account does not have (`api_not_available`, permanent, naming `api`):
   * asking again gives the same list.
   */
  async baseUrl(accountId: string, service: CsdsService, api?: SourceApi): Promise<string> {
    const domains = await this.domains(accountId);
    const host = domains.get(service);
    if (!host) throw sourceErrors.apiNotAvailable(service, accountId, api);
    return /^https?:\/\//.test(host) ? host.replace(/\/$/, "") : `${this.scheme}//${host}`;
  }

  async domains(accountId: string): Promise<Map<string, string>> {
    const now = (this.options.now ?? Date.now)();
    const hit = this.cache.get(accountId);
    if (hit && now - hit.at < this.ttlMs) return hit.domains;
    let pending = this.inflight.get(accountId);
    if (!pending) {
      pending = this.lookup(accountId).finally(() => this.inflight.delete(accountId));
      this.inflight.set(accountId, pending);
    }
    const domains = await pending;
    this.cache.set(accountId, { at: (this.options.now ?? Date.now)(), domains });
    return domains;
  }

  invalidate(accountId: string): void {
    this.cache.delete(accountId);
  }

  /** One span per discovery request, in the trace of the fetch that needed it (cache hits make none). */
  private lookup(accountId: string): Promise<Map<string, string>> {
    return startSpan(trace.getTracer("transporter-sources"), "source discovery", { "transporter.source_api": "csds", "http.request.method": "GET" }, (span) =>
      this.request(accountId, span),
    );
  }

  private async request(accountId: string, span: Span): Promise<Map<string, string>> {
    const url = `${this.options.csdsUrl.replace(/\/$/, "")}/api/account/${encodeURIComponent(accountId)}/service/baseURI.json?version=1.0`;
    const doFetch = this.options.fetch ?? fetch;
    let response: Response;
    let text: string;
    try {
      this.requests++;
      response = await doFetch(url, { signal: AbortSignal.timeout(this.options.timeoutMs ?? 30_000), headers: { accept: "application/json" } });
      text = await response.text();
      span.setAttribute("http.response.status_code", response.status);
    } catch (error) {
      throw new SourceError("upstream_unavailable", `Domain discovery (CSDS) did not answer: ${(error as Error).message}`, {}, { cause: error });
    }
    if (response.status === 404 || response.status === 400) {
      throw new SourceError("unknown_account", `Domain discovery does not know account ${accountId}`, { status: response.status });
    }
    if (!response.ok) throw new SourceError("upstream_unavailable", `Domain discovery (CSDS) answered HTTP ${response.status}`, { status: response.status });
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new SourceError("malformed_response", "Domain discovery (CSDS) returned malformed JSON", { byteOffset: Buffer.byteLength(text) });
    }
    // Valid JSON of another shape is as broken as invalid JSON (and as likely to pass on a retry).
    const malformed = (what: string) => new SourceError("malformed_response", `Domain discovery (CSDS) returned a malformed answer: ${what}`, { byteOffset: 0 });
    if (typeof body !== "object" || body === null || Array.isArray(body)) throw malformed("not an object");
    const list = (body as { baseURIs?: unknown }).baseURIs ?? [];
    if (!Array.isArray(list)) throw malformed('"baseURIs" is not a list');
    const domains = new Map<string, string>();
    for (const entry of list as unknown[]) {
      if (typeof entry !== "object" || entry === null) throw malformed('an entry of "baseURIs" is not an object');
      const { service, baseURI } = entry as { service?: unknown; baseURI?: unknown };
      // An entry without its host is a broken answer, not a service the account lacks: that
      // would fail its runs for good (api_not_available) on what a retry may well fix.
      if (typeof service !== "string" || service === "") throw malformed('an entry of "baseURIs" names no service');
      if (typeof baseURI !== "string" || baseURI.trim() === "") throw malformed(`the entry for "${service}" has no baseURI`);
      domains.set(service, baseURI.trim());
    }
    if (domains.size === 0) throw new SourceError("unknown_account", `Domain discovery returned no services for account ${accountId}`);
    return domains;
  }
}
