import { Redis, type RedisOptions } from "ioredis";

/** An ioredis connection as BullMQ needs it (no per-command retry limit for blocking workers). */
export function createRedis(url: string, options: RedisOptions = {}): Redis {
  return new Redis(url, { maxRetriesPerRequest: null, enableReadyCheck: true, lazyConnect: false, ...options });
}

export type { Redis };
