import type { Redis } from "ioredis";

/**
 * A per-account token bucket in Redis, shared by every fetcher replica: a platform account gets
 * at most `ratePerSecond` requests per second (bursts up to `burst`) from all of a tenant's tasks
 * together. The check-and-take is one Lua script, so it is atomic; time comes from the Redis
 * server, so replicas with skewed clocks still agree.
 */
const TAKE = `
local key = KEYS[1]
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', key, 'tokens', 'at')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil then
  tokens = burst
  at = now
end
tokens = math.min(burst, tokens + (now - at) * rate / 1000)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = math.ceil((1 - tokens) * 1000 / rate)
end
redis.call('HSET', key, 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', key, math.ceil(burst * 1000 / rate) + 60000)
return wait
`;

export interface RateBudgetOptions {
  /** Key prefix, e.g. `${REDIS_PREFIX}:source-rate` (default "transporter:source-rate"). */
  prefix?: string;
  ratePerSecond: number;
  /** Bucket size (default: one second's worth, at least 1). */
  burst?: number;
}

export interface RateBudget {
  /** Resolves when one request for the account may be sent. */
  acquire(accountId: string, signal?: AbortSignal): Promise<void>;
}

type ScriptedRedis = Redis & { sourceRateTake(key: string, rate: number, burst: number): Promise<number> };

export function createRateBudget(redis: Redis, options: RateBudgetOptions): RateBudget {
  const prefix = options.prefix ?? "transporter:source-rate";
  const rate = options.ratePerSecond;
  const burst = Math.max(1, options.burst ?? Math.ceil(rate));
  if (!(rate > 0)) throw new Error("ratePerSecond must be positive");
  const client = redis as ScriptedRedis;
  if (typeof client.sourceRateTake !== "function") client.defineCommand("sourceRateTake", { numberOfKeys: 1, lua: TAKE });
  return {
    async acquire(accountId, signal) {
      for (;;) {
        signal?.throwIfAborted();
        const wait = Number(await client.sourceRateTake(`${prefix}:${accountId}`, rate, burst));
        if (wait <= 0) return;
        await new Promise((resolve) => setTimeout(resolve, wait));
      }
    },
  };
}

/** No shared budget (tests that do not exercise rate limiting, one-off verification). */
export const unlimitedBudget: RateBudget = { acquire: async () => {} };
