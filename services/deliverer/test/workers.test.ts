import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { testConfig } from "@transporter/config";
import type { Db } from "@transporter/db";
import type * as Queue from "@transporter/queue";
import type { Redis, WorkerSettings } from "@transporter/queue";
import { createLogger } from "@transporter/telemetry";

/** What start() asked of the queue library, recorded by the fakes below (no Redis needed). */
const recorded = vi.hoisted(() => ({
  workerSettings: [] as Array<{ name: string; settings: WorkerSettings }>,
  stageConfigs: [] as Array<{ stage: string; lockMs: number | undefined }>,
  events: [] as string[],
  release: [] as Array<() => void>,
}));

vi.mock("@transporter/queue", async (importOriginal) => {
  const actual = await importOriginal<typeof Queue>();
  /** A worker whose close() takes until the test releases it, recording when it starts and ends. */
  const fakeClose = (name: string) => () => {
    recorded.events.push(`${name} close started`);
    return new Promise<void>((resolve) =>
      recorded.release.push(() => {
        recorded.events.push(`${name} closed`);
        resolve();
      }),
    );
  };
  return {
    ...actual,
    createWorker: (name: string, _handler: unknown, settings: WorkerSettings) => {
      recorded.workerSettings.push({ name, settings });
      return { on: () => undefined, close: fakeClose(name) };
    },
    createStageWorker: (options: { stage: string; config: { JOB_LOCK_MS?: number } }) => {
      recorded.stageConfigs.push({ stage: options.stage, lockMs: options.config.JOB_LOCK_MS });
      return { worker: {}, close: fakeClose(options.stage) };
    },
  };
});

const { start } = await import("../src/index.js");

describe("the deliverer's workers", () => {
  let stopping: Promise<void> | undefined;

  beforeAll(async () => {
    const config = testConfig({ JOB_LOCK_MS: "45000", CONCURRENCY_NOTIFY: "3", STAGING_DIR: ".data/test-deliverer-workers/staging", MANAGED_DIR: ".data/test-deliverer-workers/managed" });
    const service = await start(config, { prisma: {} as Db, redis: {} as Redis, logger: createLogger({ name: "deliverer-test", level: "silent" }) });
    stopping = service.stop();
  });

  afterAll(async () => {
    // Release closes until stop() returns (a close may only start once another has ended).
    let stopped = false;
    void stopping?.finally(() => (stopped = true));
    for (let i = 0; i < 100 && !stopped; i++) {
      for (const release of recorded.release.splice(0)) release();
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    await stopping;
  });

  it("give the notify worker JOB_LOCK_MS, as the deliver stage worker gets it", () => {
    expect(recorded.stageConfigs).toEqual([{ stage: "deliver", lockMs: 45_000 }]);
    expect(recorded.workerSettings).toHaveLength(1);
    expect(recorded.workerSettings[0]).toMatchObject({ name: "notify", settings: { concurrency: 3, lockDurationMs: 45_000 } });
  });

  it("stop() closes both workers at once, not one after the other", async () => {
    await vi.waitFor(() => expect(recorded.events).toEqual(expect.arrayContaining(["deliver close started", "notify close started"])));
    expect(recorded.events.filter((e) => e.endsWith("closed"))).toEqual([]);
    for (const release of recorded.release.splice(0)) release();
    await stopping;
    expect(recorded.events.slice(2).sort()).toEqual(["deliver closed", "notify closed"]);
  });
});
