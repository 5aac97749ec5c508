import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RunLocks, RunLockWaitAbandoned } from "../src/index.js";
import { createTestDatabase, type TestDatabase } from "../src/testing.js";

describe("run locks (one attempt at a time per run, across processes)", () => {
  let db: TestDatabase;
  const opened: RunLocks[] = [];
  const locks = (namespace = "deliver") => {
    const made = RunLocks.over(db.prisma, namespace);
    opened.push(made);
    return made;
  };
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
    const dying = locks();
    const entered = new Promise<void>((resolve) => void dying.hold("run-k", async () => {
      resolve();
      await new Promise(() => undefined);
    }).catch(() => undefined));
    await entered;
    const other = locks();
    let stop = false;
    const abandoned = other.hold("run-k", async () => "ran", { stopping: () => stop });
    await sleep(600);
    stop = true;
    await expect(abandoned).rejects.toBeInstanceOf(RunLockWaitAbandoned);
    // As the server ends a dead client's session.
    await db.prisma.$executeRawUnsafe(
      `SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND pid <> pg_backend_pid() AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
    );
    await expect(other.hold("run-k", async () => "ran")).resolves.toBe("ran");
  });
});
