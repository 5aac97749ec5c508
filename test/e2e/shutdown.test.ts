/**
 * SIGTERM as an orchestrator sends it, to real service processes (`services/<name>/src/main.ts`).
 * A service gets 30 s to stop before it forces its own exit with code 1, so each stop here must
 * finish well within that: with a keep-alive client that had a request under way (the gateway
 * waited for its idle connection until the force-exit), with Redis gone (every close step
 * waited for Redis to come back), and with a job that would outlast it (it was cut off by the
 * force-exit, and counted as stalled each time: the fourth failed its run).
 */
import http from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createOperatorKey } from "@transporter/gateway";
import { jobIdFor } from "@transporter/queue";
import { HAND_BACK_MS } from "@transporter/telemetry";
import { startRedisProxy, type RedisProxy } from "../../libs/queue/test/support/redis-proxy.js";
import { apiClient, createConversationsTask, pastWindows, provisionTenant, requestRun, type RunView } from "./support/api.js";
import { listManagedFiles, managedDeliveryProblems } from "./support/delivery.js";
import { startInfrastructure, type Infrastructure } from "./support/infrastructure.js";
import { ProcessGroup, type Exit, type ServiceProcess } from "./support/processes.js";
import { QueueInspector } from "./support/queues.js";
import { waitUntilReady } from "./support/readiness.js";
import { waitFor } from "./support/wait.js";

/** Well under the services' own 30 s force-exit; a stop that hangs is SIGKILLed after this. */
const GRACE_MS = 20_000;
/** What "at once" means here: the few seconds a stop needs, nowhere near the grace. */
const PROMPT_MS = 10_000;
const CLEAN_EXIT: Exit = { code: 0, signal: null };

describe("service shutdown on SIGTERM", () => {
  let infra: Infrastructure | undefined;
  let inspector: QueueInspector | undefined;
  let operatorKey: string;

  /** A tenant with a disabled hourly conversations task whose platform answers after `slowMs`. */
  async function tenantWithSlowSource(infra: Infrastructure, slowMs: number) {
    const call = apiClient(infra.gatewayUrl);
    const tenant = await provisionTenant(call, operatorKey, infra.simulator);
    const task = await createConversationsTask(call, tenant, { description: "Conversations hourly", everyMinutes: 60 });
    infra.simulator.control.setFaults(tenant.accountId, { slowMs });
    return { call, tenant, task };
  }

  const groups: ProcessGroup[] = [];
  const proxies: RedisProxy[] = [];

  const system = () => {
    if (!infra || !inspector) throw new Error("the infrastructure did not start");
    return { infra, inspector };
  };

  beforeAll(async () => {
    infra = await startInfrastructure({ name: "shutdown" });
    inspector = new QueueInspector(infra.redis, infra.redisPrefix);
    operatorKey = (await createOperatorKey(infra.db.prisma, "shutdown e2e operator")).key;
  }, 120_000);

  afterAll(async () => {
    for (const group of groups) await group.stopAll(5_000);
    for (const proxy of proxies) await proxy.kill();
    await inspector?.close();
    await infra?.stop();
  }, 60_000);

  /** SIGTERM (SIGKILL after the grace): how the process ended and how long it took. */
  async function terminate(service: ServiceProcess): Promise<{ label: string; exit: Exit; ms: number; output: string }> {
    const started = Date.now();
    const exit = await service.stop(GRACE_MS);
    return { label: service.label, exit, ms: Date.now() - started, output: service.output() };
  }

  it("gateway: a keep-alive request under way at SIGTERM is answered, then the process exits at once", async () => {
    const { infra, inspector } = system();
    const group = new ProcessGroup(infra.env);
    groups.push(group);
    const gateway = group.start("gateway");
    await waitUntilReady(group, inspector, infra.gatewayUrl, 90_000);

    // A keep-alive request whose body is still arriving when SIGTERM comes: under way, and its
    // connection would be reusable once it is answered.
    const agent = new http.Agent({ keepAlive: true });
    const body = JSON.stringify({ name: "Keep-alive tenant", accountId: `ka${Date.now()}`, timezone: "UTC" });
    const url = new URL("/v1/tenants", infra.gatewayUrl);
    let sendRest = () => {};
    const answered = new Promise<{ status: number | undefined; connection: string | undefined }>((resolve, reject) => {
      const req = http.request(url, { agent, method: "POST", headers: { authorization: `Bearer ${operatorKey}`, "content-type": "application/json", "content-length": Buffer.byteLength(body) } }, (res) => {
        res.resume();
        res.on("end", () => resolve({ status: res.statusCode, connection: res.headers.connection }));
      });
      req.on("error", reject);
      req.write(body.slice(0, 10));
      sendRest = () => req.end(body.slice(10));
    });
    await sleep(300);

    const stopped = terminate(gateway);
    // Give the gateway time to begin its close before the request can finish.
    await sleep(1_000);
    sendRest();
    const answer = await answered;
    const { exit, ms, output } = await stopped;
    agent.destroy();
    expect(exit, output).toEqual(CLEAN_EXIT);
    expect(ms, output).toBeLessThan(PROMPT_MS);
    expect(answer).toEqual({ status: 201, connection: "close" });
  }, 90_000);

  it("Redis gone: the gateway (after /readyz probed it, with a request waiting on Redis) and the workers exit 0 within seconds; the run under way is not failed", async () => {
    const { infra, inspector } = system();
    const proxy = await startRedisProxy(infra.env.REDIS_URL);
    proxies.push(proxy);
    // Only these services reach Redis through the proxy; the test's own connection goes direct.
    const group = new ProcessGroup({ ...infra.env, REDIS_URL: proxy.url });
    groups.push(group);
    for (const service of ["gateway", "fetcher", "deliverer"] as const) group.start(service);
    await waitUntilReady(group, inspector, infra.gatewayUrl, 90_000);

    // A run whose fetch is under way (the platform answers slowly) when Redis goes.
    const { call, tenant, task } = await tenantWithSlowSource(infra, 120_000);
    const [window] = pastWindows(1, 60, 120);
    const run = await requestRun(call, tenant.adminKey, task.id, window!);
    await waitFor("the run's fetch to begin", async () => (await infra.db.prisma.run.findUniqueOrThrow({ where: { id: run.id } })).status === "FETCHING", {
      timeoutMs: 30_000,
      context: () => group.describe(),
    });

    await proxy.kill();
    // Readiness names Redis within its 2 s probe limit (and queues no PING for Redis's return).
    const readiness = await waitFor(
      "/readyz to report Redis down",
      async () => {
        const res = await fetch(`${infra.gatewayUrl}/readyz`, { signal: AbortSignal.timeout(3_000) });
        const answer = (await res.json()) as { checks: Record<string, string> };
        return res.status === 503 && answer;
      },
      { timeoutMs: 10_000, context: () => group.describe() },
    );
    expect(readiness.checks).toMatchObject({ database: "ok", redis: expect.stringMatching(/^unreachable/) });
    // The API goes on without Redis: the rate limit lets what it cannot count through, and a run
    // asked for is answered (PENDING, its job left for Redis's return or the reconciler).
    const account = await fetch(`${infra.gatewayUrl}/v1/account`, { headers: { authorization: `Bearer ${tenant.adminKey}` }, signal: AbortSignal.timeout(5_000) });
    expect(account.status).toBe(200);
    const [later] = pastWindows(1, 60, 240);
    const asked = await fetch(`${infra.gatewayUrl}/v1/tasks/${task.id}/runs`, {
      method: "POST",
      headers: { authorization: `Bearer ${tenant.adminKey}`, "content-type": "application/json" },
      body: JSON.stringify({ windowStart: later!.start, windowEnd: later!.end }),
      signal: AbortSignal.timeout(10_000),
    });
    expect(asked.status).toBe(202);
    expect(await asked.json()).toMatchObject({ status: "PENDING" });
    // A request that waits on Redis (the queue dashboard reads the queues) when SIGTERM comes:
    // it cannot be answered until Redis is back, so the gateway's stop does not wait for it.
    const stuck = fetch(`${infra.gatewayUrl}/admin/queues/api/queues`, { headers: { authorization: `Bearer ${operatorKey}` } }).then(
      (res) => res.status,
      () => "connection closed",
    );
    await sleep(300);

    const stops = await Promise.all(group.live("gateway").concat(group.live("fetcher"), group.live("deliverer")).map(terminate));
    const outputs = stops.map(({ label, output }) => `--- ${label}\n${output}`).join("\n");
    expect(
      stops.map(({ label, exit, ms }) => ({ label, exit, prompt: ms < PROMPT_MS })),
      outputs,
    ).toEqual(stops.map(({ label }) => ({ label, exit: CLEAN_EXIT, prompt: true })));
    for (const { label, output } of stops) expect(output, label).not.toContain("Unhandled error event");
    expect(await stuck).toBe("connection closed");
    // Cut off, not failed: its job keeps its lock until it lapses, then a fetcher retries it.
    const after = await infra.db.prisma.run.findUniqueOrThrow({ where: { id: run.id } });
    expect(after.status).toBe("FETCHING");
    expect(await inspector.counts("fetch")).toMatchObject({ active: 1, failed: 0 });
  }, 150_000);

  it("a job still under way when the grace period ends is handed back: the worker exits 0 at once, another takes the job up, and the run is delivered once, with no stall", async () => {
    const { infra, inspector } = system();
    // A short grace period, so the hand-back comes within seconds (30 s in all by default).
    const graceMs = 1_500;
    const group = new ProcessGroup({ ...infra.env, SHUTDOWN_GRACE_MS: String(graceMs) });
    groups.push(group);
    for (const service of ["gateway", "fetcher", "transformer", "encryptor", "deliverer"] as const) group.start(service);
    await waitUntilReady(group, inspector, infra.gatewayUrl, 90_000);

    // The source call hangs far longer than any stop waits.
    const { call, tenant, task } = await tenantWithSlowSource(infra, 600_000);
    let sourceCalled = false;
    const onRequest = (req: http.IncomingMessage) => void (sourceCalled ||= Boolean(req.url?.includes(`/${tenant.accountId}/`) && !req.url.includes("baseURI")));
    infra.simulator.app.server.on("request", onRequest);
    const [window] = pastWindows(1, 60, 120);
    const run = await requestRun(call, tenant.adminKey, task.id, window!);
    await waitFor("the run's source call to begin", () => sourceCalled, { timeoutMs: 30_000, context: () => group.describe() });
    infra.simulator.app.server.off("request", onRequest);
    // The call under way stays hung; the next attempt's calls are answered.
    infra.simulator.control.clearFaults(tenant.accountId);
    const [first] = group.live("fetcher");
    // The other fetcher starts during the grace period (as in a rollout) and takes the job up.
    group.start("fetcher");

    const { exit, ms, output } = await terminate(first!);
    expect(exit, output).toEqual(CLEAN_EXIT);
    expect(ms, output).toBeGreaterThanOrEqual(graceMs);
    expect(ms, output).toBeLessThan(graceMs + HAND_BACK_MS);
    expect(output).toContain("handed the job back to its queue");

    const done = await waitFor(
      "the run to be delivered by the other fetcher",
      async () => {
        const view = await call<RunView>(tenant.adminKey, "GET", `/v1/runs/${run.id}`);
        return ["SUCCEEDED", "FAILED"].includes(view.status) && view;
      },
      { timeoutMs: 60_000, context: () => group.describe() },
    );
    const listing = await listManagedFiles(infra.managedDir, tenant.tenantId);
    expect(await managedDeliveryProblems(done, listing, infra.managedDir)).toEqual([]);
    expect(done.error).toBeNull();
    // (The earlier test's job, cut off with Redis, stalls in this file's queue meanwhile: not this one.)
    const jobId = jobIdFor("fetch", run.id);
    expect(await inspector.stalledJobIds("fetch")).not.toContain(jobId);
    expect(await inspector.state("fetch", jobId)).toBe("completed");
  }, 150_000);
});
