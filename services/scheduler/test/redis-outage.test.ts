/**
 * The scheduler while Redis is away: its own connection's errors are logged (once per outage),
 * not printed by ioredis as unhandled, and a stop does not wait for a tick that waits on Redis.
 */
import { Writable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { createLogger } from "@transporter/telemetry";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { startRedisProxy } from "../../../libs/queue/test/support/redis-proxy.js";
import { start } from "../src/index.js";
import { Clock, DAY, runsOf, setup, type Env } from "./helpers.js";

describe("scheduler with Redis gone", () => {
  let env: Env;
  beforeAll(async () => {
    env = await setup("sched-outage");
  });
  afterAll(async () => env.close());

  it("logs the outage once, and stops within seconds though its tick waits on Redis; the run it created stays for the reconciler", async () => {
    const proxy = await startRedisProxy(env.config.REDIS_URL);
    const lines: Array<{ level: number; msg: string }> = [];
    const logger = createLogger({
      name: "scheduler-outage",
      level: "info",
      destination: new Writable({
        write(chunk, _enc, done) {
          for (const line of String(chunk).split("\n").filter(Boolean)) lines.push(JSON.parse(line));
          done();
        },
      }),
    });
    const printed = vi.spyOn(console, "error");
    const clock = new Clock(Date.parse("2026-06-01T00:00:00Z"));
    const taskId = await env.task(await env.tenant("UTC"), { frequency: "daily", time: "06:00" }, "UTC", clock.now());
    clock.advance(DAY);
    // Redis goes away before the first tick: its runs are committed, their jobs wait on Redis.
    await proxy.kill();
    const service = await start({ ...env.config, REDIS_URL: proxy.url, SCHEDULER_TICK_MS: 60_000 }, { now: clock.now, pool: env.pool, logger });
    try {
      await expect.poll(async () => (await runsOf(env.pool, taskId)).length, { timeout: 10_000 }).toBe(1);
      await sleep(1_500);
    } finally {
      const began = Date.now();
      await service.stop();
      expect(Date.now() - began).toBeLessThan(10_000);
    }
    const [run] = await runsOf(env.pool, taskId);
    expect(run).toMatchObject({ status: "PENDING", enqueuedAt: null });
    const outages = lines.filter((l) => /redis connection lost/.test(l.msg));
    expect(outages).toHaveLength(1);
    expect(printed.mock.calls.map((c) => String(c[0]))).not.toContainEqual(expect.stringMatching(/ECONNREFUSED|Unhandled error/));
    printed.mockRestore();
  });
});
