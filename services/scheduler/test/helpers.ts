import pg from "pg";
import { testConfig, type Config } from "@transporter/config";
import { createTestDatabase, type TestDatabase } from "@transporter/db/testing";
import { createRedis, testRedisPrefix, type Redis } from "@transporter/queue";
import { computeNextRunAt, type Schedule } from "@transporter/schedule";
import { createScheduler, type Scheduler, type SchedulerDeps } from "../src/index.js";

/** A simulated clock the scheduler reads through `deps.now`. */
export class Clock {
  constructor(private t: number) {}
  now = (): Date => new Date(this.t);
  set(iso: string | Date): void {
    this.t = new Date(iso).getTime();
  }
  advance(ms: number): void {
    this.t += ms;
  }
}

export type Env = {
  db: TestDatabase;
  pool: pg.Pool;
  redis: Redis;
  prefix: string;
  config: Config;
  schedulers: Scheduler[];
  scheduler(deps?: SchedulerDeps, overrides?: Record<string, string>): Scheduler;
  tenant(timezone: string | null, options?: { disabled?: boolean }): Promise<{ tenantId: string; destinationId: string }>;
  task(owner: { tenantId: string; destinationId: string }, s: Schedule, zone: string | null, createdAt: Date, options?: { enabled?: boolean }): Promise<string>;
  /** Forget the tasks, runs and jobs of the previous test. */
  reset(): Promise<void>;
  close(): Promise<void>;
};

/** A database, a Redis prefix and scheduler factories for one test file. */
export async function setup(name: string, overrides: Record<string, string> = {}): Promise<Env> {
  const db = await createTestDatabase();
  const prefix = testRedisPrefix(name);
  const config = testConfig({ REDIS_PREFIX: prefix, ...overrides });
  const pool = new pg.Pool({ connectionString: db.url, max: 6 });
  // close() drops the database WITH (FORCE): a backend still winding down after pool.end() may
  // answer its client with "terminating connection", an 'error' on the pool with nothing to do.
  pool.on("error", () => undefined);
  const redis = createRedis(config.REDIS_URL);
  const schedulers: Scheduler[] = [];
  let accounts = 0;
  const env: Env = {
    db,
    pool,
    redis,
    prefix,
    config,
    schedulers,
    scheduler(deps = {}, more = {}) {
      const s = createScheduler(Object.keys(more).length ? testConfig({ REDIS_PREFIX: prefix, ...overrides, ...more }) : config, { pool, redis, ...deps });
      schedulers.push(s);
      return s;
    },
    async tenant(timezone, options = {}) {
      accounts += 1;
      const tenant = await db.prisma.tenant.create({ data: { accountId: `${name}-${accounts}`, name: `tenant ${accounts}`, timezone, disabled: options.disabled ?? false } });
      const destination = await db.prisma.destination.create({ data: { tenantId: tenant.id, name: "managed", kind: "managed", config: {} } });
      return { tenantId: tenant.id, destinationId: destination.id };
    },
    async task(owner, s, zone, createdAt, options = {}) {
      const task = await db.prisma.task.create({
        data: {
          tenantId: owner.tenantId,
          destinationId: owner.destinationId,
          description: `${s.frequency} ${s.time ?? s.everyMinutes ?? ""}`,
          reportId: "conversations",
          format: "csv",
          frequency: s.frequency,
          time: s.time ?? null,
          dayOfWeek: s.dayOfWeek ?? null,
          everyMinutes: s.everyMinutes ?? null,
          delayMinutes: s.delayMinutes ?? 0,
          enabled: options.enabled ?? true,
          nextRunAt: zone ? computeNextRunAt(s, zone, createdAt) : null,
        },
      });
      return task.id;
    },
    async reset() {
      await pool.query(`DELETE FROM "Run"; DELETE FROM "Task"`);
      const keys = await redis.keys(`${prefix}:*`);
      if (keys.length) await redis.del(...keys);
    },
    async close() {
      for (const s of schedulers) await s.close();
      const keys = await redis.keys(`${prefix}:*`);
      if (keys.length) await redis.del(...keys);
      redis.disconnect();
      await pool.end();
      await db.drop();
    },
  };
  return env;
}

export type RunRow = { id: string; taskId: string; windowStart: Date; windowEnd: Date; scheduledFor: Date; status: string; error: string | null; createdAt: Date; enqueuedAt: Date | null };

export async function runsOf(pool: pg.Pool, taskId?: string): Promise<RunRow[]> {
  const { rows } = await pool.query<RunRow>(
    `SELECT id, "taskId", "windowStart", "windowEnd", "scheduledFor", status, error, "createdAt", "enqueuedAt" FROM "Run"
     WHERE $1::uuid IS NULL OR "taskId" = $1 ORDER BY "taskId", "windowStart"`,
    [taskId ?? null],
  );
  return rows;
}

/** Run ids of the fetch jobs in Redis, in queue order (oldest first). */
export async function fetchJobRunIds(scheduler: Scheduler): Promise<string[]> {
  const jobs = await scheduler.producer.queue("fetch").getJobs(["wait", "prioritized", "delayed", "active", "completed", "failed"], 0, -1, true);
  return jobs.map((job) => (job.data as { runId: string }).runId);
}

export const iso = (d: Date) => d.toISOString();
export const MINUTE = 60_000;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;
