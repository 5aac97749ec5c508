/**
 * The whole system as separate OS processes, as it runs in production: gateway, scheduler, two
 * fetchers, transformer, encryptor and two deliverers, each `node --import tsx
 * services/<name>/src/main.ts` (= `npm run start:<name>`), sharing only PostgreSQL, Redis,
 * staging in s3rver and the platform simulator. Everything is driven through the gateway's HTTP
 * API. 200 runs are each delivered exactly once; then, while 100 more are flowing, a fetcher and
 * a deliverer are SIGKILLed in the middle of a job and replaced, and still every run is
 * delivered exactly once.
 */
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { QueueName } from "@transporter/queue";
import { createOperatorKey } from "@transporter/gateway";
import { createGnupgHome, type GnupgHome } from "../../libs/crypto/test/support/gnupg.js";
import { apiClient, createConversationsTask, listTaskRuns, pastWindows, provisionTenant, requestRun, type ApiCall, type ProvisionedTenant, type RunView } from "./support/api.js";
import { csvConversationIds, gpgDecrypt, listManagedFiles, managedDeliveryProblems, simulatedConversationIds } from "./support/delivery.js";
import { startInfrastructure, type Infrastructure } from "./support/infrastructure.js";
import { ProcessGroup, type Exit, type ServiceName, type ServiceProcess } from "./support/processes.js";
import { QueueInspector } from "./support/queues.js";
import { waitUntilReady } from "./support/readiness.js";
import { runStatusCounts, waitForRunsToFinish } from "./support/runs.js";
import { FatalWaitError, mapLimit, waitFor, WaitTimeout } from "./support/wait.js";

const BATCH = 200;
/** Runs flowing while processes are killed (enough to keep every stage busy for a while). */
const KILL_BATCH = 100;
const WINDOW_MINUTES = 15;
/** ~10 conversations per 15-minute window (the simulator's default is 12 an hour). */
const CONVERSATIONS_PER_HOUR = 40;
const TOPOLOGY: ServiceName[] = ["gateway", "scheduler", "fetcher", "fetcher", "transformer", "encryptor", "deliverer", "deliverer"];
/** Concurrent API requests while asking for runs. */
const REQUEST_LANES = 8;

describe("multi-process system (every service its own process, staging in s3rver)", () => {
  let infra: Infrastructure | undefined;
  let group: ProcessGroup | undefined;
  let inspector: QueueInspector | undefined;
  let gnupg: GnupgHome | undefined;
  let call: ApiCall;
  let tenant: ProvisionedTenant;
  let taskId: string;
  // Distinct past windows for both batches, the newest ending at least an hour ago.
  const windows = pastWindows(BATCH + KILL_BATCH, WINDOW_MINUTES, 60);

  const system = () => {
    if (!infra || !group || !inspector || !gnupg) throw new Error("the system did not start");
    return { infra, group, inspector, gnupg };
  };

  const diagnostics = async () => {
    const { group, inspector } = system();
    const queues: string[] = [];
    for (const queue of ["fetch", "transform", "encrypt", "deliver"] as const) queues.push(`${queue} ${JSON.stringify(await inspector.counts(queue))}`);
    return `queues: ${queues.join("; ")}\n${group.describe()}`;
  };

  beforeAll(async () => {
    infra = await startInfrastructure({ name: "multiproc" });
    group = new ProcessGroup(infra.env);
    for (const service of TOPOLOGY) group.start(service);
    inspector = new QueueInspector(infra.redis, infra.redisPrefix);
    gnupg = await createGnupgHome();
    await waitUntilReady(group, inspector, infra.gatewayUrl, 150_000);

    call = apiClient(infra.gatewayUrl);
    const operator = await createOperatorKey(infra.db.prisma, "multi-process e2e operator");
    tenant = await provisionTenant(call, operator.key, infra.simulator, { conversationsPerHour: CONVERSATIONS_PER_HOUR });
    const task = await createConversationsTask(call, tenant, { description: "Conversations every 15 minutes", everyMinutes: WINDOW_MINUTES });
    taskId = task.id;
    await gnupg.gpg(["--import"], tenant.privateKey);
  }, 180_000);

  afterAll(async () => {
    await group?.stopAll(5_000);
    await inspector?.close();
    await gnupg?.close();
    await infra?.stop();
  }, 60_000);

  /** Asks for one run per window through the API; the ids are distinct. */
  async function requestRuns(batch: typeof windows): Promise<RunView[]> {
    const runs = await mapLimit(batch, REQUEST_LANES, (window) => requestRun(call, tenant.adminKey, taskId, window));
    expect(new Set(runs.map((r) => r.id)).size).toBe(batch.length);
    return runs;
  }

  /** Every run of the task SUCCEEDED with exactly one managed file matching its path, size and checksum; no other file exists. */
  async function expectEachDeliveredOnce(expectedRunIds: string[]): Promise<RunView[]> {
    const { infra } = system();
    const runs = await listTaskRuns(call, tenant.adminKey, taskId);
    expect(runs.map((r) => r.id).sort()).toEqual([...expectedRunIds].sort());
    const listing = await listManagedFiles(infra.managedDir, tenant.tenantId);
    const problems: string[] = [];
    for (const run of runs) {
      for (const problem of await managedDeliveryProblems(run, listing, infra.managedDir)) problems.push(`run ${run.id} (${run.windowStart}): ${problem}`);
      if (run.keyFingerprint !== tenant.keyFingerprint) problems.push(`run ${run.id}: encrypted for ${run.keyFingerprint}, not ${tenant.keyFingerprint}`);
    }
    const strays = [...listing.byRun.keys()].filter((runId) => !expectedRunIds.includes(runId));
    expect(problems, problems.slice(0, 20).join("\n")).toEqual([]);
    expect(strays).toEqual([]);
    expect(listing.byRun.size).toBe(expectedRunIds.length);
    return runs;
  }

  /** GnuPG decrypts each run's file to a CSV whose conversation ids are exactly the simulator's for that window. */
  async function expectDecryptsToSimulatorData(runs: RunView[]): Promise<void> {
    const { infra, gnupg } = system();
    for (const run of runs) {
      const csv = await gpgDecrypt(gnupg, tenant.passphrase, join(infra.managedDir, run.destinationPath as string));
      const ids = csvConversationIds(csv);
      const expected = simulatedConversationIds(tenant.accountId, run.windowStart, run.windowEnd, infra.simulator.seed, CONVERSATIONS_PER_HOUR);
      expect([...ids].sort(), `run ${run.id} (${run.windowStart})`).toEqual([...expected].sort());
      expect(ids.length).toBe(new Set(ids).size);
      expect(run.records).toBe(expected.length);
    }
  }

  /** A few runs spread over the batch, plus the first one with no conversations at all if there is one. */
  function sample(runs: RunView[], count: number): RunView[] {
    const step = Math.max(1, Math.floor(runs.length / count));
    const picked = runs.filter((_, i) => i % step === 0).slice(0, count);
    const empty = runs.find((r) => r.records === 0);
    return empty && !picked.includes(empty) ? [...picked, empty] : picked;
  }

  interface Interruption {
    victim: ServiceProcess;
    exit: Exit;
    replacement: ServiceProcess;
    /** Jobs the victim held when it was killed and that BullMQ then handed to another worker. */
    stalledJobIds: string[];
  }

  /**
   * SIGKILLs one process of `service` in the middle of a `queue` job, starts a replacement, and
   * waits until BullMQ hands an interrupted job to another worker (once the dead worker's lock
   * has expired, after JOB_LOCK_MS). To be sure the victim is mid-job, the queue is paused until
   * a backlog has built up and resumed, and the kill comes when every process of the service
   * holds the lock of at least one job. If the victim's jobs all finished in the instant before
   * the kill (nothing is handed over), it tries again with the next process.
   */
  async function killMidJob(service: ServiceName, queue: QueueName, concurrency: number): Promise<Interruption> {
    const { infra, group, inspector } = system();
    const fatal = () => {
      try {
        group.assertNoCrash();
      } catch (error) {
        throw new FatalWaitError(error as Error);
      }
    };
    for (let attempt = 1; attempt <= 3; attempt++) {
      const live = group.live(service);
      const victim = live[0] as ServiceProcess;
      const stalledBefore = new Set(await inspector.stalledJobIds(queue));
      // Enough waiting jobs that, once released, every process gets at least one.
      const backlog = concurrency * (live.length - 1) + 1;
      await inspector.pause(queue);
      try {
        await waitFor(
          `${backlog} ${queue} jobs waiting`,
          async () => {
            fatal();
            return (await inspector.backlog(queue)) >= backlog;
          },
          { timeoutMs: 90_000, intervalMs: 100, context: diagnostics },
        );
      } finally {
        await inspector.resume(queue);
      }
      const held = await waitFor(
        `every ${service} process to hold a ${queue} job`,
        async () => {
          fatal();
          const holders = await inspector.lockHolders(queue);
          return holders.size >= live.length ? new Set([...holders.values()].flat()) : false;
        },
        { timeoutMs: 60_000, intervalMs: 10, context: diagnostics },
      );
      victim.kill("SIGKILL");
      const exit = await victim.exited;
      const replacement = group.start(service);
      const [stalledJobIds] = await Promise.all([
        waitFor(
          `a ${queue} job of the killed ${victim.label} to be handed to another worker`,
          async () => {
            const fresh = (await inspector.stalledJobIds(queue)).filter((id) => !stalledBefore.has(id) && held.has(id));
            return fresh.length > 0 ? fresh : false;
          },
          { timeoutMs: 30_000, intervalMs: 500 },
        ).catch((error: unknown) => {
          // A timeout means the victim finished its jobs in the instant before the kill: nothing was interrupted.
          if (error instanceof WaitTimeout) return undefined;
          throw error;
        }),
        waitUntilReady(group, inspector, infra.gatewayUrl, 120_000),
      ]);
      if (stalledJobIds) return { victim, exit, replacement, stalledJobIds };
    }
    throw new Error(`could not kill a ${service} in the middle of a ${queue} job in 3 attempts\n${await diagnostics()}`);
  }

  it(
    `delivers ${BATCH} runs requested through the API exactly once each, decryptable by GnuPG`,
    async () => {
      const { infra, group } = system();
      const requested = await requestRuns(windows.slice(0, BATCH));
      const ids = requested.map((r) => r.id);
      await waitForRunsToFinish(infra.db.prisma, ids, { timeoutMs: 240_000, check: () => group.assertNoCrash(), context: diagnostics });
      expect(await runStatusCounts(infra.db.prisma, ids)).toEqual({ SUCCEEDED: BATCH });

      const runs = await expectEachDeliveredOnce(ids);
      expect(runs.reduce((sum, r) => sum + (r.records ?? 0), 0)).toBeGreaterThan(BATCH);
      await expectDecryptsToSimulatorData(sample(runs, 5));
    },
    300_000,
  );

  it(
    "every run is still delivered exactly once when a fetcher and a deliverer are SIGKILLed mid-job and replaced",
    async () => {
      const { infra, group, inspector } = system();
      const firstBatch = (await listTaskRuns(call, tenant.adminKey, taskId)).map((r) => r.id);
      // Deliveries pile up from the start, so that both deliverers are busy when they are let go.
      await inspector.pause("deliver");
      const requesting = requestRuns(windows.slice(BATCH));
      requesting.catch(() => undefined); // awaited below; keeps an early failure from being "unhandled"
      let fetcherKill: Interruption;
      let delivererKill: Interruption;
      try {
        [fetcherKill, delivererKill] = await Promise.all([
          killMidJob("fetcher", "fetch", infra.config.CONCURRENCY_FETCH),
          killMidJob("deliverer", "deliver", infra.config.CONCURRENCY_DELIVER),
        ]);
      } finally {
        await inspector.resume("deliver");
      }
      const requested = await requesting;
      const ids = requested.map((r) => r.id);
      await waitForRunsToFinish(infra.db.prisma, ids, { timeoutMs: 240_000, check: () => group.assertNoCrash(), context: diagnostics });

      for (const kill of [fetcherKill, delivererKill]) {
        expect(kill.exit.signal).toBe("SIGKILL");
        expect(kill.replacement.running).toBe(true);
      }
      expect(await runStatusCounts(infra.db.prisma, ids)).toEqual({ SUCCEEDED: KILL_BATCH });
      const runs = await expectEachDeliveredOnce([...firstBatch, ...ids]);

      // The runs whose fetch or delivery was cut off are complete and correct too.
      const interruptedRunIds = new Set([...fetcherKill.stalledJobIds, ...delivererKill.stalledJobIds].map((jobId) => jobId.replace(/-(fetch|deliver)$/, "")));
      const interrupted = runs.filter((r) => interruptedRunIds.has(r.id));
      expect(interrupted.length).toBe(interruptedRunIds.size);
      await expectDecryptsToSimulatorData([...interrupted, ...sample(runs.filter((r) => ids.includes(r.id)), 2)]);
    },
    300_000,
  );
});
