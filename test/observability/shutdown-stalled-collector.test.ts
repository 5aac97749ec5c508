import { createServer, type Server, type Socket } from "node:net";
import { createContextKey, propagation, ROOT_CONTEXT } from "@opentelemetry/api";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { context, metrics, startSpan, startTelemetry, trace } from "@transporter/telemetry";

/**
 * A collector that takes the connection and never answers (overloaded, or a black-holing
 * proxy): a service's stop (runServiceMain) must not wait on it past its force-exit, and
 * telemetry must be released even though the last metrics and spans could not be sent.
 */
describe("telemetry shutdown while the OTLP collector does not answer", () => {
  let collector: Server;
  const sockets: Socket[] = [];
  let endpoint: string;

  beforeAll(async () => {
    collector = createServer((socket) => {
      sockets.push(socket);
      socket.on("error", () => undefined);
      socket.resume();
    });
    await new Promise<void>((resolve) => collector.listen(0, "127.0.0.1", resolve));
    endpoint = `http://127.0.0.1:${(collector.address() as { port: number }).port}`;
  });

  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => collector.close(resolve));
  });

  it("resolves within a few seconds and releases the global providers", async () => {
    const telemetry = startTelemetry({ serviceName: "transporter-stalled-collector-test", otlpEndpoint: endpoint, metricExportIntervalMs: 60_000 });
    metrics.getMeter("stalled-collector-test").createCounter("transporter.test.unsent").add(1);
    await startSpan(trace.getTracer("stalled-collector-test"), "unsent", {}, async () => undefined);
    const tracerProvider = trace.getTracerProvider();
    const meterProvider = metrics.getMeterProvider();
    expect(propagation.fields()).toContain("traceparent");

    const began = Date.now();
    const outcome = await telemetry.shutdown().then(() => "resolved", (error: unknown) => `rejected: ${(error as Error).message}`);
    const took = Date.now() - began;
    expect({ outcome, within3s: took < 3_000 }).toEqual({ outcome: "resolved", within3s: true });
    // The flush got as far as the collector (it is that wait which was cut short).
    expect(sockets.length).toBeGreaterThan(0);

    // Released: a later start in this process registers its own.
    expect(trace.getTracerProvider()).not.toBe(tracerProvider);
    expect(trace.getTracer("stalled-collector-test").startSpan("after").isRecording()).toBe(false);
    expect(metrics.getMeterProvider()).not.toBe(meterProvider);
    expect(propagation.fields()).toEqual([]);
    const key = createContextKey("stalled-collector-test");
    expect(context.with(ROOT_CONTEXT.setValue(key, 1), () => context.active().getValue(key))).toBeUndefined();
  });
});
