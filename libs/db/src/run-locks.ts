import pg from "pg";
import type { Db } from "./client.js";
import { poolOf } from "./client.js";

/** How often a worker waiting for a run held elsewhere asks again. */
const RETRY_MS = 500;

export interface RunLocksOptions {
  /**
   * Called when the connection is lost while runs are held: their locks are gone (the server
   * released them), so another attempt may now work on them at the same time as this one.
   */
  onLost?: (runIds: string[], error: Error | undefined) => void;
}

/** Thrown by `RunLocks.hold` when it stopped waiting (the worker is stopping). */
export class RunLockWaitAbandoned extends Error {
  constructor(readonly runId: string) {
    super(`run ${runId} is being worked on by another attempt; stopped waiting for it`);
    this.name = "RunLockWaitAbandoned";
  }
}

/**
 * One attempt at a time per run, across processes: a PostgreSQL session advisory lock per run,
 * taken on a connection of this process's own.
 *
 * A job whose lock in Redis lapsed while its worker still works on it (an event loop blocked, or
 * Redis out of that worker's reach, past the lock duration) is taken over by another worker, and
 * both would write the same file at once. The second attempt waits here for the first to end;
 * then it finds the run finished. The lock goes with its connection, so a worker that dies
 * (SIGKILL, a lost node) lets the next attempt in at once, with no lease to run out.
 */
export class RunLocks {
  private client: pg.Client | undefined;
  private connecting: Promise<pg.Client> | undefined;
  /** Held by this process: a session's advisory locks are re-entrant, so the session alone cannot keep two of its own jobs apart. */
  private readonly held = new Set<string>();
  private closed = false;
  /** The connection's statements, one after another (pg deprecates queueing them on one client). */
  private statements: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly connectionConfig: pg.ClientConfig,
    private readonly namespace: string,
    private readonly options: RunLocksOptions = {},
  ) {}

  /** Locks over the database `prisma` (made by createPrisma) uses; `namespace` separates kinds of work (e.g. "deliver"). */
  static over(prisma: Db, namespace: string, options: RunLocksOptions = {}): RunLocks {
    const { connectionString, host, port, user, password, database, ssl } = poolOf(prisma).options;
    // Keep-alive: the connection sits idle while the work goes on, and a middlebox dropping an
    // idle connection would release the locks unnoticed until the next statement.
    return new RunLocks({ connectionString, host, port, user, password, database, ssl, keepAlive: true }, namespace, options);
  }

  /**
   * Runs `work` holding the run's lock, waiting as long as another attempt holds it, unless
   * `stopping()` says to stop waiting (RunLockWaitAbandoned). `onWait` is called once, when the
   * lock is found taken.
   */
  async hold<T>(runId: string, work: () => Promise<T>, options: { stopping?: () => boolean; onWait?: () => void } = {}): Promise<T> {
    let waited = false;
    while (!(await this.tryLock(runId))) {
      if (!waited) options.onWait?.();
      waited = true;
      if (options.stopping?.() || this.closed) throw new RunLockWaitAbandoned(runId);
      await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
    }
    try {
      return await work();
    } finally {
      await this.unlock(runId);
    }
  }

  /**
   * Takes no more locks and ends the connection once the runs held now are let go: ended while
   * work still runs (a worker stopping without waiting for its jobs, Redis being gone), it would
   * release their locks and let another attempt in beside them.
   */
  async close(): Promise<void> {
    this.closed = true;
    if (this.held.size === 0) await this.endConnection();
  }

  private async endConnection(): Promise<void> {
    const client = this.client ?? (await this.connecting?.catch(() => undefined));
    this.client = undefined;
    await client?.end().catch(() => undefined);
  }

  private async tryLock(runId: string): Promise<boolean> {
    if (this.held.has(runId)) return false;
    this.held.add(runId);
    let locked = false;
    try {
      const rows = await this.statement<{ locked: boolean }>((client) => client.query("SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS locked", [this.keyOf(runId)]));
      locked = rows[0]?.locked === true;
      return locked;
    } finally {
      if (!locked) this.held.delete(runId);
    }
  }

  private async unlock(runId: string): Promise<void> {
    try {
      // A connection lost meanwhile took its locks with it: nothing to release then (and on a
      // newer one, unlocking what it never held does nothing).
      if (this.client) await this.statement((client) => client.query("SELECT pg_advisory_unlock(hashtextextended($1, 0))", [this.keyOf(runId)]));
    } catch {
      // The same: the connection is gone, and its locks with it.
    } finally {
      this.held.delete(runId);
      if (this.closed && this.held.size === 0) await this.endConnection();
    }
  }

  /** Runs one statement on the connection once the ones before it are done. */
  private statement<R extends pg.QueryResultRow>(run: (client: pg.Client) => Promise<{ rows: R[] }>): Promise<R[]> {
    const result = this.statements.then(async () => (await run(await this.connection())).rows);
    this.statements = result.catch(() => undefined);
    return result;
  }

  private keyOf(runId: string): string {
    return `transporter:${this.namespace}:${runId}`;
  }

  private async connection(): Promise<pg.Client> {
    if (this.closed) throw new Error("run locks closed");
    if (this.client) return this.client;
    this.connecting ??= (async () => {
      const client = new pg.Client(this.connectionConfig);
      // A connection the server drops (a restart, a failover) releases its locks: forget it, and
      // the next lock opens another.
      let lastError: Error | undefined;
      const lost = () => {
        if (this.client !== client) return;
        this.client = undefined;
        if (!this.closed && this.held.size > 0) this.options.onLost?.([...this.held], lastError);
      };
      client.on("error", (error) => {
        lastError = error;
        lost();
      });
      client.on("end", lost);
      try {
        await client.connect();
      } catch (error) {
        await client.end().catch(() => undefined);
        throw error;
      }
      this.client = client;
      return client;
    })().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }
}
