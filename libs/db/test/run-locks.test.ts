import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { lockConnectionConfig, poolOf, RunLockLost, RunLocks, RunLockWaitAbandoned, type RunLocksOptions } from "../src/index.js";
import { createTestDatabase, type TestDatabase } from "../src/testing.js";
import { stallingProxyTo } from "./support/stalling-proxy.js";

describe("run locks (one attempt at a time per run, across processes)", () => {
  let db: TestDatabase;
  const opened: RunLocks[] = [];
  const locks = (namespace = "deliver", options: RunLocksOptions = {}) => {
    const made = RunLocks.over(db.prisma, namespace, options);
    opened.push(made);
    return made;
  };
  /** Ends the sessions holding advisory locks in this database, as a failover or pg_terminate_backend does, the process living on. */
  const dropLockConnections = () =>
    db.prisma.$executeRawUnsafe(
      `SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid() AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
    );

  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    for (const made of opened) await made.close();
    await db.drop();
  });

  /** Runs two holds of one run side by side; says in what order their work began and ended. */
  async function sideBySide(first: RunLocks, second: RunLocks, runId: string): Promise<string[]> {
    const events: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let began!: () => void;
    const firstBegan = new Promise<void>((resolve) => (began = resolve));
    const a = first.hold(runId, async () => {
      events.push("a begins");
      began();
      await gate;
      events.push("a ends");
    });
    await firstBegan;
    // The first ends only once the second has found the lock taken.
    const b = second.hold(runId, async () => void events.push("b runs"), {
      onWait: () => {
        events.push("b waits");
        release();
      },
    });
    await Promise.all([a, b]);
    return events;
  }

  it("a second holder, in another process's connection or this one's, waits for the first to end", async () => {
    const runId = "5b0f3f3e-0000-4000-8000-000000000001";
    expect(await sideBySide(locks(), locks(), runId)).toEqual(["a begins", "b waits", "a ends", "b runs"]);
    const shared = locks();
    expect(await sideBySide(shared, shared, runId)).toEqual(["a begins", "b waits", "a ends", "b runs"]);
  });

  it("other runs and other kinds of work are not held up", async () => {
    const one = locks();
    const events: string[] = [];
    await one.hold("run-1", async () => {
      await one.hold("run-2", async () => void events.push("run-2"));
      await locks("encrypt").hold("run-1", async () => void events.push("encrypt run-1"));
    });
    expect(events).toEqual(["run-2", "encrypt run-1"]);
  });

  it("a holder whose connection dies (its process killed) lets the next in; a waiter told to stop stops", async () => {
    // Another process's session holding the run's lock, as a worker that is then killed.
    const dying = new pg.Client({ connectionString: db.url });
    await dying.connect();
    dying.on("error", () => undefined);
    await dying.query("SELECT pg_advisory_lock(hashtextextended($1, 0))", ["transporter:deliver:run-k"]);
    const other = locks();
    let stop = false;
    const abandoned = other.hold("run-k", async () => "ran", { stopping: () => stop });
    await sleep(600);
    stop = true;
    await expect(abandoned).rejects.toBeInstanceOf(RunLockWaitAbandoned);
    // As the server ends a dead client's session.
    await dropLockConnections();
    await expect(other.hold("run-k", async () => "ran")).resolves.toBe("ran");
    await dying.end().catch(() => undefined);
  });

  /** Holds runId until `release` is called; resolves `entered` with the work's signal. */
  function holdUntilReleased(held: RunLocks, runId: string) {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let enter!: (signal: AbortSignal) => void;
    const entered = new Promise<AbortSignal>((resolve) => (enter = resolve));
    const done = held.hold(runId, async (lockLost) => {
      enter(lockLost);
      await Promise.race([gate, new Promise((_, reject) => lockLost.addEventListener("abort", () => reject(lockLost.reason)))]);
      return "finished";
    });
    // Handled from the start: the work may be aborted (RunLockLost) before the test awaits it,
    // which Node would report as an unhandled rejection; awaiting `done` still sees the error.
    done.catch(() => undefined);
    return { entered, release, done };
  }

  it("a connection lost while the process lives on: the locks are taken again on a new one and the work goes on, still alone", async () => {
    const outcomes: Array<{ relocked: string[]; lost: string[] }> = [];
    const first = locks("deliver", { onLost: (outcome) => void outcomes.push(outcome) });
    const runId = "run-relocked";
    const work = holdUntilReleased(first, runId);
    const signal = await work.entered;
    await dropLockConnections();
    await expect.poll(() => outcomes, { timeout: 5_000 }).toEqual([{ relocked: [runId], lost: [] }]);
    expect(signal.aborted).toBe(false);
    // Held again: another process's attempt still waits for this one.
    let waited = false;
    const second = locks().hold(runId, async () => "second", { onWait: () => (waited = true) });
    await expect.poll(() => waited, { timeout: 5_000 }).toBe(true);
    work.release();
    await expect(work.done).resolves.toBe("finished");
    await expect(second).resolves.toBe("second");
  });

  it("a connection lost while another attempt waits: the other gets in first, and this attempt's work is aborted (RunLockLost)", async () => {
    const outcomes: Array<{ relocked: string[]; lost: string[] }> = [];
    const first = locks("deliver", { onLost: (outcome) => void outcomes.push(outcome) });
    const runId = "run-taken-over";
    const work = holdUntilReleased(first, runId);
    await work.entered;
    // Another process blocked on the lock gets it the moment the server ends the first's session.
    const other = new pg.Client({ connectionString: db.url });
    await other.connect();
    try {
      const taken = other.query("SELECT pg_advisory_lock(hashtextextended($1, 0))", [`transporter:deliver:${runId}`]);
      await expect
        .poll(async () => (await db.prisma.$queryRawUnsafe<Array<{ n: number }>>(`SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted`))[0]?.n)
        .toBe(1);
      await dropLockConnections();
      await taken;
      const error = await work.done.catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(RunLockLost);
      expect((error as RunLockLost).runId).toBe(runId);
      expect(outcomes).toEqual([{ relocked: [], lost: [runId] }]);
      // The lock is the other's: this process's next attempt waits for it.
      const stop = { now: false };
      const next = first.hold(runId, async () => "ran", { stopping: () => stop.now });
      await sleep(700);
      stop.now = true;
      await expect(next).rejects.toBeInstanceOf(RunLockWaitAbandoned);
    } finally {
      await other.end();
    }
  });

  it("the lock connection has the server probe it: a node lost without a word lets its runs go in seconds, not the server's default two hours", async () => {
    const client = new pg.Client(lockConnectionConfig(poolOf(db.prisma).options));
    await client.connect();
    try {
      const setting = async (name: string) => (await client.query<{ value: string }>("SELECT current_setting($1) AS value", [name])).rows[0]?.value;
      expect({ idle: await setting("tcp_keepalives_idle"), interval: await setting("tcp_keepalives_interval"), count: await setting("tcp_keepalives_count") }).toEqual({ idle: "15", interval: "5", count: "3" });
    } finally {
      await client.end();
    }
  });

  it("a lock connection gone silent (half-open: the server released its locks, no word reached us) is found out by the heartbeat, and the work is aborted once another attempt holds the run", async () => {
    const url = new URL(db.url);
    const proxy = await stallingProxyTo(url.hostname, Number(url.port || 5432));
    const outcomes: Array<{ relocked: string[]; lost: string[] }> = [];
    const throughProxy = new RunLocks(
      { ...lockConnectionConfig(poolOf(db.prisma).options), connectionString: undefined, host: "127.0.0.1", port: proxy.port, user: decodeURIComponent(url.username) || undefined, database: url.pathname.slice(1) },
      "deliver",
      { heartbeatMs: 200, statementTimeoutMs: 500, onLost: (outcome) => void outcomes.push(outcome) },
    );
    opened.push(throughProxy);
    const runId = "run-silent";
    const work = holdUntilReleased(throughProxy, runId);
    await work.entered;
    try {
      // The proxy passes nothing on any more (a network partition); the server ends the session,
      // which releases the lock, and another attempt takes it.
      proxy.stall();
      await dropLockConnections();
      const other = new pg.Client({ connectionString: db.url });
      await other.connect();
      try {
        await other.query("SELECT pg_advisory_lock(hashtextextended($1, 0))", [`transporter:deliver:${runId}`]);
        const error = await work.done.catch((caught: unknown) => caught);
        expect(error).toBeInstanceOf(RunLockLost);
        expect(outcomes).toEqual([{ relocked: [], lost: [runId] }]);
      } finally {
        await other.end();
      }
    } finally {
      work.release();
      proxy.close();
    }
  }, 20_000);
});
