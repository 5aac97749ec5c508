import { gzipSync } from "node:zlib";
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import { buildConversation, conversationSeries, DEFAULT_CONVERSATIONS_PER_HOUR } from "./data/conversations.js";
import {
  DATA_ACCESS_TYPES,
  dataAccessFileName,
  dataAccessFileRecords,
  parseDataAccessFileName,
  type DataAccessType,
} from "./data/data-access.js";
import { agentGroupsResource, directoryFor, skillsResource, usersResource } from "./data/directory.js";
import { buildEngagement, engagementSeries } from "./data/engagements.js";
import { agentActivityIntervals, agentStates, queueHealthMetrics, sumMetrics, type QueueMetrics } from "./data/operations.js";
import { HOUR_MS, MINUTE_MS } from "./data/random.js";
import { countInRange, sliceInRange, type EventRef } from "./data/series.js";
import { NonceLog, verifyOAuth, type OAuthCredentials } from "./oauth.js";

/** API names, the same strings as `SourceApi` in libs/sources (kept separate: the simulator is an independent peer). */
export const SIMULATED_APIS = [
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
export type SimulatedApi = (typeof SIMULATED_APIS)[number];

const DATA_ACCESS_API: Record<DataAccessType, SimulatedApi> = {
  agentActivity: "data-access-agent-activity",
  webSession: "data-access-web-session",
  engagement: "data-access-engagement",
  survey: "data-access-survey",
};

/** The domain-discovery service each API is served from (the Data Access API has none). */
const SERVICE_NAME: Partial<Record<SimulatedApi, string>> = {
  "messaging-interactions": "msgHist",
  "engagement-history": "engHistDomain",
  "messaging-operations-queue-health": "leDataReporting",
  "messaging-operations-agent-activity": "leDataReporting",
  "account-config-users": "accountConfigReadOnly",
  "account-config-skills": "accountConfigReadOnly",
  "account-config-agent-groups": "accountConfigReadOnly",
};

export interface AccountRegistration extends OAuthCredentials {
  /** APIs this key may use (default: all). */
  permissions?: SimulatedApi[];
  /** Whether the account is enabled for the Data Access API (default true), or which of its data types. */
  dataAccessEnabled?: boolean | DataAccessType[];
  /** Mean records per hour, per kind (defaults: 12 conversations, 6 engagements, 4 data-access sessions per type). */
  volume?: { conversations?: number; engagements?: number; dataAccess?: number };
}

export interface Faults {
  status429?: { count: number; retryAfterSeconds: number };
  status5xx?: { count: number; status?: number };
  slowMs?: number;
  truncateBody?: { count: number };
  /** Engagement History pages answered from some shards only (`shardsStatusResult.partialResult`), records missing. */
  partialResult?: { count: number };
  forbidden?: SimulatedApi[];
  /**
   * These APIs answer 401 naming the API's service (`API key is not authorized for msgHist`), as
   * the platform does for a key lacking some APIs' permission: a 401 that is not a wrong key.
   */
  unauthorized401?: SimulatedApi[];
  repeatNextLink?: boolean;
  outOfWindowRecords?: boolean;
  duplicateAcrossPages?: boolean;
  /**
   * Messaging Interactions: every third conversation on a page is partial (`info.isPartial`, only
   * its first message), its full record served by the single-conversation method, as documented.
   */
  partialConversations?: boolean;
  /** Limit the faults above to these APIs (default: every API). */
  apis?: SimulatedApi[];
}

export interface RequestLogEntry {
  at: number;
  api: SimulatedApi | "csds" | "data-access-base";
  method: string;
  path: string;
  status: number;
}

export interface SimulatorControl {
  registerAccount(accountId: string, registration: AccountRegistration): void;
  setFaults(accountId: string, faults: Faults): void;
  clearFaults(accountId: string): void;
  /** Every platform request the account received (CSDS included), oldest first. */
  requestLog(accountId: string): RequestLogEntry[];
  clearRequestLog(accountId: string): void;
}

export interface SimulatorOptions {
  port?: number;
  host?: string;
  seed?: string;
  /** Data Access batches are published this long after their hour ends (default 0). */
  dataAccessLagMs?: number;
  /** Serve the `/_simulator/...` control API (default true). */
  controlApi?: boolean;
  logger?: boolean;
  now?: () => number;
}

export interface Simulator {
  url: string;
  seed: string;
  control: SimulatorControl;
  app: FastifyInstance;
  stop(): Promise<void>;
}

/** Documented limits. */
export const LIMITS = {
  messagingInteractions: { maxLimit: 100, maxRangeMs: 93 * 24 * HOUR_MS },
  engagementHistory: { maxLimit: 100, maxRangeMs: 31 * 24 * HOUR_MS },
  operations: { maxTimeframeMinutes: 1440, minIntervalMinutes: 5 },
} as const;

interface AccountState {
  registration?: AccountRegistration;
  faults: Faults;
  log: RequestLogEntry[];
  /** Conversations served partial (partialConversations), by id: what the single-conversation method serves whole. */
  partial?: Map<string, EventRef>;
}

const TEN_MINUTES = 10 * MINUTE_MS;
const LOG_LIMIT = 100_000;

class HttpProblem extends Error {
  constructor(
    readonly status: number,
    readonly body: Record<string, unknown>,
    readonly headers: Record<string, string> = {},
  ) {
    super(String(body.message ?? body.error ?? status));
  }
}

export async function startSimulator(options: SimulatorOptions = {}): Promise<Simulator> {
  const seed = options.seed ?? "transporter";
  const now = options.now ?? Date.now;
  const lag = options.dataAccessLagMs ?? 0;
  const accounts = new Map<string, AccountState>();
  const stateOf = (accountId: string): AccountState => {
    let state = accounts.get(accountId);
    if (!state) {
      state = { faults: {}, log: [] };
      accounts.set(accountId, state);
    }
    return state;
  };

  const control: SimulatorControl = {
    registerAccount(accountId, registration) {
      stateOf(accountId).registration = { ...registration };
    },
    setFaults(accountId, faults) {
      stateOf(accountId).faults = structuredClone(faults);
    },
    clearFaults(accountId) {
      stateOf(accountId).faults = {};
    },
    requestLog(accountId) {
      return [...(accounts.get(accountId)?.log ?? [])];
    },
    clearRequestLog(accountId) {
      stateOf(accountId).log = [];
    },
  };

  // Nonces of this simulator's accepted requests: a replayed request is refused.
  const nonces = new NonceLog();

  const app = Fastify({ logger: options.logger ?? false, bodyLimit: 1024 * 1024 });
  // A form body is kept as sent: its parameters are part of the OAuth signature (RFC 5849 §3.4.1.3.1).
  app.addContentTypeParser("application/x-www-form-urlencoded", { parseAs: "string" }, (_req, body, done) => done(null, body));
  // Accept JSON bodies whatever other content type the client claims (the platform is lenient too).
  app.addContentTypeParser("*", { parseAs: "string" }, (_req, body, done) => {
    try {
      done(null, body === "" ? {} : JSON.parse(body as string));
    } catch (error) {
      done(error as Error, undefined);
    }
  });

  const selfUrl = (request: FastifyRequest, query: Record<string, string | number>): string => {
    const path = request.url.split("?")[0]!;
    const qs = new URLSearchParams(Object.entries(query).map(([k, v]): [string, string] => [k, String(v)])).toString();
    return `http://${request.headers.host}${path}${qs ? `?${qs}` : ""}`;
  };

  const log = (accountId: string, entry: Omit<RequestLogEntry, "at">) => {
    const state = stateOf(accountId);
    if (state.log.length >= LOG_LIMIT) state.log.shift();
    state.log.push({ at: now(), ...entry });
  };

  const faultApplies = (faults: Faults, api: SimulatedApi): boolean => !faults.apis || faults.apis.includes(api);

  /**
   * The common gate of every data endpoint: signature, permission, injected faults, then the
   * handler; the body may be cut short on purpose. Bodies are serialised here so truncation
   * produces a well-framed HTTP response carrying broken JSON (or a broken gzip stream).
   */
  async function serve(
    request: FastifyRequest<{ Params: { accountId: string } }>,
    reply: FastifyReply,
    api: SimulatedApi | "data-access-base",
    handler: (account: AccountState) => { body: Buffer | string; contentType: string; headers?: Record<string, string> },
  ): Promise<FastifyReply> {
    const { accountId } = request.params;
    const account = stateOf(accountId);
    const faults = account.faults;
    const gateApi: SimulatedApi = api === "data-access-base" ? "data-access-agent-activity" : api;
    const path = request.url.split("?")[0]!;
    let status = 200;
    try {
      if (faults.slowMs && faultApplies(faults, gateApi)) await new Promise((r) => setTimeout(r, faults.slowMs));
      const registration = account.registration;
      if (!registration) throw new HttpProblem(401, { error: "Unauthorized", message: "unknown consumer key" });
      const form = /^application\/x-www-form-urlencoded\s*(;|$)/i.test(request.headers["content-type"] ?? "") && typeof request.body === "string";
      const formBody = form ? (request.body as string) : undefined;
      const verdict = verifyOAuth(request.method, `http://${request.headers.host}${request.url}`, request.headers.authorization, registration, now(), {
        nonces,
        ...(formBody === undefined ? {} : { formBody }),
      });
      if (!verdict.ok) throw new HttpProblem(401, { error: "Unauthorized", message: verdict.reason });
      if ((faults.unauthorized401 ?? []).includes(gateApi)) {
        throw new HttpProblem(401, { error: "Unauthorized", message: `API key is not authorized for ${SERVICE_NAME[gateApi] ?? gateApi}` });
      }
      const forbidden = (faults.forbidden ?? []).includes(gateApi);
      const permitted = api === "data-access-base" || !registration.permissions || registration.permissions.includes(api);
      if (forbidden || !permitted) throw new HttpProblem(403, { error: "Forbidden", message: `API key is not authorized for ${api}` });
      if (faults.status429 && faults.status429.count > 0 && faultApplies(faults, gateApi)) {
        faults.status429.count--;
        throw new HttpProblem(429, { error: "Too Many Requests" }, { "retry-after": String(faults.status429.retryAfterSeconds) });
      }
      if (faults.status5xx && faults.status5xx.count > 0 && faultApplies(faults, gateApi)) {
        faults.status5xx.count--;
        throw new HttpProblem(faults.status5xx.status ?? 503, { error: "Service Unavailable" });
      }
      const out = handler(account);
      let body = typeof out.body === "string" ? Buffer.from(out.body, "utf8") : out.body;
      if (faults.truncateBody && faults.truncateBody.count > 0 && faultApplies(faults, gateApi)) {
        faults.truncateBody.count--;
        body = body.subarray(0, Math.max(1, Math.floor(body.length / 2)));
      }
      log(accountId, { api, method: request.method, path, status });
      for (const [k, v] of Object.entries(out.headers ?? {})) reply.header(k, v);
      return reply.code(200).type(out.contentType).send(body);
    } catch (error) {
      if (!(error instanceof HttpProblem)) throw error;
      status = error.status;
      log(accountId, { api, method: request.method, path, status });
      for (const [k, v] of Object.entries(error.headers)) reply.header(k, v);
      return reply.code(error.status).type("application/json").send(JSON.stringify(error.body));
    }
  }

  const json = (value: unknown) => ({ body: JSON.stringify(value), contentType: "application/json; charset=utf-8" });

  // --- CSDS -----------------------------------------------------------------------------------
  app.get<{ Params: { accountId: string }; Querystring: { version?: string } }>(
    "/api/account/:accountId/service/baseURI.json",
    async (request, reply) => {
      const { accountId } = request.params;
      const known = accounts.get(accountId)?.registration !== undefined;
      log(accountId, { api: "csds", method: "GET", path: request.url.split("?")[0]!, status: known ? 200 : 404 });
      if (!known) return reply.code(404).send({ code: 404, message: `account ${accountId} not found` });
      const host = request.headers.host!;
      const services = ["msgHist", "engHistDomain", "leDataReporting", "accountConfigReadOnly", "accountConfigReadWrite", "agentVep", "asyncMessagingEnt"];
      return { baseURIs: services.map((service) => ({ service, account: accountId, baseURI: host })) };
    },
  );

  // --- Messaging Interactions -----------------------------------------------------------------
  type SearchRequest = FastifyRequest<{ Params: { accountId: string }; Querystring: Record<string, string>; Body: unknown }>;

  /** Documented as required of Messaging Interactions callers: who is calling, at most 20 characters. */
  function requireSource(query: Record<string, string>): void {
    const { source } = query;
    if (typeof source !== "string" || source.length === 0 || source.length > 20) {
      throw new HttpProblem(400, { error: "Bad Request", message: "source is required (the calling application, at most 20 characters)" });
    }
  }

  function searchWindow(request: SearchRequest, maxRangeMs: number, maxLimit: number) {
    const q = request.query;
    const offset = q.offset === undefined ? 0 : Number(q.offset);
    const limit = q.limit === undefined ? 50 : Number(q.limit);
    if (!Number.isInteger(offset) || offset < 0) throw new HttpProblem(400, { error: "Bad Request", message: "offset must be a non-negative integer" });
    if (!Number.isInteger(limit) || limit < 1 || limit > maxLimit) throw new HttpProblem(400, { error: "Bad Request", message: `limit must be between 1 and ${maxLimit}` });
    const body = (request.body ?? {}) as { start?: { from?: unknown; to?: unknown }; contentToRetrieve?: unknown };
    const from = Number(body.start?.from);
    const to = Number(body.start?.to);
    if (!Number.isFinite(from) || !Number.isFinite(to) || to < from) throw new HttpProblem(400, { error: "Bad Request", message: "start.from and start.to (epoch ms) are required" });
    if (to - from > maxRangeMs) throw new HttpProblem(400, { error: "Bad Request", message: "time range exceeds the maximum interval" });
    // Documented: from/to are rounded to the last/next 10 minutes, and both bounds are included.
    const fromR = Math.floor(from / TEN_MINUTES) * TEN_MINUTES;
    const toR = Math.ceil(to / TEN_MINUTES) * TEN_MINUTES + 1;
    const sort = q.sort ?? "start:asc";
    if (sort !== "start:asc" && sort !== "start:desc") throw new HttpProblem(400, { error: "Bad Request", message: "unsupported sort" });
    return { offset, limit, fromR, toR, desc: sort === "start:desc", content: contentToRetrieve(body.contentToRetrieve) };
  }

  function page(
    request: SearchRequest,
    account: AccountState,
    kind: "conversations" | "engagements",
    maxRangeMs: number,
    maxLimit: number,
  ) {
    const { offset, limit, fromR, toR, desc, content } = searchWindow(request, maxRangeMs, maxLimit);
    if (kind === "conversations") requireSource(request.query);
    const accountId = request.params.accountId;
    const volume = account.registration?.volume;
    const spec =
      kind === "conversations"
        ? conversationSeries(accountId, seed, { perHour: volume?.conversations ?? DEFAULT_CONVERSATIONS_PER_HOUR })
        : engagementSeries(accountId, seed, volume?.engagements === undefined ? {} : { perHour: volume.engagements });
    const build = kind === "conversations" ? buildConversation : buildEngagement;
    const faults = account.faults;
    const api: SimulatedApi = kind === "conversations" ? "messaging-interactions" : "engagement-history";
    const total = countInRange(spec, fromR, toR);
    // Duplicate fault: each page after the first starts one record early (the previous page's last).
    const dup = faults.duplicateAcrossPages && faultApplies(faults, api) && offset > 0 ? 1 : 0;
    let refs: EventRef[];
    if (desc) {
      const end = Math.max(0, total - offset + dup);
      const start = Math.max(0, total - offset - limit);
      refs = sliceInRange(spec, fromR, toR, start, end - start).reverse();
    } else {
      refs = sliceInRange(spec, fromR, toR, offset - dup, limit + dup);
    }
    const records = refs.map((ref) => build(accountId, seed, ref));
    if (kind === "conversations" && faults.partialConversations && faultApplies(faults, api)) {
      account.partial ??= new Map();
      records.forEach((record, i) => {
        if (i % 3 !== 1) return;
        const info = record.info as Record<string, unknown>;
        account.partial!.set(String(info.conversationId), refs[i]!);
        record.info = { ...info, isPartial: true };
        record.messageRecords = (record.messageRecords as unknown[]).slice(0, 1);
      });
    }
    if (faults.outOfWindowRecords && faultApplies(faults, api)) {
      // Records from well outside the asked range, as a misbehaving index would return.
      const stray = Math.floor(fromR / HOUR_MS) - 48;
      records.push(build(accountId, seed, { hour: stray, rank: 10_000 + offset, startMs: fromR - 36 * HOUR_MS }));
      records.unshift(build(accountId, seed, { hour: stray + 200_000, rank: 20_000 + offset, startMs: toR + 36 * HOUR_MS }));
    }
    const filtered = content && kind === "conversations" ? records.map((r) => pick(r, ["info", ...content])) : records;
    const base = { ...request.query };
    const metadata: Record<string, unknown> = { count: total, self: { rel: "self", href: selfUrl(request, { ...base, offset, limit }) } };
    if (offset + limit < total) {
      const nextOffset = faults.repeatNextLink && faultApplies(faults, api) ? offset : offset + limit;
      metadata.next = { rel: "next", href: selfUrl(request, { ...base, offset: nextOffset, limit }) };
      metadata.last = { rel: "last", href: selfUrl(request, { ...base, offset: Math.max(0, Math.floor((total - 1) / limit) * limit), limit }) };
    }
    if (offset > 0) metadata.prev = { rel: "prev", href: selfUrl(request, { ...base, offset: Math.max(0, offset - limit), limit }) };
    let served = filtered;
    if (kind === "engagements") {
      metadata.shardsStatusResult = { partialResult: false };
      if (faults.partialResult && faults.partialResult.count > 0 && faultApplies(faults, api)) {
        faults.partialResult.count--;
        // Two of six shards did not answer: their records are missing from the page.
        metadata.shardsStatusResult = { partialResult: true, failureShards: 2, totalShards: 6 };
        served = filtered.filter((_record, i) => i % 3 !== 0);
      }
    }
    return json(kind === "conversations" ? { _metadata: metadata, conversationHistoryRecords: served } : { _metadata: metadata, interactionHistoryRecords: served });
  }

  app.post<{ Params: { accountId: string }; Querystring: Record<string, string> }>(
    "/messaging_history/api/account/:accountId/conversations/search",
    (request, reply) =>
      serve(request, reply, "messaging-interactions", (account) =>
        page(request as SearchRequest, account, "conversations", LIMITS.messagingInteractions.maxRangeMs, LIMITS.messagingInteractions.maxLimit),
      ),
  );

  // Documented: one conversation by id, whole, answered like a page of the search.
  app.post<{ Params: { accountId: string }; Querystring: Record<string, string> }>(
    "/messaging_history/api/account/:accountId/conversations/conversation/search",
    (request, reply) =>
      serve(request, reply, "messaging-interactions", (account) => {
        requireSource(request.query);
        const id = (request.body as { conversationId?: unknown } | null)?.conversationId;
        if (typeof id !== "string" || id.length === 0) throw new HttpProblem(400, { error: "Bad Request", message: "conversationId is required" });
        const content = contentToRetrieve((request.body as { contentToRetrieve?: unknown } | null)?.contentToRetrieve);
        const ref = account.partial?.get(id);
        const whole = ref ? [buildConversation(request.params.accountId, seed, ref)] : [];
        const records = content ? whole.map((r) => pick(r, ["info", ...content])) : whole;
        return json({ _metadata: { count: records.length }, conversationHistoryRecords: records });
      }),
  );

  app.post<{ Params: { accountId: string }; Querystring: Record<string, string> }>(
    "/interaction_history/api/account/:accountId/interactions/search",
    (request, reply) =>
      serve(request, reply, "engagement-history", (account) =>
        page(request as SearchRequest, account, "engagements", LIMITS.engagementHistory.maxRangeMs, LIMITS.engagementHistory.maxLimit),
      ),
  );

  // --- Messaging Operations -------------------------------------------------------------------
  function operationsFrame(q: Record<string, string>) {
    const timeframe = Number(q.timeframe);
    if (q.v === undefined) throw new HttpProblem(400, { error: "Bad Request", message: "v is required" });
    if (!Number.isInteger(timeframe) || timeframe < 1 || timeframe > LIMITS.operations.maxTimeframeMinutes) {
      throw new HttpProblem(400, { error: "Bad Request", message: "timeframe must be 1..1440 minutes" });
    }
    let interval: number | null = null;
    if (q.interval !== undefined) {
      interval = Number(q.interval);
      if (!Number.isInteger(interval) || interval < LIMITS.operations.minIntervalMinutes || interval > timeframe || timeframe % interval !== 0) {
        throw new HttpProblem(400, { error: "Bad Request", message: "interval must be >= 5, <= timeframe and divide it" });
      }
    }
    const size = (interval ?? timeframe) * MINUTE_MS;
    const end = Math.floor(now() / size) * size;
    const start = end - timeframe * MINUTE_MS;
    return { timeframe, interval, start, end };
  }

  app.get<{ Params: { accountId: string }; Querystring: Record<string, string> }>(
    "/operations/api/account/:accountId/msgqueuehealth",
    (request, reply) =>
      serve(request, reply, "messaging-operations-queue-health", () => {
        const { accountId } = request.params;
        const { timeframe, interval, start, end } = operationsFrame(request.query);
        const all = directoryFor(accountId, seed).skills.filter((s) => !s.deleted).map((s) => s.id);
        const wanted = request.query.skillIds && request.query.skillIds !== "all" ? request.query.skillIds.split(",").map(Number) : all;
        const skills = wanted.filter((id) => all.includes(id));
        const block = (t: number, minutes: number) => {
          const skillsMetrics: Record<string, QueueMetrics> = {};
          for (const id of skills) skillsMetrics[String(id)] = queueHealthMetrics(accountId, seed, id, t, minutes);
          return { skillsMetrics, metricsTotal: sumMetrics(Object.values(skillsMetrics)) };
        };
        if (interval === null) return json(block(start, timeframe));
        // Documented: each timestamp is the interval's START.
        const metricsByIntervals = [];
        for (let t = end - interval * MINUTE_MS; t >= start; t -= interval * MINUTE_MS) metricsByIntervals.push({ timestamp: t, metricsData: block(t, interval) });
        return json({ metricsByIntervals, timeframeSummary: block(start, timeframe) });
      }),
  );

  app.get<{ Params: { accountId: string }; Querystring: Record<string, string> }>(
    "/operations/api/account/:accountId/agentactivity",
    (request, reply) =>
      serve(request, reply, "messaging-operations-agent-activity", () => {
        const { accountId } = request.params;
        const { timeframe, interval, start } = operationsFrame(request.query);
        if (!request.query.agentIds) throw new HttpProblem(400, { error: "Bad Request", message: "agentIds is required" });
        const all = directoryFor(accountId, seed).agents.filter((a) => !a.deleted).map((a) => a.id);
        const agents = request.query.agentIds === "all" ? all : request.query.agentIds.split(",").map(Number).filter((id) => all.includes(id));
        const block = (t: number, minutes: number) => {
          const metricsPerAgent: Record<string, unknown> = {};
          for (const id of agents) metricsPerAgent[String(id)] = agentStates(accountId, seed, id, t, minutes);
          return { agentsMetrics: { metricsPerAgent, metricsTotals: [] } };
        };
        if (interval === null) return json(block(start, timeframe));
        // Documented: each timestamp is the interval's END; the latest interval is rounded up and
        // the earliest holds only the remainder of the timeframe.
        const metricsByIntervals = agentActivityIntervals(now(), timeframe, interval).map((i) => ({
          timestamp: i.timestamp,
          metricsData: block(i.dataFrom, (i.dataTo - i.dataFrom) / MINUTE_MS),
        }));
        return json({ metricsByIntervals, ...block(start, timeframe) });
      }),
  );

  // --- Account configuration ------------------------------------------------------------------
  const configRoutes: Array<[string, SimulatedApi, (accountId: string, seed: string) => unknown[]]> = [
    ["users", "account-config-users", usersResource],
    ["skills", "account-config-skills", skillsResource],
    ["agentGroups", "account-config-agent-groups", agentGroupsResource],
  ];
  for (const [resource, api, build] of configRoutes) {
    app.get<{ Params: { accountId: string }; Querystring: Record<string, string> }>(`/api/account/:accountId/configuration/le-users/${resource}`, (request, reply) =>
      serve(request, reply, api, () => {
        // Documented: deleted entries only with include_deleted=true (default false).
        const entries = build(request.params.accountId, seed) as Array<{ deleted?: boolean }>;
        const listed = request.query.include_deleted === "true" ? entries : entries.filter((entry) => entry.deleted !== true);
        return { ...json(listed), headers: { "ac-revision": "42" } };
      }),
    );
  }

  // --- Data Access ----------------------------------------------------------------------------
  const enabledTypes = (registration: AccountRegistration | undefined): DataAccessType[] => {
    const enabled = registration?.dataAccessEnabled ?? true;
    if (enabled === true) return [...DATA_ACCESS_TYPES];
    if (enabled === false) return [];
    return enabled;
  };
  const requireEnabled = (account: AccountState, type: DataAccessType, accountId: string) => {
    if (!enabledTypes(account.registration).includes(type)) {
      throw new HttpProblem(403, { error: "Forbidden", message: `Data Access is not enabled for account ${accountId} (${type})` });
    }
  };

  app.get<{ Params: { accountId: string } }>("/data_access_le/account/:accountId/le", (request, reply) =>
    serve(request, reply, "data-access-base", (account) => {
      const { accountId } = request.params;
      const base = `http://${request.headers.host}/data_access_le/account/${accountId}/le`;
      const link = [{ "@href": base, "@rel": "self" }];
      for (const type of enabledTypes(account.registration)) link.push({ "@href": `${base}/${type}`, "@rel": type });
      link.push({ "@href": `${base}/schema`, "@rel": "schema" });
      return json({ le: { "@accountId": accountId, link } });
    }),
  );

  for (const type of DATA_ACCESS_TYPES) {
    const api = DATA_ACCESS_API[type];
    app.get<{ Params: { accountId: string }; Querystring: Record<string, string> }>(`/data_access_le/account/:accountId/le/${type}`, (request, reply) =>
      serve(request, reply, api, (account) => {
        const { accountId } = request.params;
        requireEnabled(account, type, accountId);
        const startTime = Number(request.query.startTime);
        const endTime = Number(request.query.endTime);
        if (!Number.isFinite(startTime) || !Number.isFinite(endTime) || endTime < startTime) {
          throw new HttpProblem(400, { error: "Bad Request", message: "startTime and endTime (epoch ms) are required" });
        }
        const base = `http://${request.headers.host}/data_access_le/account/${accountId}/le/${type}`;
        const published = now() - lag;
        const file: Array<Record<string, string>> = [];
        for (let hour = Math.ceil(startTime / HOUR_MS); hour * HOUR_MS < endTime && (hour + 1) * HOUR_MS <= published; hour++) {
          const name = dataAccessFileName(type, hour);
          const entry = {
            "@name": name,
            "@scopeStartDate": new Date(hour * HOUR_MS).toISOString(),
            "@scopeEndDate": new Date((hour + 1) * HOUR_MS).toISOString(),
            "@href": `${base}/${name}`,
          };
          file.push(entry);
          if (account.faults.duplicateAcrossPages && faultApplies(account.faults, api)) file.push({ ...entry });
        }
        if (account.faults.outOfWindowRecords && faultApplies(account.faults, api) && file.length > 0) {
          // A file of an hour before the range asked for: it belongs to an earlier window.
          const hour = Math.ceil(startTime / HOUR_MS) - 3;
          const name = dataAccessFileName(type, hour);
          const outside = { "@name": name, "@scopeStartDate": new Date(hour * HOUR_MS).toISOString(), "@scopeEndDate": new Date((hour + 1) * HOUR_MS).toISOString(), "@href": `${base}/${name}` };
          file.splice(Math.floor(file.length / 2), 0, outside);
        }
        return json({ dataAccessFiles: { "@id": accountId, link: { "@href": base, "@rel": "self" }, file } });
      }),
    );
    app.get<{ Params: { accountId: string; file: string } }>(`/data_access_le/account/:accountId/le/${type}/:file`, (request, reply) =>
      serve(request, reply, api, (account) => {
        const { accountId, file } = request.params;
        requireEnabled(account, type, accountId);
        const hour = parseDataAccessFileName(type, file);
        if (hour === null || (hour + 1) * HOUR_MS > now() - lag) throw new HttpProblem(404, { error: "Not Found", message: "no such file" });
        const perHour = account.registration?.volume?.dataAccess;
        const docs: string[] = [];
        for (const record of dataAccessFileRecords(accountId, seed, type, hour, perHour === undefined ? {} : { perHour })) docs.push(JSON.stringify(record));
        return { body: gzipSync(docs.join("\n") + "\n"), contentType: "application/gzip" };
      }),
    );
  }

  // --- Control API (tests, demo, benchmarks in other processes) -------------------------------
  if (options.controlApi ?? true) {
    app.get("/_simulator/health", async () => ({ ok: true, seed }));
    app.post<{ Params: { accountId: string }; Body: AccountRegistration }>("/_simulator/accounts/:accountId", async (request, reply) => {
      const body = request.body;
      if (!body || typeof body.consumerKey !== "string" || typeof body.consumerSecret !== "string" || typeof body.token !== "string" || typeof body.tokenSecret !== "string") {
        return reply.code(400).send({ error: "consumerKey, consumerSecret, token and tokenSecret are required" });
      }
      control.registerAccount(request.params.accountId, body);
      return reply.code(204).send();
    });
    app.put<{ Params: { accountId: string }; Body: Faults }>("/_simulator/accounts/:accountId/faults", async (request, reply) => {
      control.setFaults(request.params.accountId, request.body ?? {});
      return reply.code(204).send();
    });
    app.delete<{ Params: { accountId: string } }>("/_simulator/accounts/:accountId/faults", async (request, reply) => {
      control.clearFaults(request.params.accountId);
      return reply.code(204).send();
    });
    app.get<{ Params: { accountId: string } }>("/_simulator/accounts/:accountId/requests", async (request) => ({ requests: control.requestLog(request.params.accountId) }));
    app.delete<{ Params: { accountId: string } }>("/_simulator/accounts/:accountId/requests", async (request, reply) => {
      control.clearRequestLog(request.params.accountId);
      return reply.code(204).send();
    });
  }

  const address = await app.listen({ port: options.port ?? 0, host: options.host ?? "127.0.0.1" });
  const bound = app.server.address();
  const url = typeof bound === "object" && bound ? `http://${options.host ?? "127.0.0.1"}:${bound.port}` : address;
  return {
    url,
    seed,
    control,
    app,
    stop: async () => {
      await app.close();
    },
  };
}

/**
 * The documented `contentToRetrieve` values ("partial retrieval"); `info` always comes. The
 * conversation-by-id method documents six more; both endpoints accept them all.
 */
const CONTENT_TYPES = new Set([
  "campaign", "messageRecords", "agentParticipants", "agentParticipantsLeave", "agentParticipantsActive", "consumerParticipants",
  "transfers", "interactions", "messageScores", "messageStatuses", "conversationSurveys", "coBrowseSessions", "summary", "sdes",
  "unAuthSdes", "monitoring", "responseTime",
  "dialogs", "skillChanges", "intents", "uniqueIntents", "latestAgentSurvey", "previouslySubmittedAgentSurveys",
]);

/** The content types a Messaging Interactions body asks for (null: everything); 400 for an unknown one. */
function contentToRetrieve(value: unknown): string[] | null {
  if (value === undefined || value === null) return null;
  if (!Array.isArray(value) || value.some((v) => typeof v !== "string" || !CONTENT_TYPES.has(v))) {
    throw new HttpProblem(400, { error: "Bad Request", message: `contentToRetrieve must list content types among: ${[...CONTENT_TYPES].join(", ")}` });
  }
  return value as string[];
}

/** The record with only `keys`, in the record's own order (as the platform serialises them). */
function pick(record: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  return Object.fromEntries(Object.entries(record).filter(([key]) => keys.includes(key)));
}
