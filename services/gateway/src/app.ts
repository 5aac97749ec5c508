import { randomUUID } from "node:crypto";
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest, type RawReplyDefaultExpression, type RawRequestDefaultExpression, type RawServerDefault } from "fastify";
import rateLimit from "@fastify/rate-limit";
import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import { hasZodFastifySchemaValidationErrors, isResponseSerializationError, jsonSchemaTransform, serializerCompiler, validatorCompiler, type ZodTypeProvider } from "fastify-type-provider-zod";
import type { TenantDb } from "@transporter/db";
import { closeRedis, createRedis, logConnectionOutages, readyWithin } from "@transporter/queue";
import { createLogger } from "@transporter/telemetry";
import { authenticate, requireRole, TenantClients, type AuthContext } from "./auth.js";
import type { GatewayDeps } from "./deps.js";
import { badRequest, Problem, type FieldProblem } from "./problem.js";
import { jsonBodyParser } from "./json-body.js";
import { registerRoutes } from "./routes/index.js";
import { ADMIN_QUEUES_PATH, registerQueueDashboard } from "./admin-queues.js";
import { FastifyOtelInstrumentation } from "@fastify/otel";

export type GatewayApp = FastifyInstance<RawServerDefault, RawRequestDefaultExpression, RawReplyDefaultExpression, FastifyBaseLogger, ZodTypeProvider>;

declare module "fastify" {
  interface FastifyRequest {
    auth: AuthContext | null;
    /** Tenant-scoped Prisma client (tenant keys only). */
    db: TenantDb;
  }
  interface FastifyInstance {
    deps: GatewayDeps;
    requireRole: typeof requireRole;
  }
}

const PUBLIC_PATHS = ["/healthz", "/readyz", "/openapi.json", "/docs"];
const READ_METHODS = new Set(["GET", "HEAD"]);

/**
 * The route the router matched for this request (`/v1/tasks/:id`), or undefined when none did.
 * Access rules look at this, never at `req.url`: the router decodes percent-escapes before it
 * matches (`/%761/tenants` reaches `/v1/tenants`), so a string test on the raw URL can be
 * walked around.
 */
function matchedRoute(req: FastifyRequest): string | undefined {
  return req.routeOptions.url;
}

function isPublicRoute(route: string): boolean {
  return PUBLIC_PATHS.some((p) => route === p || route.startsWith(`${p}/`));
}

const NUL = "\u0000";
const MAX_NUL_PROBLEMS = 10;
/**
 * How many objects and arrays a request may nest (the body itself is level 1). No request of the
 * API needs a tenth of it; deeper values would be stored as they are and fail whatever walks them
 * recursively later (JSON.stringify when sealing credentials or writing an audit event).
 */
export const MAX_JSON_DEPTH = 64;
/** Marks, between the swagger transforms, an operation whose body may be left out. */
const OPTIONAL_BODY = "x-transporter-optional-body";
/** How long counting a request against its rate limit may take before the request goes uncounted. */
const RATE_LIMIT_COUNT_MS = 2_000;

/**
 * A parsed JSON object, query string or path parameters (the router's and the query parser's are
 * null-prototype objects, or made by a constructor whose prototype is one); not a Buffer or a
 * stream a content-type parser might hand over.
 */
function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== "object") return false;
  const proto = Object.getPrototypeOf(value) as object | null;
  return proto === null || proto === Object.prototype || Object.getPrototypeOf(proto) === null;
}

/** A UTF-16 surrogate without its other half (JSON's `"\ud800"`): not a character at all. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Why PostgreSQL could not store this text (a 500 for the caller), or undefined. */
function unstorableText(text: string): string | undefined {
  if (text.includes(NUL)) return "the NUL character (U+0000)";
  if (LONE_SURROGATE.test(text)) return "a lone UTF-16 surrogate (not well-formed Unicode)";
  return undefined;
}

/**
 * Where a parsed query string, path parameters or JSON body holds text PostgreSQL cannot store
 * (U+0000, a lone surrogate), in a string or a field name: text and jsonb refuse it, so the query
 * would fail (a 500); and where it nests objects and arrays deeper than MAX_JSON_DEPTH. One pass
 * without recursion: a deeply nested body cannot exhaust the stack.
 */
function unstorableTextProblems(root: unknown, where: string): FieldProblem[] {
  type Node = { value: unknown; key: string; parent: Node | null; depth: number };
  const pathOf = (node: Node) => {
    const keys: string[] = [];
    for (let n: Node | null = node; n; n = n.parent) keys.push(n.key.replaceAll(NUL, "\\u0000"));
    return keys.reverse().join(".");
  };
  const problems: FieldProblem[] = [];
  // depth: how many objects and arrays hold the value (0 for the body itself).
  const pending: Node[] = [{ value: root, key: where, parent: null, depth: 0 }];
  while (pending.length > 0 && problems.length < MAX_NUL_PROBLEMS) {
    const node = pending.pop()!;
    const { value } = node;
    if (typeof value === "string") {
      const bad = unstorableText(value);
      if (bad) problems.push({ path: pathOf(node), message: `must not contain ${bad}` });
    } else if ((Array.isArray(value) || isPlainObject(value)) && node.depth >= MAX_JSON_DEPTH) {
      problems.push({ path: pathOf(node), message: `nests objects and arrays too deeply: at most ${MAX_JSON_DEPTH} levels` });
    } else if (Array.isArray(value)) {
      for (let i = value.length - 1; i >= 0; i--) pending.push({ value: value[i], key: String(i), parent: node, depth: node.depth + 1 });
    } else if (isPlainObject(value)) {
      const keys = Object.keys(value);
      for (let i = keys.length - 1; i >= 0; i--) {
        const key = keys[i]!;
        const child: Node = { value: value[key], key, parent: node, depth: node.depth + 1 };
        const bad = unstorableText(key);
        if (bad) problems.push({ path: pathOf(child), message: `field names must not contain ${bad}` });
        else pending.push(child);
      }
    }
  }
  return problems;
}

/**
 * What is wrong with the body of a request to a route that takes none (no body schema): any field
 * is one the API does not know, refused rather than ignored (a `{"id": …}` sent to activate
 * would otherwise "succeed" without doing what was asked). No body, null and {} are fine.
 */
function unexpectedBodyProblems(body: unknown): FieldProblem[] {
  if (body === undefined || body === null) return [];
  if (isPlainObject(body)) {
    return Object.keys(body)
      .slice(0, MAX_NUL_PROBLEMS)
      .map((key) => ({ path: `body.${key}`, message: "unknown field: this request takes no body" }));
  }
  return [{ path: "body", message: "this request takes no body (send none, or {})" }];
}

/**
 * The gateway as a plugin-registering function: tests `inject` into it; only server.ts listens.
 */
export async function buildApp(deps: GatewayDeps): Promise<GatewayApp> {
  const logger = deps.logger ?? createLogger({ name: "gateway", level: deps.config.LOG_LEVEL });
  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    genReqId: (req) => {
      const given = req.headers["x-request-id"];
      return typeof given === "string" && /^[A-Za-z0-9._-]{8,128}$/.test(given) ? given : randomUUID();
    },
    trustProxy: true,
    bodyLimit: 2 * 1024 * 1024,
    // Fastify writes its own request lines before the request's span opens (no trace id on
    // them); ours below are written inside the span.
    logController: new LogController({ disableRequestLogging: true }),
    // What the router refuses before any route runs (a broken percent-escape, a path parameter
    // over its length limit) gets the API's problem+json 400 like every other bad input.
    frameworkErrors: (error, _req, reply: FastifyReply) => {
      const message = error.code === "FST_ERR_MAX_PARAM_LENGTH" ? "a path segment is too long to be an id" : "the URL is not valid (a malformed percent-escape?)";
      void reply.status(400).type("application/problem+json").send(new Problem(400, "Invalid request", message, { errors: [{ path: "path", message }] }).toJSON());
    },
  }).withTypeProvider<ZodTypeProvider>();

  // HTTP spans per route and hook; health probes are left out of traces.
  const otel = new FastifyOtelInstrumentation({ registerOnInitialization: false, ignorePaths: (route) => route.url === "/healthz" || route.url === "/readyz" });
  await app.register(otel.plugin());
  app.addHook("onRequest", async (req) => {
    req.log.info({ req }, "incoming request");
  });
  app.addHook("onResponse", async (req, reply) => {
    req.log.info({ res: reply, responseTime: reply.elapsedTime }, "request completed");
  });

  // JSON bodies: a key given twice in one object is refused, not resolved last-wins. No parser
  // for text/plain (Fastify's passes the text on as the body): JSON sent as text is answered 415
  // "send the body as application/json", like a form.
  app.removeContentTypeParser("text/plain");
  app.addContentTypeParser("application/json", { parseAs: "string" }, jsonBodyParser(app.getDefaultJsonParser("error", "error")));

  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.decorate("deps", deps);
  app.decorate("requireRole", requireRole);
  app.decorateRequest("auth", null);
  app.decorateRequest("db", null as unknown as TenantDb);
  // Once close() has begun, it waits for every open connection. A keep-alive client's would stay
  // open, idle, after its last response (Fastify closes idle connections only as close() begins),
  // so while closing each response says `Connection: close`, and any connection left idle once a
  // response is out (its headers went before the close began) is closed.
  let closing = false;
  app.addHook("preClose", async () => {
    closing = true;
  });
  app.addHook("onSend", async (req, reply, payload) => {
    reply.header("x-request-id", req.id);
    if (closing) reply.header("connection", "close");
    return payload;
  });
  app.addHook("onResponse", async () => {
    if (closing) app.server.closeIdleConnections();
  });

  app.setErrorHandler((error, req, reply) => {
    let problem: Problem;
    if (error instanceof Problem) problem = error;
    else if (hasZodFastifySchemaValidationErrors(error)) {
      const where = (error as { validationContext?: string }).validationContext ?? "body";
      // Checks that share a message (a whole number in a range) can fail together: say it once.
      const errors = error.validation
        .map((v) => ({ path: [where, ...v.instancePath.split("/").filter(Boolean)].join("."), message: v.message ?? "invalid" }))
        .filter((e, i, all) => all.findIndex((o) => o.path === e.path && o.message === e.message) === i);
      problem = new Problem(400, "Invalid request", errors.map((e) => `${e.path}: ${e.message}`).join("; "), { errors });
    } else if ((error as { statusCode?: number }).statusCode === 429) {
      problem = new Problem(429, "Too many requests", "this API key sent too many requests; slow down and retry later");
    } else if ((error as { code?: string }).code?.startsWith("FST_ERR_CTP_") && (error as { statusCode?: number }).statusCode === 400) {
      problem = new Problem(400, "Invalid request", "the body must be valid JSON sent as application/json");
    } else if ((error as { statusCode?: number }).statusCode === 413) {
      problem = new Problem(413, "Payload too large", "the request body is too large");
    } else if ((error as { statusCode?: number }).statusCode === 415) {
      problem = new Problem(415, "Unsupported media type", "send the body as application/json");
    } else if ((error as { code?: string }).code === "P2025") {
      problem = new Problem(404, "Not found", "the object does not exist");
    } else {
      if (isResponseSerializationError(error)) req.log.error({ err: { message: error.message } }, "response did not match its schema");
      else req.log.error({ err: { message: (error as Error).message, stack: (error as Error).stack } }, "unhandled error");
      problem = new Problem(500, "Internal error", `something went wrong on our side; quote request id ${req.id}`);
    }
    void reply.status(problem.status).type("application/problem+json").send(problem.toJSON());
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.status(404).type("application/problem+json").send(new Problem(404, "Not found", `no route ${req.method} ${req.url.split("?")[0]}`).toJSON());
  });

  await app.register(swagger, {
    openapi: {
      openapi: "3.1.0",
      info: { title: "Transporter API", version: deps.config.SERVICE_VERSION, description: "Scheduled, encrypted delivery of platform reports to your storage." },
      components: { securitySchemes: { apiKey: { type: "http", scheme: "bearer", description: "An API key: `tp_<prefix>_<secret>`" } } },
      security: [{ apiKey: [] }],
    },
    // Swagger documents every body schema as required; one that takes no body at all (POST
    // /v1/tasks/:id/runs) is marked here and documented as optional below.
    transform: (input) => {
      const result = jsonSchemaTransform(input);
      // Routes without a schema (the queue dashboard's) come with none.
      const body = (input.schema as { body?: { safeParse?: (value: unknown) => { success: boolean } } } | undefined)?.body;
      return body?.safeParse?.(undefined).success ? { ...result, schema: { ...result.schema, [OPTIONAL_BODY]: true } } : result;
    },
    transformObject: (document) => {
      const openapi = "openapiObject" in document ? document.openapiObject : document.swaggerObject;
      for (const operations of Object.values(openapi.paths ?? {})) {
        for (const operation of Object.values(operations ?? {}) as Array<Record<string, unknown>>) {
          if (typeof operation !== "object" || operation === null || !(OPTIONAL_BODY in operation)) continue;
          delete operation[OPTIONAL_BODY];
          const requestBody = operation.requestBody as { required?: boolean } | undefined;
          if (requestBody) requestBody.required = false;
        }
      }
      return openapi;
    },
  });
  await app.register(swaggerUi, { routePrefix: "/docs" });

  // The rate limit is counted in Redis, shared by every replica, and fails open: most of the API
  // needs PostgreSQL only, and a request that cannot be counted goes through rather than waiting
  // for Redis to come back. Its own connection gives up on a command at once while Redis is away
  // (no offline queue) and after RATE_LIMIT_COUNT_MS when Redis is slow; the gateway's
  // connection keeps every command until Redis is back, as BullMQ needs.
  const limitRedis = createRedis(deps.config.REDIS_URL, { enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout: RATE_LIMIT_COUNT_MS });
  logConnectionOutages(limitRedis, logger, "gateway rate limit");
  app.addHook("onClose", async () => closeRedis(limitRedis));
  // Connected before the first request when Redis is there: the first requests would go uncounted.
  await readyWithin(limitRedis, RATE_LIMIT_COUNT_MS);
  await app.register(rateLimit, {
    global: true,
    max: deps.config.API_RATE_LIMIT_PER_MINUTE,
    timeWindow: 60_000,
    redis: limitRedis,
    skipOnError: true,
    nameSpace: `${deps.config.REDIS_PREFIX}:ratelimit:`,
    // Counted after authentication, per key that authenticated: not per text the caller wrote in
    // a header (which could name another key's prefix and use up its budget, or name none and
    // fall back to an address a proxy header sets). Public routes are not counted.
    hook: "preHandler",
    keyGenerator: (req) => (req.auth ? `key:${req.auth.keyId}` : `ip:${req.ip}`),
    allowList: (req) => {
      const route = matchedRoute(req);
      return route !== undefined && isPublicRoute(route);
    },
  });

  const tenantClients = new TenantClients(deps.prisma);
  // Authentication and role rules for every route but the public ones, by construction:
  // operator keys manage tenants and the queues; tenant keys use everything else; viewers only
  // read. No route matched: the not-found handler answers.
  app.addHook("onRequest", async (req, reply) => {
    const route = matchedRoute(req);
    if (route === undefined || isPublicRoute(route)) return;
    // Let a browser prompt for the operator key on the queue dashboard.
    if (route.startsWith(ADMIN_QUEUES_PATH)) reply.header("www-authenticate", 'Basic realm="Transporter operators"');
    const auth = await authenticate(deps.prisma, req.headers.authorization);
    req.auth = auth;
    const operatorRoute = route === "/v1/tenants" || route.startsWith("/v1/tenants/") || route.startsWith("/admin/");
    if (operatorRoute) {
      if (auth.role !== "operator") throw new Problem(403, "Forbidden", "this needs an operator key");
      return;
    }
    if (!auth.tenantId) throw new Problem(403, "Forbidden", "operator keys manage tenants; use a tenant's admin key for this");
    if (auth.role === "viewer" && !READ_METHODS.has(req.method)) throw new Problem(403, "Forbidden", "viewer keys may only read");
    req.db = tenantClients.for(auth.tenantId);
  });

  // Before the schemas: one check for every route, whatever its schema lets through.
  app.addHook("preValidation", async (req) => {
    const problems = [...unstorableTextProblems(req.params, "params"), ...unstorableTextProblems(req.query, "querystring"), ...unstorableTextProblems(req.body, "body")].slice(0, MAX_NUL_PROBLEMS);
    if (problems.length > 0) throw badRequest(problems.map((p) => `${p.path}: ${p.message}`).join("; "), problems);
    // The API's own routes without a body schema (the queue dashboard's are bull-board's).
    const route = matchedRoute(req);
    if (route?.startsWith("/v1/") && req.routeOptions.schema?.body === undefined) {
      const unexpected = unexpectedBodyProblems(req.body);
      if (unexpected.length > 0) throw badRequest(unexpected.map((p) => `${p.path}: ${p.message}`).join("; "), unexpected);
    }
  });

  app.get("/openapi.json", { schema: { hide: true } }, async () => app.swagger());
  await registerRoutes(app);
  await registerQueueDashboard(app);
  return app;
}
