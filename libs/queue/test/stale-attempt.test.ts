/**
 * An attempt whose job was taken over (its lock lapsed while it worked) and that fails afterwards
 * must not fail the run another attempt carried on: not while a later stage delivers it, and not
 * after it was delivered.
 */
import { Writable } from "node:stream";
import { createLogger } from "@transporter/telemetry";
import { describe, expect, it } from "vitest";
import { createStageWorker, jobIdFor, JobProducer, PermanentError } from "../src/index.js";
import { useStageTestEnv } from "./support/stage-env.js";

describe("a stale attempt of an earlier stage", () => {
  const env = useStageTestEnv("stale-attempt", { CONCURRENCY_FETCH: "1", CONCURRENCY_DELIVER: "1" }, { JOB_LOCK_MS: 2_000 });
  const { prefix, config } = env;

  it("fails after the run moved on to delivery: it writes nothing, raises no alert, queues no notification, and the run is delivered", async () => {
    const run = await env.newRun({ notifications: { webhookUrl: "https://hooks.example.test/runs", on: "always" } });
    const base = `tenants/${run.tenantId}/runs/${run.id}`;
    const logs: string[] = [];
    const logger = createLogger({ name: "stale-attempt", level: "info", destination: new Writable({ write: (c, _e, done) => void (logs.push(String(c)), done()) }) });
    const producer = new JobProducer(env.redis, prefix, { attempts: 1, backoffMs: 10 });
    let releaseStale!: () => void;
    const staleGate = new Promise<void>((resolve) => (releaseStale = resolve));
    let releaseUpload!: () => void;
    const uploadGate = new Promise<void>((resolve) => (releaseUpload = resolve));
    let fetchCalls = 0;
    let delivering = false;
    const fetchHandler = async () => {
      fetchCalls += 1;
      if (fetchCalls === 1) {
        // The first attempt: its lock lapses while it works, and it fails afterwards.
        await staleGate;
        throw new PermanentError("source_denied", "the source refused the stale attempt");
      }
      return { rawKey: `${base}/raw/records.ndjson` };
    };
    const common = { config, prisma: env.db.prisma, redis: env.redis, producer, logger };
    const workers = [createStageWorker({ ...common, stage: "fetch", handler: fetchHandler })];
    try {
      await producer.enqueue("fetch", { runId: run.id, tenantId: run.tenantId });
      await expect.poll(() => fetchCalls, { timeout: 10_000 }).toBe(1);
      workers.push(
        createStageWorker({ ...common, stage: "fetch", handler: fetchHandler }),
        createStageWorker({ ...common, stage: "transform", handler: async () => ({ reportKey: `${base}/report/r.csv` }) }),
        createStageWorker({ ...common, stage: "encrypt", handler: async () => ({ encryptedKey: `${base}/encrypted/r.csv.pgp` }) }),
        createStageWorker({
          ...common, stage: "deliver", exclusive: true,
          handler: async ({ setRunFields }) => {
            delivering = true;
            await uploadGate;
            setRunFields({ fileName: "r.csv.pgp", destinationPath: "drop/r.csv.pgp", bytes: 10n });
          },
        }),
      );
      // The first attempt's lock is gone: the stalled-job check hands its job to the second fetch worker.
      await env.redis.del(`${prefix}:fetch:${jobIdFor("fetch", run.id)}:lock`);
      await expect.poll(() => delivering, { timeout: 20_000 }).toBe(true);

      releaseStale();
      await expect.poll(() => logs.some((line) => line.includes("this attempt failed after the run moved on")), { timeout: 10_000 }).toBe(true);
      expect(await env.db.prisma.run.findUniqueOrThrow({ where: { id: run.id } })).toMatchObject({ status: "DELIVERING", error: null, notificationDueAt: null });
      expect(await env.db.prisma.alert.findMany({ where: { tenantId: run.tenantId } })).toEqual([]);
      expect(await producer.hasJob("notify", run.id)).toBe(false);

      releaseUpload();
      await expect.poll(async () => (await env.db.prisma.run.findUniqueOrThrow({ where: { id: run.id } })).status, { timeout: 15_000 }).toBe("SUCCEEDED");
      await expect.poll(() => producer.hasJob("notify", run.id), { timeout: 10_000 }).toBe(true);
      expect((await producer.queue("notify").getJob(jobIdFor("notify", run.id)))?.data).toMatchObject({ outcome: "succeeded" });
    } finally {
      releaseStale();
      releaseUpload();
      for (const worker of workers) await worker.close();
      await producer.close();
    }
  }, 60_000);
});
