import pg from "pg";
import type { Db } from "./client.js";
import { poolOf } from "./client.js";

/** How often a worker waiting for a run held elsewhere asks again. */
const RETRY_MS = 500;
/** While runs are held, how often the lock connection is checked, and how long a statement on it may take. */
const HEARTBEAT_MS = 5_000;
const STATEMENT_TIMEOUT_MS = 10_000;

export interface RunLocksOptions {
  /**
   * Called when the connection holding runs' locks was lost (the server released the locks) and
   * they were taken again on a new one: `relocked` are held again (nobody came in meanwhile);
   * `lost` were taken by another attempt, or could not be asked for, and their work's signal is
   * aborted with RunLockLost.
   */
  onLost?: (outcome: { relocked: string[]; lost: string[] }, error: Error | undefined) => void;
  /**
   * While runs are held, the connection is checked this often (default 5 s), each statement
   * on it given `statementTimeoutMs` (default 10 s, connecting too): a connection gone silent (a
   * half-open socket, which the server has already given up and released the locks of) is taken
   * as lost within seconds, not when the operating system's keep-alive gives up minutes later.
   */
  heartbeatMs?: number;
  statementTimeoutMs?: number;
}

/** The reason a held run's signal is aborted: another attempt may now be working on the run. */
export class RunLockLost extends Error {
  constructor(readonly runId: string) {
    super(`lost run ${runId}'s lock with its database connection, and another attempt may be working on it; this attempt stops`);
    this.name = "RunLockLost";
  }
}

/**
 * The lock connection's settings: the pool's database, with keep-alives on both ends. The
 * connection sits idle while the work goes on. Without them, a middlebox dropping it would release
 * the locks unnoticed until the next statement (this end), and a worker's node lost without a
 * word (power, network) would keep its runs locked until the server's own TCP keep-alive gave up
 * on it, two hours by default (the server end: probes after 15 s idle, gone after 3 missed 5 s apart).
 */
export function lockConnectionConfig(pool: pg.ClientConfig): pg.ClientConfig {
  const { connectionString, host, port, user, password, database, ssl } = pool;
  return {
    connectionString, host, port, user, password, database, ssl,
    keepAlive: true,
    keepAliveInitialDelayMillis: 15_000,
    options: "-c tcp_keepalives_idle=15 -c tcp_keepalives_interval=5 -c tcp_keepalives_count=3",
  };
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
 *
 * A connection lost while its process lives on (a failover, pg_terminate_backend, a middlebox)
 * releases the locks under work still running. The locks are taken again on a new connection at
 * once; a run whose lock another attempt took meanwhile has its work's signal aborted, so that
 * the two never carry on side by side.
 */
export class RunLocks {
  private client: pg.Client | undefined;
  private connecting: Promise<pg.Client> | undefined;
  /**
   * Held by this process, each with its work's abort controller: a session's advisory locks are
   * re-entrant, so the session alone cannot keep two of its own jobs apart.
   */
  private readonly held = new Map<string, AbortController>();
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
    return new RunLocks(lockConnectionConfig(poolOf(prisma).options), namespace, options);
  }

  /**
   * Runs `work` holding the run's lock, waiting as long as another attempt holds it, unless
   * `stopping()` says to stop waiting (RunLockWaitAbandoned). `onWait` is called once, when the
   * lock is found taken. `work`'s signal is aborted (reason RunLockLost) if the lock is lost to
   * another attempt while it runs: it must then stop before it writes anything more.
   */
  async hold<T>(runId: string, work: (lockLost: AbortSignal) => Promise<T>, options: { stopping?: () => boolean; onWait?: () => void } = {}): Promise<T> {
    let waited = false;
    let controller: AbortController | undefined;
    for (;;) {
      if (this.closed) throw new RunLockWaitAbandoned(runId);
      controller = await this.tryLock(runId);
      if (controller) break;
      if (!waited) options.onWait?.();
      waited = true;
      if (options.stopping?.()) throw new RunLockWaitAbandoned(runId);
      await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
    }
    try {
      return await work(controller.signal);
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

  /** The run's lock if it is free: the controller of the work that will hold it; undefined if taken. */
  private async tryLock(runId: string): Promise<AbortController | undefined> {
    if (this.held.has(runId)) return undefined;
    const controller = new AbortController();
    this.held.set(runId, controller);
    let locked = false;
    try {
      locked = await this.lockStatement(runId);
      return locked ? controller : undefined;
    } finally {
      if (!locked) this.held.delete(runId);
    }
  }

  private async lockStatement(runId: string): Promise<boolean> {
    const rows = await this.statement<{ locked: boolean }>((client) => client.query("SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS locked", [this.keyOf(runId)]));
    return rows[0]?.locked === true;
  }

  private async unlockStatement(runId: string): Promise<void> {
    await this.statement((client) => client.query("SELECT pg_advisory_unlock(hashtextextended($1, 0))", [this.keyOf(runId)]));
  }

  /**
   * After the connection was lost with runs held: takes their locks again on a new connection.
   * A run whose lock is taken (another attempt got in first), or that cannot be asked for (the
   * database is out of reach), has its work aborted.
   */
  private async relock(runIds: string[], error: Error | undefined): Promise<void> {
    const outcome = { relocked: [] as string[], lost: [] as string[] };
    for (const runId of runIds) {
      const controller = this.held.get(runId);
      // Its work ended meanwhile (its unlock found no connection: nothing to release).
      if (!controller || controller.signal.aborted) continue;
      const locked = await this.lockStatement(runId).catch(() => false);
      // The work may have ended while the lock was asked for: then the lock is not its any more.
      if (this.held.get(runId) !== controller) {
        if (locked) await this.unlockStatement(runId).catch(() => undefined);
        continue;
      }
      if (locked) {
        outcome.relocked.push(runId);
      } else {
        outcome.lost.push(runId);
        controller.abort(new RunLockLost(runId));
      }
    }
    this.options.onLost?.(outcome, error);
  }

  private async unlock(runId: string): Promise<void> {
    try {
      // A connection lost meanwhile took its locks with it: nothing to release then (and on a
      // newer one, unlocking what it never held does nothing).
      if (this.client) await this.unlockStatement(runId);
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
    // Closed, a connection is still opened for the runs held (to take their locks again).
    if (this.closed && this.held.size === 0) throw new Error("run locks closed");
    if (this.client) return this.client;
    this.connecting ??= (async () => {
      const timeoutMs = this.options.statementTimeoutMs ?? STATEMENT_TIMEOUT_MS;
      const client = new pg.Client({ ...this.connectionConfig, query_timeout: timeoutMs, connectionTimeoutMillis: timeoutMs });
      // A connection the server drops (a restart, a failover) releases its locks: forget it, and
      // the next lock opens another.
      let lastError: Error | undefined;
      const timers: { heartbeat?: NodeJS.Timeout } = {};
      const lost = () => {
        clearInterval(timers.heartbeat);
        if (this.client !== client) return;
        this.client = undefined;
        if (this.held.size > 0) void this.relock([...this.held.keys()], lastError);
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
      // A statement that gets no answer in time (the heartbeat's, or a lock's) means the
      // connection is gone, whatever the socket says: its locks are the server's to release.
      timers.heartbeat = setInterval(() => {
        if (this.client !== client || this.held.size === 0) return;
        this.statement((c) => c.query("SELECT 1")).catch((error: unknown) => {
          if (this.client !== client) return;
          lastError = error instanceof Error ? error : new Error(String(error));
          lost();
          void client.end().catch(() => undefined);
        });
      }, this.options.heartbeatMs ?? HEARTBEAT_MS);
      timers.heartbeat.unref();
      return client;
    })().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }
}
