import type pg from "pg";
import { jobIdFor, type JobProducer, type Redis } from "@transporter/queue";

export type StrandedRun = { id: string; tenantId: string; traceparent: string | null; createdAt: Date };

/**
 * PENDING runs created before `olderThan`, oldest first, one page after the (createdAt, id)
 * cursor. Such a run should have a fetch job; whether it does is asked of Redis.
 */
export async function pendingRunsOlderThan(db: pg.Pool | pg.ClientBase, olderThan: Date, after: { createdAt: Date; id: string } | null, limit: number): Promise<StrandedRun[]> {
  const { rows } = await db.query<StrandedRun>(
    `SELECT id, "tenantId", traceparent, "createdAt" FROM "Run"
     WHERE status = 'PENDING' AND "createdAt" <= $1
       AND ($2::timestamptz IS NULL OR ("createdAt", id) > ($2::timestamptz, $3::uuid))
     ORDER BY "createdAt", id
     LIMIT $4`,
    [olderThan, after?.createdAt ?? null, after?.id ?? null, limit],
  );
  return rows;
}

/** Which of these runs have no fetch job in Redis in any state (one pipelined round trip). */
export async function runsWithoutFetchJob(redis: Redis, producer: JobProducer, runs: StrandedRun[]): Promise<StrandedRun[]> {
  if (runs.length === 0) return [];
  const queue = producer.queue("fetch");
  const pipeline = redis.pipeline();
  for (const run of runs) pipeline.exists(queue.toKey(jobIdFor("fetch", run.id)));
  const replies = (await pipeline.exec()) ?? [];
  return runs.filter((_, i) => {
    const [error, exists] = replies[i] ?? [new Error("no reply"), 0];
    if (error) throw error;
    return exists === 0;
  });
}
