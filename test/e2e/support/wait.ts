import { setTimeout as sleep } from "node:timers/promises";

export interface WaitOptions {
  timeoutMs: number;
  /** Pause between probes (default 250 ms). */
  intervalMs?: number;
  /** Extra context for the timeout error (e.g. the tail of the services' logs). */
  context?: () => string | Promise<string>;
}

export class WaitTimeout extends Error {
  override readonly name = "WaitTimeout";
}

/**
 * Probes until it returns a value other than undefined/false and returns that value; throws a
 * WaitTimeout naming `what` (and the last probe error, if any) when the time is up. A probe that
 * throws is retried: a service may still be starting.
 */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined | false> | T | undefined | false, options: WaitOptions): Promise<T> {
  const deadline = Date.now() + options.timeoutMs;
  const interval = options.intervalMs ?? 250;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
      lastError = undefined;
    } catch (error) {
      if (error instanceof FatalWaitError) throw error.cause;
      lastError = error;
    }
    if (Date.now() >= deadline) {
      const reason = lastError ? ` (last error: ${(lastError as Error).message})` : "";
      const context = options.context ? `\n${await options.context()}` : "";
      throw new WaitTimeout(`timed out after ${options.timeoutMs} ms waiting for ${what}${reason}${context}`);
    }
    await sleep(interval);
  }
}

/** Thrown from a probe to stop waiting at once (e.g. a service process died). */
export class FatalWaitError extends Error {
  constructor(cause: Error) {
    super(cause.message, { cause });
  }
}

/** Runs `worker` over `items` with at most `limit` calls in flight; results keep the input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, worker: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await worker(items[index] as T, index);
    }
  });
  await Promise.all(lanes);
  return results;
}
