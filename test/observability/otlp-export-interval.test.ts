import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testConfig } from "@transporter/config";
import { metrics, startTelemetry, telemetryOptions, type Telemetry } from "@transporter/telemetry";

/**
 * METRICS_SAMPLE_INTERVAL_MS is how often a service pushes its metrics to the OTLP collector
 * (the Prometheus endpoint is read when scraped). A collector stand-in counts the pushes.
 */
describe("the OTLP metric export interval", () => {
  let server: Server;
  let telemetry: Telemetry | undefined;
  const pushes: number[] = [];

  beforeAll(async () => {
    server = createServer((request, response) => {
      if (request.url === "/v1/metrics") pushes.push(Date.now());
      request.resume();
      request.on("end", () => response.writeHead(200, { "content-type": "application/json" }).end("{}"));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  });

  afterAll(async () => {
    await telemetry?.shutdown();
    await new Promise((resolve) => server.close(resolve));
  });

  it("service mains take it from METRICS_SAMPLE_INTERVAL_MS (default 15 s)", () => {
    const config = testConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318", METRICS_SAMPLE_INTERVAL_MS: "2500" });
    expect(telemetryOptions("fetcher", config)).toMatchObject({ serviceName: "transporter-fetcher", otlpEndpoint: "http://collector:4318", metricExportIntervalMs: 2500 });
    expect(telemetryOptions("fetcher", testConfig()).metricExportIntervalMs).toBe(15_000);
  });

  it("pushes metrics to the collector at that interval", async () => {
    const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    telemetry = startTelemetry({ serviceName: "transporter-export-interval-test", otlpEndpoint: endpoint, metricExportIntervalMs: 100 });
    metrics.getMeter("export-interval-test").createCounter("transporter.test.pushes").add(1);
    const deadline = Date.now() + 10_000;
    while (pushes.length < 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    // With the former fixed 15 s, not even the first push would have come.
    expect(pushes.length).toBeGreaterThanOrEqual(2);
  });
});
