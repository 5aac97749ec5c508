import { context, isSpanContextValid, propagation, trace, SpanStatusCode, type Attributes, type Span, type Tracer } from "@opentelemetry/api";

/** W3C trace context (`traceparent`, `tracestate`) as it travels inside a job payload. */
export type TraceCarrier = Record<string, string>;

/** The current trace context, to put into a job payload when enqueueing. */
export function injectTraceContext(): TraceCarrier {
  const carrier: TraceCarrier = {};
  propagation.inject(context.active(), carrier);
  return carrier;
}

/** The carrier of a trace context stored on a row as its `traceparent` (empty when there is none). */
export function traceCarrierOf(traceparent: string | null): TraceCarrier {
  return traceparent ? { traceparent } : {};
}

/** Run `fn` inside the trace context carried by a job payload (a no-op when it has none). */
export function withTraceContext<T>(carrier: TraceCarrier | undefined, fn: () => T): T {
  if (!carrier || Object.keys(carrier).length === 0) return fn();
  return context.with(propagation.extract(context.active(), carrier), fn);
}

/**
 * Run `fn` in a new active span: records an exception and sets error status when it throws,
 * and always ends the span.
 */
export async function startSpan<T>(tracer: Tracer, name: string, attributes: Attributes, fn: (span: Span) => Promise<T>): Promise<T> {
  return tracer.startActiveSpan(name, { attributes }, async (span) => {
    try {
      return await fn(span);
    } catch (error) {
      span.recordException(error as Error);
      span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error).message });
      throw error;
    } finally {
      span.end();
    }
  });
}

/**
 * The active trace and span ids for log lines; none when there is no span or only the invalid
 * all-zero context of a non-recording tracer (telemetry started without a trace exporter).
 */
export function currentTraceIds(): { trace_id?: string; span_id?: string } {
  const span = trace.getActiveSpan();
  if (!span) return {};
  const spanContext = span.spanContext();
  if (!isSpanContextValid(spanContext)) return {};
  return { trace_id: spanContext.traceId, span_id: spanContext.spanId };
}

/**
 * Starts the trace of one piece of work a batch began (a scheduled run a scheduler tick created):
 * a root span, linked to the batch's active span, ended at once, whose context is returned to be
 * carried with the work. Each run then has a trace of its own instead of sharing the tick's with
 * every other run (and tenant) of that tick.
 */
export function startLinkedTrace(tracer: Tracer, name: string, attributes: Attributes): TraceCarrier {
  const batch = trace.getActiveSpan()?.spanContext();
  const span = tracer.startSpan(name, { root: true, attributes, links: batch && isSpanContextValid(batch) ? [{ context: batch }] : [] });
  const carrier: TraceCarrier = {};
  propagation.inject(trace.setSpan(context.active(), span), carrier);
  span.end();
  return carrier;
}
