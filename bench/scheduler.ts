/**
 * Scheduler benchmark: 100,000 enabled tasks across 20 time zones, 10,000 of them due at once.
 * Prints the time from the start of a tick to the 10,000th `fetch` job in Redis, next to a bare
 * BullMQ `addBulk` loop putting the same number of jobs (same batch size) on a queue in the same
 * run, and their ratio (target: ≤ 3×). Then shows that a tick with nothing due is one scan of the
 * partial index "Task_due_idx" (EXPLAIN ANALYZE) and how long it takes.
 *
 *   node --import tsx bench/scheduler.ts
 *   BENCH_TASKS=100000 BENCH_DUE=10000 BENCH_ROUNDS=3 node --import tsx bench/scheduler.ts
 *
 * Uses a throwaway database (dropped at the end) and its own Redis key prefix.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { Queue } from "bullmq";
import pg from "pg";
import { testConfig } from "@transporter/config";
import { createTestDatabase } from "@transporter/db/testing";
import { createRedis } from "@transporter/queue";
import { computeNextRunAt, latestCompleteWindow, type Schedule } from "@transporter/schedule";
import { CLAIM_DUE_TASKS_SQL, createScheduler } from "@transporter/scheduler";

const TASKS = Number(process.env.BENCH_TASKS ?? 100_000);
const DUE = Number(process.env.BENCH_DUE ?? 10_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const ZONES = [
  "UTC", "America/New_York", "America/Chicago", "America/Los_Angeles", "America/Sao_Paulo", "America/Santiago",
  "Europe/London", "Europe/Dublin", "Europe/Berlin", "Europe/Moscow", "Africa/Cairo", "Asia/Jerusalem", "Asia/Tehran",
  "Asia/Kolkata", "Asia/Kathmandu", "Asia/Tokyo", "Australia/Sydney", "Australia/Lord_Howe", "Pacific/Auckland", "Pacific/Chatham",
];
const INTERVALS = [15, 30, 60, 120, 240, 360];

function scheduleOf(i: number): Schedule {
  const time = `${String((i * 7) % 24).padStart(2, "0")}:${String((i * 13) % 60).padStart(2, "0")}`;
  switch (i % 3) {
    case 0: return { frequency: "daily", time, delayMinutes: (i * 11) % 120 };
    case 1: return { frequency: "weekly", time, dayOfWeek: 1 + (i % 7), delayMinutes: 0 };
    default: return { frequency: "interval", everyMinutes: INTERVALS[i % INTERVALS.length]!, delayMinutes: (i * 5) % 30 };
  }
}

const ms = (from: bigint) => Number(process.hrtime.bigint() - from) / 1e6;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main() {
  const db = await createTestDatabase();
  const prefix = `bench-scheduler-${randomBytes(4).toString("hex")}`;
  const config = testConfig({ DATABASE_URL: db.url, REDIS_PREFIX: prefix, LOG_LEVEL: "silent" });
  const pool = new pg.Pool({ connectionString: db.url, max: 4 });
  const redis = createRedis(config.REDIS_URL);
  const now = new Date();
  try {
    // 20 accounts, one per zone, each with a destination.
    const tenants: string[] = [];
    const destinations: string[] = [];
    for (const [i, zone] of ZONES.entries()) {
      const tenant = await db.prisma.tenant.create({ data: { accountId: `bench-${i}`, name: `bench ${zone}`, timezone: zone } });
      const destination = await db.prisma.destination.create({ data: { tenantId: tenant.id, name: "managed", kind: "managed", config: {} } });
      tenants.push(tenant.id);
      destinations.push(destination.id);
    }

    // 100,000 tasks, inserted 10,000 rows per statement. Every (TASKS / DUE)-th task owes
    // exactly one window now (nextRunAt = runAt of its latest complete window); the rest are
    // due in the future.
    const every = Math.max(1, Math.floor(TASKS / DUE));
    const dueNextRunAt = new Map<string, Date>();
    let inserted = 0;
    let t0 = process.hrtime.bigint();
    for (let offset = 0; offset < TASKS; offset += 10_000) {
      const cols = { id: [] as string[], tenant: [] as string[], dest: [] as string[], freq: [] as string[], time: [] as (string | null)[], dow: [] as (number | null)[], every: [] as (number | null)[], delay: [] as number[], next: [] as Date[] };
      for (let i = offset; i < Math.min(TASKS, offset + 10_000); i++) {
        const s = scheduleOf(i);
        const zone = ZONES[i % ZONES.length]!;
        const due = i % every === 0 && dueNextRunAt.size < DUE;
        const id = randomUUID();
        const next = due ? latestCompleteWindow(s, zone, new Date(now.getTime() - (s.delayMinutes ?? 0) * 60_000)).runAt : computeNextRunAt(s, zone, now);
        if (due) dueNextRunAt.set(id, next);
        cols.id.push(id);
        cols.tenant.push(tenants[i % ZONES.length]!);
        cols.dest.push(destinations[i % ZONES.length]!);
        cols.freq.push(s.frequency);
        cols.time.push(s.time ?? null);
        cols.dow.push(s.dayOfWeek ?? null);
        cols.every.push(s.everyMinutes ?? null);
        cols.delay.push(s.delayMinutes ?? 0);
        cols.next.push(next);
      }
      const { rowCount } = await pool.query(
        `INSERT INTO "Task" (id, "tenantId", "destinationId", description, "reportId", format, frequency, time, "dayOfWeek", "everyMinutes", "delayMinutes", enabled, "nextRunAt", "updatedAt")
         SELECT t.id, t.tenant, t.dest, 'bench task', 'conversations', 'csv', t.freq::"Frequency", t.time, t.dow, t.every, t.delay, true, t.next, now()
         FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::int[], $7::int[], $8::int[], $9::timestamptz[])
              AS t(id, tenant, dest, freq, time, dow, every, delay, next)`,
        [cols.id, cols.tenant, cols.dest, cols.freq, cols.time, cols.dow, cols.every, cols.delay, cols.next],
      );
      inserted += rowCount ?? 0;
    }
    await pool.query(`VACUUM ANALYZE "Task"`);
    console.log(`setup: ${inserted.toLocaleString("en")} enabled tasks in ${ZONES.length} zones, ${dueNextRunAt.size.toLocaleString("en")} due, inserted in ${ms(t0).toFixed(0)} ms`);

    const dueIds = [...dueNextRunAt.keys()];
    const dueTimes = dueIds.map((id) => dueNextRunAt.get(id)!);
    const scheduler = createScheduler(config, { pool, redis, now: () => now });
    const fetchQueue = scheduler.producer.queue("fetch");
    const bare = new Queue("bench-bare", { connection: redis, prefix });

    const tickTimes: number[] = [];
    const bareTimes: number[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      // Bare BullMQ: the same number of jobs, same payload shape and batch size, deterministic ids.
      const jobs = dueIds.map((id) => ({ name: "fetch", data: { runId: randomUUID(), tenantId: tenants[0]!, trace: {} }, opts: { jobId: `${id}-${round}-fetch` } }));
      t0 = process.hrtime.bigint();
      for (let i = 0; i < jobs.length; i += config.SCHEDULER_BATCH_SIZE) await bare.addBulk(jobs.slice(i, i + config.SCHEDULER_BATCH_SIZE));
      while ((await bare.getWaitingCount()) < jobs.length) await new Promise((r) => setTimeout(r, 1));
      bareTimes.push(ms(t0));

      // The scheduler: one tick claims the due tasks, writes their runs, enqueues the fetch jobs.
      t0 = process.hrtime.bigint();
      const result = await scheduler.tick();
      while ((await fetchQueue.getWaitingCount()) < dueIds.length) await new Promise((r) => setTimeout(r, 1));
      tickTimes.push(ms(t0));
      if (result.due !== dueIds.length || result.created !== dueIds.length) throw new Error(`tick claimed ${result.due} tasks and created ${result.created} runs; expected ${dueIds.length}`);
      console.log(`round ${round}: scheduler tick → ${dueIds.length.toLocaleString("en")}th fetch job ${tickTimes.at(-1)!.toFixed(0)} ms; bare addBulk loop ${bareTimes.at(-1)!.toFixed(0)} ms`);

      // Reset for the next round: due again, no runs, empty queues.
      await pool.query(`DELETE FROM "Run"`);
      await pool.query(`UPDATE "Task" t SET "nextRunAt" = v.next FROM unnest($1::uuid[], $2::timestamptz[]) AS v(id, next) WHERE t.id = v.id`, [dueIds, dueTimes]);
      await fetchQueue.obliterate({ force: true });
      await bare.obliterate({ force: true });
      await pool.query(`VACUUM ANALYZE "Task"`);
    }
    const tick = median(tickTimes);
    const base = median(bareTimes);
    console.log("");
    console.log(`scheduler: tick → ${dueIds.length.toLocaleString("en")}th fetch job in Redis: ${tick.toFixed(0)} ms (median of ${ROUNDS})`);
    console.log(`bare BullMQ addBulk loop (${config.SCHEDULER_BATCH_SIZE} per call), same job count: ${base.toFixed(0)} ms (median of ${ROUNDS})`);
    console.log(`ratio: ${(tick / base).toFixed(2)}× (target ≤ 3×) — ${tick / base <= 3 ? "met" : "NOT met"}`);

    // Nothing due: one tick is the claim query against the partial index, nothing else.
    await scheduler.tick();
    const idle: number[] = [];
    for (let i = 0; i < 50; i++) {
      t0 = process.hrtime.bigint();
      const r = await scheduler.tick();
      idle.push(ms(t0));
      if (r.due !== 0) throw new Error("a task was due in the idle phase");
    }
    const client = await pool.connect();
    try {
      await client.query("BEGIN");
      const { rows } = await client.query(`EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) ${CLAIM_DUE_TASKS_SQL}`, [now, config.SCHEDULER_BATCH_SIZE]);
      await client.query("ROLLBACK");
      const plan = rows.map((r: Record<string, string>) => r["QUERY PLAN"]).join("\n");
      console.log("");
      console.log(`nothing due (${inserted.toLocaleString("en")} tasks): tick median ${median(idle).toFixed(2)} ms over 50 ticks; the claim query's plan:`);
      console.log(plan.replace(/^/gm, "  "));
      const scans = plan.match(/(Index Only Scan|Index Scan|Seq Scan|Bitmap Heap Scan)/g) ?? [];
      console.log(`scans in plan: ${scans.join(", ")} — ${scans.length === 1 && /Index Scan using "?Task_due_idx/.test(plan) ? "one index scan of Task_due_idx" : "UNEXPECTED"}`);
    } finally {
      client.release();
    }
    await bare.close();
    await scheduler.close();
  } finally {
    const keys = await redis.keys(`${prefix}:*`);
    for (let i = 0; i < keys.length; i += 1000) await redis.del(...keys.slice(i, i + 1000));
    redis.disconnect();
    await pool.end();
    await db.drop();
  }
}

await main();
