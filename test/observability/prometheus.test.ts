import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTelemetry, type Telemetry } from "@transporter/telemetry";
import { captureLogs } from "@transporter/telemetry/testing";
import { histogramProblems, parseExposition, samplesOf, valueOf, type Exposition } from "./support/exposition.js";
import { dashboardTargets, metricNamesInPromQL } from "./support/promql.js";
import { createBrand, createTask, lastHour, REPORT_ID, startObservedSystem, waitFor, waitForRun, type Brand, type ObservedSystem, type RunView } from "./support/system.js";
import { freePort } from "../e2e/support/processes.js";

const HOUR = 3_600_000;

/**
 * The services' own Prometheus endpoint (startTelemetry with prometheusPort, as PROMETHEUS_PORT
 * does in production) after a real run of the whole system: a scheduled run that succeeds after
 * one retried fetch, and a requested run that fails. The scrape is parsed strictly, its values
 * are checked, and every metric the Grafana dashboard queries must be among the names served.
 */
describe("Prometheus scrape endpoint after real runs", () => {
  let telemetry: Telemetry;
  let port: number;
  let observed: ObservedSystem;
  let brand: Brand;
  let scheduled: RunView;
  let failed: RunView;
  let scrape: { status: number; contentType: string; body: string };
  let exposition: Exposition;
  const logs = captureLogs({ level: "info" });
  // The scheduler's clock: two hours ago, 30 s past the hour; moved past the next hour to make the task due.
  const windowStart = new Date(Math.floor(Date.now() / HOUR) * HOUR - 2 * HOUR);
  let clock = new Date(windowStart.getTime() + 30_000);

  beforeAll(async () => {
    port = await freePort();
    telemetry = startTelemetry({ serviceName: "transporter-observability-test", prometheusPort: port });
    observed = await startObservedSystem({ now: () => clock, logger: logs.logger });
    brand = await createBrand(observed);
    const managed = await observed.api<{ id: string }>(brand.adminKey, "POST", "/v1/destinations", { name: "Managed", kind: "managed", config: {} }, 201);
    const hourly = await createTask(observed, brand, managed.id, { frequency: "interval", everyMinutes: 60, delayMinutes: 0 });
    // Only asked to run: disabled, so that no scheduled run of it comes along (its 00:00 in Paris may be due).
    const refused = await createTask(observed, brand, managed.id, undefined, { enabled: false });

    observed.simulator.control.setFaults(brand.accountId, { status429: { count: 1, retryAfterSeconds: 1 }, status5xx: { count: 4 }, apis: ["messaging-interactions"] });
    // Five seconds after the window closes the scheduler finds the task due: a scheduler lag of 5 s.
    clock = new Date(windowStart.getTime() + HOUR + 5_000);
    const run = await waitFor("the scheduled run", async () => {
      const page = await observed.api<{ items: RunView[] }>(brand.adminKey, "GET", `/v1/runs?taskId=${hourly}`);
      return page.items[0];
    });
    scheduled = await waitForRun(observed, brand.adminKey, run.id);

    observed.simulator.control.setFaults(brand.accountId, { forbidden: ["messaging-interactions"] });
    const second = await observed.api<RunView>(brand.adminKey, "POST", `/v1/tasks/${refused}/runs`, lastHour(clock), 202);
    failed = await waitForRun(observed, brand.adminKey, second.id);
    observed.simulator.control.clearFaults(brand.accountId);

    const res = await fetch(`http://127.0.0.1:${port}/metrics`);
    scrape = { status: res.status, contentType: res.headers.get("content-type") ?? "", body: await res.text() };
    exposition = parseExposition(scrape.body);
  }, 240_000);

  afterAll(async () => {
    await observed?.stop();
    await telemetry?.shutdown();
  });

  it("the runs ended as set up", () => {
    expect(scheduled).toMatchObject({ status: "SUCCEEDED", trigger: "schedule" });
    expect(failed).toMatchObject({ status: "FAILED", errorCode: "missing_permission" });
  });

  it("serves the text exposition format over HTTP, every sample belonging to a declared family", () => {
    expect(scrape.status).toBe(200);
    expect(scrape.contentType).toMatch(/^text\/plain/);
    const orphans = exposition.samples.filter((s) => s.family === undefined).map((s) => s.name);
    expect(orphans).toEqual([]);
    expect(exposition.families.get("transporter_runs_started_total")?.type).toBe("counter");
    expect(exposition.families.get("transporter_queue_jobs")?.type).toBe("gauge");
    expect(exposition.families.get("transporter_stage_duration")?.type).toBe("histogram");
    expect(exposition.families.get("scheduler_lag")?.type).toBe("histogram");
  });

  it("counts runs by status, report, destination kind and reason", () => {
    const labels = { report: REPORT_ID, destination_kind: "managed" };
    expect(valueOf(exposition, "transporter_runs_started_total", { ...labels, trigger: "schedule" })).toBe(1);
    expect(valueOf(exposition, "transporter_runs_started_total", { ...labels, trigger: "manual" })).toBe(1);
    expect(valueOf(exposition, "transporter_runs_succeeded_total", labels)).toBe(1);
    expect(samplesOf(exposition, "transporter_runs_failed_total").map((s) => [s.labels.stage, s.labels.reason, s.value])).toEqual([["fetch", "missing_permission", 1]]);
    expect(valueOf(exposition, "transporter_stage_retries_total", { stage: "fetch", reason: "upstream_unavailable" })).toBe(1);
    expect(valueOf(exposition, "transporter_delivered_bytes_total", labels)).toBe(scheduled.bytes);
    expect(valueOf(exposition, "transporter_records_processed_total", labels)).toBe(scheduled.records);
    expect(valueOf(exposition, "transporter_source_requests_total", { api: "messaging-interactions", status: "503" })).toBe(4);
    expect(valueOf(exposition, "transporter_source_requests_total", { api: "messaging-interactions", status: "403" })).toBe(1);
    expect(valueOf(exposition, "transporter_source_rate_limited_total", { api: "messaging-interactions" })).toBe(1);
  });

  it("stage durations and scheduler lag are consistent histograms with the observed counts", () => {
    expect(histogramProblems(exposition, "transporter_stage_duration")).toEqual([]);
    expect(histogramProblems(exposition, "scheduler_lag")).toEqual([]);
    for (const stage of ["fetch", "transform", "encrypt", "deliver"]) {
      expect(valueOf(exposition, "transporter_stage_duration_count", { stage, report: REPORT_ID }), stage).toBe(1);
      // Seconds, on buckets from 50 ms (the telemetry view), not the SDK's millisecond defaults.
      expect(samplesOf(exposition, "transporter_stage_duration_bucket", { stage, le: "0.05" }), stage).toHaveLength(1);
    }
    expect(valueOf(exposition, "scheduler_lag_count")).toBe(1);
    expect(valueOf(exposition, "scheduler_lag_sum")).toBe(5000);
    expect(valueOf(exposition, "scheduler_runs_created_total", { status: "PENDING" })).toBe(1);
  });

  it("samples queue depth per queue and state at scrape time", () => {
    for (const queue of ["fetch", "transform", "encrypt", "deliver"]) {
      for (const state of ["waiting", "active", "delayed"]) expect(valueOf(exposition, "transporter_queue_jobs", { queue, state }), `${queue} ${state}`).toBe(0);
    }
    expect(valueOf(exposition, "transporter_queue_jobs", { queue: "fetch", state: "failed" })).toBe(1);
    expect(valueOf(exposition, "transporter_queue_jobs", { queue: "deliver", state: "completed" })).toBe(1);
  });

  it("every metric the Grafana dashboard queries is one the services emit", () => {
    const dashboard = JSON.parse(readFileSync("deploy/observability/grafana/dashboards/transporter.json", "utf8")) as Parameters<typeof dashboardTargets>[0];
    const emitted = new Set(exposition.samples.map((s) => s.name));
    const queried = dashboardTargets(dashboard).flatMap((t) => metricNamesInPromQL(t.expr).map((name) => ({ name, panel: t.panel })));
    expect(queried.length).toBeGreaterThan(10);
    const missing = queried.filter((q) => !emitted.has(q.name)).map((q) => `${q.panel}: ${q.name}`);
    expect(missing, `emitted: ${[...emitted].sort().join(", ")}`).toEqual([]);
  });
});
