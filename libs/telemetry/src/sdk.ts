import { createRequire } from "node:module";
import { context, metrics, propagation, trace } from "@opentelemetry/api";
import { OTLPMetricExporter } from "@opentelemetry/exporter-metrics-otlp-http";
import { PrometheusExporter } from "@opentelemetry/exporter-prometheus";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { IORedisInstrumentation } from "@opentelemetry/instrumentation-ioredis";
import { PgInstrumentation } from "@opentelemetry/instrumentation-pg";
import { HttpInstrumentation } from "@opentelemetry/instrumentation-http";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { metrics as sdkMetrics, NodeSDK } from "@opentelemetry/sdk-node";
import { PeriodicExportingMetricReader, type MetricReader } from "@opentelemetry/sdk-metrics";
import { BatchSpanProcessor, type SpanExporter, type SpanProcessor, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION, ATTR_URL_FULL } from "@opentelemetry/semantic-conventions";
import { HISTOGRAM_BUCKETS } from "./views.js";

export interface TelemetryOptions {
  serviceName: string;
  serviceVersion?: string;
  /** OTLP/HTTP endpoint (collector); nothing is exported when absent. */
  otlpEndpoint?: string;
  /** How often metrics are pushed to otlpEndpoint (ms; METRICS_SAMPLE_INTERVAL_MS); 15 s by default. */
  metricExportIntervalMs?: number;
  /** Serve Prometheus metrics on this port when set. */
  prometheusPort?: number;
  /** Tests: export spans here (e.g. an InMemorySpanExporter). */
  spanExporter?: SpanExporter;
  /** Tests: read metrics with this reader (e.g. a PeriodicExportingMetricReader over an in-memory exporter). */
  metricReader?: MetricReader;
}

export interface Telemetry {
  prometheus?: PrometheusExporter;
  /**
   * Resolves once the Prometheus endpoint listens (at once without one); rejects, naming the
   * port, if it cannot (a port in use): a service must not run unscraped without a word.
   */
  started: Promise<void>;
  /** Flushes and releases telemetry; never rejects, and gives up on the last export after 2 s. */
  shutdown(): Promise<void>;
}

let active: Telemetry | undefined;

const HTTP_INSTRUMENTATION = "@opentelemetry/instrumentation-http";

/** How long one OTLP export may wait for the collector (10 s by default). */
const OTLP_TIMEOUT_MS = 5_000;

/** How long shutdown waits for the last export: well within HAND_BACK_MS (service-main.ts). */
const SHUTDOWN_TIMEOUT_MS = 2_000;

/**
 * Requests not traced: the orchestrator's health probes (the gateway's /healthz and /readyz) and
 * Prometheus's scrapes of /metrics, every few seconds each, would otherwise each be a trace.
 */
const UNTRACED_PATHS = /^\/(healthz|readyz|metrics)(\?|$)/;

/**
 * Outgoing requests' url.full without its query string: presigned URLs and upload sessions (a GCS
 * resumable upload's upload_id) carry credentials there, beyond the few parameter names the HTTP
 * instrumentation redacts. Set as the span starts, so no exporter sees the query.
 */
const dropUrlQueries: SpanProcessor = {
  onStart(span) {
    const url = span.attributes[ATTR_URL_FULL];
    if (typeof url === "string" && url.includes("?")) span.setAttribute(ATTR_URL_FULL, url.slice(0, url.indexOf("?")));
  },
  onEnd: () => undefined,
  forceFlush: async () => undefined,
  shutdown: async () => undefined,
};

/**
 * Start the OpenTelemetry Node SDK for one process. Call first, before other imports do work,
 * so HTTP, PostgreSQL and Redis calls are instrumented. Idempotent per process: when all six
 * services run in one process (`npm start`, tests) the first call wins and names the resource.
 */
export function startTelemetry(options: TelemetryOptions): Telemetry {
  if (active) return active;
  // First, so every exporter gets the URLs without their queries.
  const spanProcessors: SpanProcessor[] = [dropUrlQueries];
  if (options.spanExporter) spanProcessors.push(new SimpleSpanProcessor(options.spanExporter));
  if (options.otlpEndpoint) {
    spanProcessors.push(new BatchSpanProcessor(new OTLPTraceExporter({ url: `${options.otlpEndpoint.replace(/\/$/, "")}/v1/traces`, timeoutMillis: OTLP_TIMEOUT_MS })));
  }
  const readers: MetricReader[] = [];
  if (options.metricReader) readers.push(options.metricReader);
  if (options.otlpEndpoint) {
    readers.push(new PeriodicExportingMetricReader({
      exporter: new OTLPMetricExporter({ url: `${options.otlpEndpoint.replace(/\/$/, "")}/v1/metrics`, timeoutMillis: OTLP_TIMEOUT_MS }),
      // The export timeout (30 s by default) is clamped to a shorter interval by the reader.
      exportIntervalMillis: options.metricExportIntervalMs ?? 15_000,
    }));
  }
  let prometheus: PrometheusExporter | undefined;
  let started = Promise.resolve();
  if (options.prometheusPort !== undefined) {
    const port = options.prometheusPort;
    // Started here rather than by the exporter, whose listen error would only reach OTel's diag log.
    prometheus = new PrometheusExporter({ port, preventServerStart: true });
    started = prometheus.startServer().catch((error: unknown) => {
      throw new Error(`cannot serve Prometheus metrics on port ${port}: ${(error as Error).message}`, { cause: error });
    });
    // Handled by whoever awaits `started` (runServiceMain); not an unhandled rejection meanwhile.
    started.catch(() => undefined);
    readers.push(prometheus);
  }
  const sdk = new NodeSDK({
    resource: resourceFromAttributes({
      [ATTR_SERVICE_NAME]: options.serviceName,
      [ATTR_SERVICE_VERSION]: options.serviceVersion ?? "0.0.0",
    }),
    spanProcessors,
    // Logs go through pino to stdout; without this the SDK would add an OTLP log exporter from the environment.
    logRecordProcessors: [],
    metricReaders: readers,
    views: [
      ...Object.entries(HISTOGRAM_BUCKETS).map(([instrumentName, boundaries]) => ({
        instrumentName,
        aggregation: { type: sdkMetrics.AggregationType.EXPLICIT_BUCKET_HISTOGRAM as const, options: { boundaries: [...boundaries] } },
      })),
      // The HTTP instrumentation's request durations are labelled with the server's address and
      // port: a family per tenant bucket or endpoint called, per replica. Not ours to chart.
      { meterName: HTTP_INSTRUMENTATION, aggregation: { type: sdkMetrics.AggregationType.DROP as const } },
    ],
    instrumentations: [
      new HttpInstrumentation({ ignoreIncomingRequestHook: (request) => UNTRACED_PATHS.test(request.url ?? "") }),
      // A query outside any span (the readiness probe's SELECT 1) would be a trace of its own;
      // Redis commands are only recorded under a span by default too.
      new PgInstrumentation({ enhancedDatabaseReporting: false, requireParentSpan: true }),
      // Statement values would include job payloads; keep only the command names.
      new IORedisInstrumentation({ dbStatementSerializer: (command) => command }),
    ],
  });
  sdk.start();
  // The instrumentations patch CommonJS modules as they are required. Our ESM `import`s of pg
  // and ioredis do not go through `require`, so without this they would stay unpatched: requiring
  // them once here patches the very module instances the imports share (even when imported earlier).
  const requireFromHere = createRequire(import.meta.url);
  for (const name of ["pg", "ioredis"]) {
    try {
      requireFromHere(name);
    } catch {
      // not installed where this process runs: nothing to instrument
    }
  }
  active = {
    prometheus,
    started,
    async shutdown() {
      active = undefined;
      let timer: NodeJS.Timeout | undefined;
      try {
        // The last flush to a collector that does not answer must not hold up the service's stop
        // past its force-exit (runServiceMain): what is not sent by then is given up.
        const timedOut = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`not done within ${SHUTDOWN_TIMEOUT_MS} ms`)), SHUTDOWN_TIMEOUT_MS);
        });
        await Promise.race([sdk.shutdown(), timedOut]);
      } catch (error) {
        console.error(`telemetry: shutdown: the last metrics and spans may not have been exported: ${(error as Error).message}`);
      } finally {
        clearTimeout(timer);
        // The SDK leaves its providers registered globally: a later start in this process (a test
        // worker running the next file) could not register its own and would record nothing.
        metrics.disable();
        trace.disable();
        propagation.disable();
        context.disable();
      }
    },
  };
  return active;
}
