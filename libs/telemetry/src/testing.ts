import { context, metrics, propagation, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { AggregationTemporality, AggregationType, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { createLogger, type Logger } from "./logger.js";
import { HISTOGRAM_BUCKETS } from "./views.js";

/**
 * In-memory OpenTelemetry for tests: spans and metrics are captured in process so a test can
 * check trace links, attributes and metric values (and scan them for secrets).
 */
export function installTestTelemetry() {
  const spans = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
  trace.setGlobalTracerProvider(tracerProvider);
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const metricReader = new PeriodicExportingMetricReader({ exporter: metricExporter, exportIntervalMillis: 3_600_000 });
  const meterProvider = new MeterProvider({
    readers: [metricReader],
    views: Object.entries(HISTOGRAM_BUCKETS).map(([instrumentName, boundaries]) => ({
      instrumentName,
      aggregation: { type: AggregationType.EXPLICIT_BUCKET_HISTOGRAM, options: { boundaries: [...boundaries] } },
    })),
  });
  metrics.setGlobalMeterProvider(meterProvider);
  return {
    spans,
    /** Collect current metric values: name → data points. */
    async collectMetrics() {
      const { resourceMetrics } = await metricReader.collect();
      const out = new Map<string, { attributes: Record<string, unknown>; value: unknown }[]>();
      for (const scope of resourceMetrics.scopeMetrics) {
        for (const metric of scope.metrics) {
          const points = out.get(metric.descriptor.name) ?? [];
          for (const point of metric.dataPoints) points.push({ attributes: point.attributes, value: point.value });
          out.set(metric.descriptor.name, points);
        }
      }
      return out;
    },
    async shutdown() {
      await tracerProvider.shutdown();
      await meterProvider.shutdown();
      trace.disable();
      metrics.disable();
      propagation.disable();
      context.disable();
    },
  };
}

/**
 * A logger whose JSON lines are kept in memory (pass it as the system's `logger`), so a test can
 * check the trace ids on every line and scan everything logged for secrets.
 */
export function captureLogs(options: { name?: string; level?: string } = {}): { logger: Logger; lines: string[]; records(): Array<Record<string, unknown>> } {
  const lines: string[] = [];
  const logger = createLogger({
    name: options.name ?? "transporter",
    level: options.level ?? "debug",
    destination: { write: (line: string) => void lines.push(line) },
  });
  return { logger, lines, records: () => lines.map((line) => JSON.parse(line) as Record<string, unknown>) };
}

/** For tests that start the real SDK (`startTelemetry({ spanExporter })`). */
export { InMemorySpanExporter };
