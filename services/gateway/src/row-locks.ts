import type { Task, TenantDb } from "@transporter/db";

/** A transaction of the tenant-scoped client. */
export type Transaction = Parameters<Parameters<TenantDb["$transaction"]>[0]>[0];

/**
 * Runs `change` in a transaction holding the tenant's row lock, so concurrent changes that must
 * see each other (the one active encryption key, the last admin key, a task checked against the
 * sources, destinations and keys being deleted, two time-zone changes) queue up instead of racing.
 *
 * FOR NO KEY UPDATE, not FOR UPDATE: it excludes the same changes from each other but not the
 * key-share lock every insert of a row referencing the tenant takes (a Run, an alert, an audit
 * event). Run now and the scheduler lock a task and then insert its run; with FOR UPDATE here, a
 * change holding the tenant and waiting for that task deadlocked with them.
 */
export async function withTenantLocked<T>(db: TenantDb, tenantId: string, change: (tx: Transaction) => Promise<T>): Promise<T> {
  return db.$transaction(async (tx) => {
    await tx.$queryRaw`SELECT id FROM "Tenant" WHERE id = ${tenantId}::uuid FOR NO KEY UPDATE`;
    return change(tx);
  });
}

/**
 * The task's row, locked for the rest of the transaction (null when it is not the tenant's).
 * The scheduler claims due tasks with FOR UPDATE SKIP LOCKED, so it cannot record a window
 * between reading the task's progress here and writing its new schedule.
 */
export async function lockTask(tx: Transaction, taskId: string, tenantId: string): Promise<Task | null> {
  const [task] = await tx.$queryRaw<Task[]>`SELECT * FROM "Task" WHERE id = ${taskId}::uuid AND "tenantId" = ${tenantId}::uuid FOR UPDATE`;
  return task ?? null;
}
