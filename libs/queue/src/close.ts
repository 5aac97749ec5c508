import type { Worker } from "bullmq";
import type { Redis } from "ioredis";

/**
 * How long a shutdown waits for a Redis connection that is down before it stops waiting for
 * it. Our connections never give up on a command (`maxRetriesPerRequest: null`, which BullMQ
 * needs), so anything that waits on Redis during a shutdown waits until it is back: without a
 * bound, a SIGTERM while Redis is gone ran into the 30 s force-exit.
 */
export const REDIS_GONE_MS = 3_000;

const POLL_MS = 100;

export interface CloseOptions {
  /** How long Redis may be down before the close stops waiting for it (default REDIS_GONE_MS). */
  goneMs?: number;
}

/**
 * How a worker closed: `closed` gracefully (the jobs under way finished); `forced` without waiting
 * for its jobs, as Redis was down when the close began; `abandoned` when Redis went away while
 * they were awaited. Jobs cut off like this keep their lock in Redis until it lapses, and another
 * worker takes them up again as stalled jobs.
 */
export type WorkerCloseOutcome = "closed" | "forced" | "abandoned";

/** Resolves once the connection has been down (not `ready`) for `goneMs` in a row. */
function whenRedisGone(redis: Redis, goneMs: number): { gone: Promise<"gone">; cancel(): void } {
  let timer: NodeJS.Timeout | undefined;
  const gone = new Promise<"gone">((resolve) => {
    let downSince = redis.status === "ready" ? undefined : Date.now();
    timer = setInterval(() => {
      if (redis.status === "ready") downSince = undefined;
      else if (Date.now() - (downSince ??= Date.now()) >= goneMs) resolve("gone");
    }, POLL_MS);
  });
  return { gone, cancel: () => clearInterval(timer) };
}

/** Resolves true once `redis` is ready (at once if it is), false if it is not within `ms`. */
export async function readyWithin(redis: Redis, ms: number): Promise<boolean> {
  if (redis.status === "ready") return true;
  let onReady = () => {};
  let timer: NodeJS.Timeout | undefined;
  const ready = await new Promise<boolean>((resolve) => {
    onReady = () => resolve(true);
    redis.once("ready", onReady);
    timer = setTimeout(() => resolve(false), ms);
  });
  clearTimeout(timer);
  redis.off("ready", onReady);
  return ready;
}

/**
 * Waits for `closing`, unless `redis` is down for `goneMs` in a row meanwhile: then stops waiting
 * (`closing` carries on unawaited) and says "gone". For a close that waits on work that may in
 * turn wait on Redis, such as an HTTP request under way.
 */
export async function unlessRedisGone(closing: Promise<unknown>, redis: Redis, options: CloseOptions = {}): Promise<"closed" | "gone"> {
  const watch = whenRedisGone(redis, options.goneMs ?? REDIS_GONE_MS);
  try {
    // Settled later, or never, if Redis goes away: nobody waits for it then.
    closing.catch(() => undefined);
    return await Promise.race([closing.then(() => "closed" as const), watch.gone]);
  } finally {
    watch.cancel();
  }
}

/**
 * Closes a BullMQ worker: gracefully while Redis is there (it takes no new job and waits for
 * the ones under way, however long they take), but never waiting for a Redis that is gone.
 * Waiting for the jobs needs Redis (each job's completion, the blocking connection's end), so:
 * Redis not back within `goneMs` when the close begins → `close(true)` at once; Redis down for
 * `goneMs` while the jobs are awaited → stop waiting, `close(true)`. The wait is BullMQ's
 * `pause()`, not its graceful `close()`: once that has begun, `close(true)` only returns it, and
 * a job finishing after its connection ended would retry its completion without pause, for
 * ever. `redis` is the worker's connection. (createWorker's workers close like this.)
 */
export async function closeWorker(worker: Pick<Worker, "pause" | "close">, redis: Redis, options: CloseOptions = {}): Promise<WorkerCloseOutcome> {
  let outcome: WorkerCloseOutcome = "closed";
  if (!(await readyWithin(redis, options.goneMs ?? REDIS_GONE_MS))) outcome = "forced";
  if (outcome === "closed" && (await unlessRedisGone(worker.pause(), redis, options)) === "gone") outcome = "abandoned";
  // The jobs have finished, or are given up on: only the connections are left to close.
  await worker.close(true);
  return outcome;
}

/**
 * Closes a connection: QUIT (the replies still due are read first) while Redis answers, else a
 * plain disconnect, which stops the reconnecting. (While reconnecting, ioredis queues a QUIT
 * behind the commands waiting for Redis, so QUIT would wait for Redis too.)
 */
export async function closeRedis(redis: Redis, options: CloseOptions = {}): Promise<void> {
  if (redis.status === "end") return;
  if (redis.status === "ready") {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<"late">((resolve) => (timer = setTimeout(() => resolve("late"), options.goneMs ?? REDIS_GONE_MS)));
    const quit = redis.quit().then(
      () => "quit" as const,
      () => "failed" as const,
    );
    const outcome = await Promise.race([quit, late]);
    clearTimeout(timer);
    if (outcome === "quit") return;
  }
  redis.disconnect();
}
