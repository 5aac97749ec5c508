import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRedis, JobProducer, observeQueueDepths, testRedisPrefix, type Redis } from "@transporter/queue";
import { HISTOGRAM_BUCKETS, metrics, startTelemetry, type Telemetry } from "@transporter/telemetry";
import { stallingProxyTo } from "../../libs/db/test/support/stalling-proxy.js";
import { histogramProblems, parseExposition, samplesOf, valueOf } from "./support/exposition.js";
import { freePort } from "../e2e/support/processes.js";

/**
 * startTelemetry with a Prometheus port (what PROMETHEUS_PORT does in every service): metrics
 * recorded through the OpenTelemetry API, and the queue depth gauge read from real Redis, come
 * out of GET /metrics in the text exposition format with Prometheus names.
 */
describe("the Prometheus endpoint started by startTelemetry", () => {
  let telemetry: Telemetry;
  let port: number;
  let redis: Redis;
  let producer: JobProducer;
  let stopDepths: () => void;

  beforeAll(async () => {
    port = await freePort();
    telemetry = startTelemetry({ serviceName: "transporter-prometheus-test", serviceVersion: "9.9.9", prometheusPort: port });
    redis = createRedis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379");
    producer = new JobProducer(redis, testRedisPrefix("prom"), { attempts: 1, backoffMs: 100 });
    // Connected before the first scrape: until then the gauge reports nothing.
    await redis.ping();
    stopDepths = observeQueueDepths(producer);
  });

  afterAll(async () => {
    stopDepths?.();
    for (const queue of ["fetch", "transform"] as const) await producer?.queue(queue).obliterate({ force: true });
    await producer?.close();
    await redis?.quit();
    await telemetry?.shutdown();
  });

  async function scrape() {
    const res = await fetch(`http://127.0.0.1:${port}/metrics`);
    return { status: res.status, contentType: res.headers.get("content-type") ?? "", exposition: parseExposition(await res.text()) };
  }

  it("serves counters as _total, histograms as _bucket/_sum/_count and gauges as they are, with escaped labels", async () => {
    const meter = metrics.getMeter("prometheus-endpoint-test");
    const failures = meter.createCounter("transporter.test.failures", { unit: "{run}", description: "test counter" });
    const duration = meter.createHistogram("transporter.stage.duration", { unit: "s", description: "Time one pipeline stage took for one run" });
    const awkward = 'say "hi" \\ then\nbreak';
    failures.add(2, { reason: awkward });
    failures.add(1, { reason: "plain" });
    duration.record(0.07, { stage: "fetch" });
    duration.record(3, { stage: "fetch" });
    duration.record(4000, { stage: "fetch" });

    const { status, contentType, exposition } = await scrape();
    expect(status).toBe(200);
    expect(contentType).toMatch(/^text\/plain/);
    expect(exposition.families.get("transporter_test_failures_total")).toMatchObject({ type: "counter", help: "test counter", unit: "{run}" });
    expect(valueOf(exposition, "transporter_test_failures_total", { reason: awkward })).toBe(2);
    expect(valueOf(exposition, "transporter_test_failures_total", { reason: "plain" })).toBe(1);
    // The exporter keeps the instrument's name: no unit suffix (the collector's exporter would add _seconds).
    expect(exposition.families.get("transporter_stage_duration")?.type).toBe("histogram");
    expect(exposition.families.has("transporter_stage_duration_seconds")).toBe(false);
    expect(histogramProblems(exposition, "transporter_stage_duration")).toEqual([]);
    expect(valueOf(exposition, "transporter_stage_duration_count", { stage: "fetch" })).toBe(3);
    expect(valueOf(exposition, "transporter_stage_duration_sum", { stage: "fetch" })).toBeCloseTo(4003.07, 6);
    // The telemetry view's buckets for stage seconds: 0.07 lands in le=0.1, 4000 s only in +Inf.
    const bounds = samplesOf(exposition, "transporter_stage_duration_bucket", { stage: "fetch" }).map((s) => s.labels.le);
    expect(bounds).toEqual([...HISTOGRAM_BUCKETS["transporter.stage.duration"]!.map(String), "+Inf"]);
    expect(valueOf(exposition, "transporter_stage_duration_bucket", { stage: "fetch", le: "0.05" })).toBe(0);
    expect(valueOf(exposition, "transporter_stage_duration_bucket", { stage: "fetch", le: "0.1" })).toBe(1);
    expect(valueOf(exposition, "transporter_stage_duration_bucket", { stage: "fetch", le: "3600" })).toBe(2);
    expect(valueOf(exposition, "transporter_stage_duration_bucket", { stage: "fetch", le: "+Inf" })).toBe(3);
    // The resource becomes target_info.
    expect(samplesOf(exposition, "target_info", { service_name: "transporter-prometheus-test", service_version: "9.9.9" })).toHaveLength(1);
  });

  it("reads queue depths from Redis at scrape time, per queue and state", async () => {
    const before = (await scrape()).exposition;
    expect(valueOf(before, "transporter_queue_jobs", { queue: "fetch", state: "waiting" })).toBe(0);
    const tenantId = randomUUID();
    for (let i = 0; i < 3; i++) await producer.enqueue("fetch", { runId: randomUUID(), tenantId });
    await producer.enqueue("transform", { runId: randomUUID(), tenantId, rawKey: "raw/records.ndjson" }, { delay: 60_000 });

    const after = (await scrape()).exposition;
    expect(after.families.get("transporter_queue_jobs")?.type).toBe("gauge");
    expect(valueOf(after, "transporter_queue_jobs", { queue: "fetch", state: "waiting" })).toBe(3);
    expect(valueOf(after, "transporter_queue_jobs", { queue: "transform", state: "delayed" })).toBe(1);
    expect(valueOf(after, "transporter_queue_jobs", { queue: "transform", state: "waiting" })).toBe(0);
    expect(new Set(samplesOf(after, "transporter_queue_jobs").map((s) => s.labels.queue))).toEqual(new Set(["fetch", "transform", "encrypt", "deliver", "notify"]));
  });

  it("answers while Redis does not: the other metrics are served without waiting for the queue depths", async () => {
    const meter = metrics.getMeter("prometheus-endpoint-test");
    meter.createCounter("transporter.test.while_redis_stalls").add(1);
    // Redis reached through a proxy that stops passing anything on, as a hung or partitioned server does.
    const redisUrl = new URL(process.env.REDIS_URL ?? "redis://127.0.0.1:6379");
    const proxy = await stallingProxyTo(redisUrl.hostname, Number(redisUrl.port || 6379));
    const stalledRedis = createRedis(`redis://127.0.0.1:${proxy.port}`);
    const stalledProducer = new JobProducer(stalledRedis, testRedisPrefix("prom-stalled"), { attempts: 1, backoffMs: 100 });
    await stalledRedis.ping();
    // And one that never connects at all.
    const downRedis = createRedis(`redis://127.0.0.1:${await freePort()}`);
    downRedis.on("error", () => undefined);
    const downProducer = new JobProducer(downRedis, testRedisPrefix("prom-down"), { attempts: 1, backoffMs: 100 });
    stopDepths();
    const stopStalled = observeQueueDepths(stalledProducer, { timeoutMs: 300 });
    const stopDown = observeQueueDepths(downProducer, { timeoutMs: 60_000 });
    try {
      proxy.stall();
      // Without a limit on the gauge's wait this request never gets an answer.
      const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(10_000) });
      expect(res.status).toBe(200);
      const exposition = parseExposition(await res.text());
      expect(valueOf(exposition, "transporter_test_while_redis_stalls_total", {})).toBe(1);
      // More scrapes while it stalls: the depths' age grows, and the unanswered reads do not pile up.
      const pendingAfterOne = (stalledRedis as unknown as { commandQueue: { length: number } }).commandQueue.length;
      await scrape();
      const later = (await scrape()).exposition;
      expect(valueOf(later, "transporter_queue_depth_age", {})).toBeGreaterThan(0.3);
      expect((stalledRedis as unknown as { commandQueue: { length: number } }).commandQueue.length).toBe(pendingAfterOne);
    } finally {
      stopStalled();
      stopDown();
      stopDepths = observeQueueDepths(producer);
      stalledRedis.disconnect();
      downRedis.disconnect();
      proxy.close();
    }
  });
});

