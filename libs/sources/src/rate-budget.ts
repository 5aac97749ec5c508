import type { Redis } from "ioredis";

/**
 * A per-account token bucket in Redis, shared by every fetcher replica: a platform account gets
 * at most `ratePerSecond` requests per second (bursts up to `burst`) from all of a tenant's tasks
 * together. The check-and-take is one Lua script, so it is atomic; time comes from the Redis
 * server, so replicas with skewed clocks still agree. While the account is paused (the platform
 * answered 429, see `pause`) no token is handed out: the wait is what is left of the pause.
 */
const TAKE = `
local key = KEYS[1]
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local paused = tonumber(redis.call('GET', KEYS[2]))
if paused ~= nil and paused > now then
  return paused - now
end
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

/**
 * Pauses the account for ARGV[1] ms from now (Redis time): the key holds the end of the pause and
 * expires then. A pause only ever grows: a shorter Retry-After does not cut a longer one short.
 */
const PAUSE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local untilMs = now + math.ceil(tonumber(ARGV[1]))
local current = tonumber(redis.call('GET', KEYS[1]))
if current == nil or current < untilMs then
  redis.call('SET', KEYS[1], tostring(untilMs))
  redis.call('PEXPIREAT', KEYS[1], untilMs)
end
return 0
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
  /**
   * The platform asked the account to hold off for `ms` (a 429's Retry-After): no request of the
   * account, from any task or replica, is let through until then.
   */
  pause(accountId: string, ms: number): Promise<void>;
}

type ScriptedRedis = Redis & {
  sourceRateTake(key: string, pauseKey: string, rate: number, burst: number): Promise<number>;
  sourceRatePause(pauseKey: string, ms: number): Promise<number>;
};

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });

export function createRateBudget(redis: Redis, options: RateBudgetOptions): RateBudget {
  const prefix = options.prefix ?? "transporter:source-rate";
  const rate = options.ratePerSecond;
  const burst = Math.max(1, options.burst ?? Math.ceil(rate));
  if (!(rate > 0)) throw new Error("ratePerSecond must be positive");
  const client = redis as ScriptedRedis;
  if (typeof client.sourceRateTake !== "function") client.defineCommand("sourceRateTake", { numberOfKeys: 2, lua: TAKE });
  if (typeof client.sourceRatePause !== "function") client.defineCommand("sourceRatePause", { numberOfKeys: 1, lua: PAUSE });
  const pauseKey = (accountId: string) => `${prefix}:${accountId}:paused`;
  return {
    async acquire(accountId, signal) {
      for (;;) {
        signal?.throwIfAborted();
        const wait = Number(await client.sourceRateTake(`${prefix}:${accountId}`, pauseKey(accountId), rate, burst));
        if (wait <= 0) return;
        // A pause may last minutes: a task stopped meanwhile does not wait it out.
        await sleep(wait, signal);
      }
    },
    async pause(accountId, ms) {
      if (ms > 0) await client.sourceRatePause(pauseKey(accountId), ms);
    },
  };
}

/** No shared budget (tests that do not exercise rate limiting, one-off verification). */
export const unlimitedBudget: RateBudget = { acquire: async () => {}, pause: async () => {} };
