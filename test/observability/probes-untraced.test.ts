import http from "node:http";
import { createRequire } from "node:module";
import { SpanKind } from "@opentelemetry/api";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTelemetry, trace, type Telemetry } from "@transporter/telemetry";
import { InMemorySpanExporter } from "@transporter/telemetry/testing";
import { setupGateway, type TestGateway } from "../../services/gateway/test/helpers.js";
import { freePort } from "../e2e/support/processes.js";

type ReadableSpan = ReturnType<InMemorySpanExporter["getFinishedSpans"]>[number];

const pathOf = (span: ReadableSpan) => String(span.attributes["url.path"] ?? span.attributes["http.target"] ?? "");

/**
 * startTelemetry (what every service's main runs) in front of the real gateway listening on a
 * port: the orchestrator's /healthz and /readyz probes and Prometheus's scrapes of /metrics come
 * every few seconds and must not each open a trace (with /readyz's PostgreSQL and Redis calls in
 * it); an API request still gets its server span.
 */
describe("health probes and metric scrapes are left out of traces", () => {
  const spans = new InMemorySpanExporter();
  let telemetry: Telemetry;
  let gateway: TestGateway;
  let base: string;
  let metricsPort: number;

  beforeAll(async () => {
    metricsPort = await freePort();
    telemetry = startTelemetry({ serviceName: "transporter-probes-test", spanExporter: spans, prometheusPort: metricsPort });
    await telemetry.started;
    gateway = await setupGateway();
    base = await gateway.app.listen({ port: 0, host: "127.0.0.1" });
    // What the set-up did (the test database, the operator key) is not what is checked.
    await allExported();
    spans.reset();
  });

  /** Once a span ended now has been exported, so has everything before it; that one is left out. */
  async function allExported(): Promise<ReadableSpan[]> {
    trace.getTracer("probes-test").startSpan("marker").end();
    for (let waited = 0; !spans.getFinishedSpans().some((s) => s.name === "marker") && waited < 10_000; waited += 20) await new Promise((resolve) => setTimeout(resolve, 20));
    return spans.getFinishedSpans().filter((s) => s.name !== "marker");
  }

  afterAll(async () => {
    await gateway?.close();
    await telemetry?.shutdown();
  });

  it("records nothing for a readiness probe seen only by @fastify/otel (node:http not patched yet)", async () => {
    // As in a service just started: the HTTP instrumentation has not patched node:http yet (see
    // below), and @fastify/otel leaves the probes out, so its checks' SELECT 1 has no parent span.
    expect((http.Server.prototype.emit as { __wrapped?: boolean }).__wrapped).toBeFalsy();
    const res = await fetch(`${base}/readyz`);
    expect(res.status).toBe(200);
    await res.text();
    expect((await allExported()).map((s) => s.name)).toEqual([]);
  });

  it("records no span for /healthz, /readyz and /metrics, and a server span for an API request", async () => {
    // The HTTP instrumentation patches node:http when it is next required (in a service, by a
    // CommonJS dependency loaded later, e.g. the AWS SDK's credential providers): do so now.
    createRequire(import.meta.url)("node:http");
    expect((http.Server.prototype.emit as { __wrapped?: boolean }).__wrapped).toBe(true);
    spans.reset();
    for (const url of [`${base}/healthz`, `${base}/readyz`, `http://127.0.0.1:${metricsPort}/metrics`, `http://127.0.0.1:${metricsPort}/metrics?scrape=1`]) {
      const res = await fetch(url);
      expect(res.status, url).toBe(200);
      await res.text();
    }
    const api = await fetch(`${base}/v1/tenants`, { headers: { authorization: `Bearer ${gateway.operatorKey}` } });
    expect(api.status).toBe(200);
    await api.text();

    // Spans reach the exporter once the resource's detectors have answered; the API request's
    // server span (with @fastify/otel's under it) ends last, so once it is there the probes'
    // would be too.
    const isApiServerSpan = (s: ReadableSpan) => s.kind === SpanKind.SERVER && pathOf(s) === "/v1/tenants";
    for (let waited = 0; !spans.getFinishedSpans().some(isApiServerSpan) && waited < 10_000; waited += 20) await new Promise((resolve) => setTimeout(resolve, 20));
    const finished = spans.getFinishedSpans();
    expect(finished.filter(isApiServerSpan).map((s) => s.instrumentationScope.name)).toEqual(["@opentelemetry/instrumentation-http"]);

    const probeSpans = finished.filter((s) => /^\/(healthz|readyz|metrics)/.test(pathOf(s)));
    expect(probeSpans.map((s) => `${s.name} ${pathOf(s)}`)).toEqual([]);
    // Nor anything the probes did (the readiness checks' SELECT 1 and PING) as traces of their own:
    // every trace left is the API request's.
    const apiTrace = finished.find(isApiServerSpan)!.spanContext().traceId;
    expect(finished.filter((s) => s.spanContext().traceId === apiTrace).length).toBeGreaterThan(2);
    expect(finished.filter((s) => s.spanContext().traceId !== apiTrace).map((s) => s.name)).toEqual([]);
  });
});
