import { Redis, type RedisOptions } from "ioredis";

/** An ioredis connection as BullMQ needs it (no per-command retry limit for blocking workers). */
export function createRedis(url: string, options: RedisOptions = {}): Redis {
  return new Redis(url, { maxRetriesPerRequest: null, enableReadyCheck: true, lazyConnect: false, ...options });
}

/** What logConnectionOutages writes to (a pino logger fits). */
export interface OutageLogger {
  warn(fields: object, message: string): void;
  info(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

/**
 * Logs a connection's outages: the first error of each (ioredis reconnects for ever and reports
 * every failed try as an 'error', which, unheard, it prints as "Unhandled error event" each
 * time), then how long it lasted once the connection is ready again.
 */
export function logConnectionOutages(redis: Redis, logger: OutageLogger, connection: string): void {
  let downSince: number | undefined;
  redis.on("error", (error: Error) => {
    if (downSince !== undefined) return;
    downSince = Date.now();
    logger.warn({ connection, err: { message: error.message } }, "redis connection lost; reconnecting");
  });
  redis.on("ready", () => {
    if (downSince === undefined) return;
    logger.info({ connection, downMs: Date.now() - downSince }, "redis connection back");
    downSince = undefined;
  });
}

/** Network errors of a connection that ioredis reconnects after (by code, or BullMQ's closed-connection message). */
const CONNECTION_ERROR_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "ENOTFOUND", "EAI_AGAIN", "EPIPE", "ECONNABORTED"]);

/** The same codes named in a message (an error wrapped by ioredis or BullMQ keeps only its text). */
const CONNECTION_ERROR_TEXT = new RegExp(`\\b(${[...CONNECTION_ERROR_CODES].join("|")})\\b`);

function isConnectionError(error: Error): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return (code !== undefined && CONNECTION_ERROR_CODES.has(code)) || error.message === "Connection is closed." || CONNECTION_ERROR_TEXT.test(error.message);
}

/**
 * Logs a BullMQ worker's errors, except those of its connections while Redis is away: the
 * worker re-emits one for every reconnection try of each, and the service's connection already
 * logs the outage (logConnectionOutages).
 */
export function logWorkerErrors(worker: { on(event: "error", listener: (error: Error) => void): unknown }, logger: OutageLogger, message: string): void {
  worker.on("error", (error) => {
    if (!isConnectionError(error)) logger.error({ err: { message: error.message } }, message);
  });
}

export type { Redis };
