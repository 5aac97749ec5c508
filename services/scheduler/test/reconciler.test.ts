import { JobProducer } from "@transporter/queue";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { Clock, fetchJobRunIds, HOUR, MINUTE, runsOf, setup, type Env } from "./helpers.js";

describe("reconciler", () => {
  let env: Env;
  beforeAll(async () => {
    env = await setup("sched-reconciler", { RECONCILER_GRACE_MS: String(2 * MINUTE) });
  });
  afterAll(async () => env.close());
  beforeEach(async () => env.reset());

  it("a flushed Redis loses no run: PENDING runs get their fetch job back, under the same job id, once", async () => {
    const clock = new Clock(Date.parse("2026-06-01T00:00:00Z"));
    const owner = await env.tenant("Europe/Dublin");
    const taskId = await env.task(owner, { frequency: "interval", everyMinutes: 15 }, "Europe/Dublin", clock.now());
    const scheduler = env.scheduler({ now: clock.now });
    clock.advance(HOUR);
    const tick = await scheduler.tick();
    expect(tick.created).toBe(4);
    const runs = await runsOf(env.pool, taskId);
    expect((await fetchJobRunIds(scheduler)).sort()).toEqual(runs.map((r) => r.id).sort());

    // Redis loses everything (FLUSHDB, failover without persistence): here, this file's keys.
    const keys = await env.redis.keys(`${env.prefix}:*`);
    await env.redis.del(...keys);
    expect(await fetchJobRunIds(scheduler)).toEqual([]);

    // Within the grace period nothing happens: the runs may still be on their way to the queue.
    clock.advance(MINUTE);
    expect((await scheduler.reconcile()).reenqueued).toBe(0);

    clock.advance(2 * MINUTE);
    const first = await scheduler.reconcile();
    expect(first.reenqueued).toBe(4);
    const restored = await fetchJobRunIds(scheduler);
    expect(restored.sort()).toEqual(runs.map((r) => r.id).sort());
    const jobIds = (await scheduler.producer.queue("fetch").getJobs(["wait"], 0, -1, true)).map((j) => j.id);
    expect(jobIds.sort()).toEqual(runs.map((r) => `${r.id}-fetch`).sort());

    // A second pass (or a second replica) finds every job in place.
    const second = await scheduler.reconcile();
    expect(second).toMatchObject({ reenqueued: 0, checked: 4 });
    expect(await fetchJobRunIds(scheduler)).toHaveLength(4);
  });

  it("a crash between commit and enqueue loses no run", async () => {
    const clock = new Clock(Date.parse("2026-06-02T00:00:00Z"));
    const owner = await env.tenant("UTC");
    const taskId = await env.task(owner, { frequency: "daily", time: "06:00" }, "UTC", clock.now());
    // A producer whose Redis writes fail, as if the process died right after COMMIT.
    const broken = new JobProducer(env.redis, env.prefix);
    broken.enqueueBulk = async () => {
      throw new Error("connection lost");
    };
    const crashing = env.scheduler({ now: clock.now, producer: broken });
    clock.set("2026-06-02T06:01:00Z");
    await expect(crashing.tick()).rejects.toThrow("connection lost");
    const [run] = await runsOf(env.pool, taskId);
    expect(run).toMatchObject({ status: "PENDING", enqueuedAt: null });

    const healthy = env.scheduler({ now: clock.now });
    // The window is not created twice: the task already moved on to tomorrow.
    expect((await healthy.tick()).due).toBe(0);
    clock.advance(3 * MINUTE);
    const result = await healthy.reconcile();
    expect(result.reenqueued).toBe(1);
    expect(await healthy.producer.hasJob("fetch", run!.id)).toBe(true);
    expect((await runsOf(env.pool, taskId))[0]!.enqueuedAt).not.toBeNull();
  });

  it("leaves runs that moved past PENDING alone", async () => {
    const clock = new Clock(Date.parse("2026-06-03T00:00:00Z"));
    const owner = await env.tenant("UTC");
    const taskId = await env.task(owner, { frequency: "daily", time: "01:00" }, "UTC", clock.now());
    const scheduler = env.scheduler({ now: clock.now });
    clock.set("2026-06-03T01:00:00Z");
    await scheduler.tick();
    const [run] = await runsOf(env.pool, taskId);
    await env.pool.query(`UPDATE "Run" SET status = 'FETCHING' WHERE id = $1`, [run!.id]);
    await scheduler.producer.queue("fetch").remove(`${run!.id}-fetch`);
    clock.advance(HOUR);
    const result = await scheduler.reconcile();
    expect(await scheduler.producer.hasJob("fetch", run!.id)).toBe(false);
    expect(result.reenqueued).toBe(0);
  });
});
