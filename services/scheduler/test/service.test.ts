import { installTestTelemetry } from "@transporter/telemetry/testing";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { start } from "../src/index.js";
import { Clock, DAY, fetchJobRunIds, HOUR, iso, MINUTE, runsOf, setup, type Env } from "./helpers.js";

const telemetry = installTestTelemetry();

async function waitFor<T>(probe: () => Promise<T | undefined | null | false>, timeoutMs = 20_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > until) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 25));
  }
}

function sum(points: { value: unknown }[] | undefined): number {
  return (points ?? []).reduce((total, p) => total + (typeof p.value === "number" ? p.value : ((p.value as { sum?: number; count?: number }).count ?? 0)), 0);
}

describe("scheduler service", () => {
  let env: Env;
  beforeAll(async () => {
    env = await setup("sched-service", { SCHEDULER_TICK_MS: "50", RECONCILER_INTERVAL_MS: "100", RECONCILER_GRACE_MS: "60000", RETENTION_SWEEP_INTERVAL_MS: "100" });
  });
  afterAll(async () => {
    await env.close();
    await telemetry.shutdown();
  });
  beforeEach(async () => env.reset());

  it("start() ticks, reconciles and sweeps on its timers until stopped, and reports metrics", async () => {
    const clock = new Clock(Date.parse("2026-05-01T00:00:00Z"));
    const owner = await env.tenant("Pacific/Chatham");
    const taskId = await env.task(owner, { frequency: "interval", everyMinutes: 30 }, "Pacific/Chatham", clock.now());
    let sweeps = 0;
    const service = await start(env.config, {
      now: clock.now,
      pool: env.pool,
      redis: env.redis,
      sweeps: [async () => void (sweeps += 1), async () => Promise.reject(new Error("storage unavailable"))],
    });
    try {
      clock.advance(HOUR + MINUTE);
      const runs = await waitFor(async () => {
        const r = await runsOf(env.pool, taskId);
        return r.length === 2 && r.every((run) => run.enqueuedAt) && r;
      });
      // Chatham is UTC+12:45 in May: local half hours fall at :15 and :45 UTC.
      expect(runs.map((r) => iso(r.windowEnd))).toEqual(["2026-05-01T00:15:00.000Z", "2026-05-01T00:45:00.000Z"]);
      expect(new Set(await fetchJobRunIds(service.scheduler))).toEqual(new Set(runs.map((r) => r.id)));

      // The reconciler loop restores jobs lost from Redis once the grace period has passed.
      await env.redis.del(...(await env.redis.keys(`${env.prefix}:*`)));
      clock.advance(2 * MINUTE);
      await waitFor(async () => (await fetchJobRunIds(service.scheduler)).length === 2);
      // A failing sweep does not stop the others.
      await waitFor(async () => sweeps >= 2);
    } finally {
      await service.stop();
    }
    const afterStop = sweeps;
    await new Promise((r) => setTimeout(r, 300));
    expect(sweeps).toBe(afterStop);

    const metrics = await telemetry.collectMetrics();
    expect(sum(metrics.get("scheduler.runs.created"))).toBeGreaterThanOrEqual(2);
    expect(sum(metrics.get("scheduler.reconciler.reenqueued"))).toBeGreaterThanOrEqual(2);
    expect(sum(metrics.get("scheduler.lag"))).toBeGreaterThanOrEqual(2);
    expect(sum(metrics.get("scheduler.tick.due_tasks"))).toBeGreaterThan(0);
    expect(sum(metrics.get("scheduler.errors"))).toBeGreaterThanOrEqual(1);
  });

  it("runs nothing for disabled or deleted tasks and for disabled accounts", async () => {
    const clock = new Clock(Date.parse("2026-05-02T00:00:00Z"));
    const active = await env.tenant("UTC");
    const suspended = await env.tenant("UTC", { disabled: true });
    const s = { frequency: "daily" as const, time: "01:00" };
    const disabledTask = await env.task(active, s, "UTC", clock.now(), { enabled: false });
    const deletedTask = await env.task(active, s, "UTC", clock.now());
    await env.pool.query(`UPDATE "Task" SET "deletedAt" = $2 WHERE id = $1`, [deletedTask, clock.now()]);
    const suspendedTask = await env.task(suspended, s, "UTC", clock.now());
    const scheduler = env.scheduler({ now: clock.now });
    clock.advance(2 * HOUR);
    const result = await scheduler.tick();
    expect(result).toMatchObject({ due: 1, created: 0 });
    expect(await runsOf(env.pool)).toEqual([]);
    const { rows } = await env.pool.query(`SELECT id, "nextRunAt" FROM "Task" WHERE id = $1`, [suspendedTask]);
    expect(iso(rows[0].nextRunAt)).toBe("2026-05-03T01:00:00.000Z");
    expect(disabledTask).toBeTruthy();
  });

  it("a task whose account has no time zone is set aside until the zone is chosen", async () => {
    const clock = new Clock(Date.parse("2026-05-03T00:00:00Z"));
    const owner = await env.tenant(null);
    const taskId = await env.task(owner, { frequency: "daily", time: "06:00" }, "UTC", clock.now());
    const scheduler = env.scheduler({ now: clock.now });
    clock.advance(DAY);
    expect(await scheduler.tick()).toMatchObject({ due: 1, created: 0, unschedulable: 1 });
    const nextRunAt = async () => (await env.pool.query(`SELECT "nextRunAt" FROM "Task" WHERE id = $1`, [taskId])).rows[0].nextRunAt as Date | null;
    expect(await nextRunAt()).toBeNull();
    expect(await runsOf(env.pool, taskId)).toEqual([]);

    await env.pool.query(`UPDATE "Tenant" SET timezone = 'Asia/Kathmandu' WHERE id = $1`, [owner.tenantId]);
    expect((await scheduler.reconcile()).initialized).toBe(1);
    // From now (05-04 00:00Z = 05:45 in Kathmandu), no past windows: the next 06:00 is today's.
    expect(iso((await nextRunAt())!)).toBe("2026-05-04T00:15:00.000Z");
  });

  it("outlives the database closing its idle connections (a restart, a failover)", async () => {
    const logs: string[] = [];
    const logger = { warn: (_: unknown, message: string) => logs.push(message), info: () => undefined, error: () => undefined, debug: () => undefined } as never;
    // Its own pool, as in production (no pool given).
    const scheduler = env.scheduler({ pool: undefined, logger } as never, { DATABASE_URL: env.db.url, DATABASE_POOL_SIZE: "2" });
    await scheduler.tick();
    expect(scheduler.pool.idleCount).toBeGreaterThan(0);
    const { rows } = await env.pool.query<{ n: number }>(
      `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND state = 'idle' AND application_name = ''`,
    );
    expect(rows[0]!.n).toBeGreaterThan(0);
    await waitFor(async () => logs.includes("an idle database connection was closed by the server; the pool opens another"));
    // The pool opens new connections and the scheduler carries on.
    expect(await scheduler.tick()).toMatchObject({ due: 0 });
  });
});
