export { startTelemetry, type Telemetry, type TelemetryOptions } from "./sdk.js";
export { injectTraceContext, withTraceContext, startSpan, startLinkedTrace, traceCarrierOf, currentTraceIds, type TraceCarrier } from "./context.js";
export { createLogger, REDACTED_PATHS, type Logger } from "./logger.js";
export { metrics, trace, context, SpanStatusCode, type Meter, type Tracer, type Span, type Counter, type Histogram } from "@opentelemetry/api";
export { HAND_BACK_MS, runServiceMain, telemetryOptions, type RunningService } from "./service-main.js";
export { shutdownGraceOver } from "./shutdown.js";
export { HISTOGRAM_BUCKETS } from "./views.js";
