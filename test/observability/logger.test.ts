import { afterAll, describe, expect, it } from "vitest";
import { context, injectTraceContext, startSpan, trace, withTraceContext } from "@transporter/telemetry";
import { captureLogs, installTestTelemetry } from "@transporter/telemetry/testing";

const telemetry = installTestTelemetry();
afterAll(() => telemetry.shutdown());

describe("pino logs with trace ids", () => {
  it("every line written inside a span carries its trace and span ids; lines outside carry none", async () => {
    const { logger, records } = captureLogs({ name: "logger-test" });
    const tracer = trace.getTracer("logger-test");
    logger.info("outside");
    const ids = await startSpan(tracer, "work", {}, async (span) => {
      logger.info("inside");
      logger.child({ runId: "r1" }).warn("inside, child logger");
      return span.spanContext();
    });
    const [outside, inside, child] = records();
    expect(outside).not.toHaveProperty("trace_id");
    expect(outside).not.toHaveProperty("span_id");
    for (const line of [inside, child]) expect(line).toMatchObject({ trace_id: ids.traceId, span_id: ids.spanId, service: "logger-test" });
  });

  it("a job's logs continue the trace carried in its payload", async () => {
    const { logger, records } = captureLogs();
    const tracer = trace.getTracer("logger-test");
    const carrier = await startSpan(tracer, "api call", {}, async () => injectTraceContext());
    expect(carrier.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    await withTraceContext(carrier, () => startSpan(tracer, "fetch run", {}, async () => logger.info("in the job")));
    expect(records()[0]?.trace_id).toBe(carrier.traceparent!.split("-")[1]);
  });

  it("an invalid (all-zero) span context adds no ids", () => {
    const { logger, records } = captureLogs();
    const invalid = trace.wrapSpanContext({ traceId: "0".repeat(32), spanId: "0".repeat(16), traceFlags: 0 });
    context.with(trace.setSpan(context.active(), invalid), () => logger.info("no valid span"));
    expect(records()[0]).not.toHaveProperty("trace_id");
  });

  it("redacts secret-looking fields that reach a logger anyway", () => {
    const { logger, lines } = captureLogs();
    logger.info({ headers: { authorization: "Bearer tp_abc_supersecretvalue" }, body: { passphrase: "correct horse battery", privateKey: "-----BEGIN PGP PRIVATE KEY BLOCK-----" }, destination: { credentials: { secretAccessKey: "AKIAVERYSECRET" } } }, "request");
    const text = lines.join("");
    for (const secret of ["supersecretvalue", "correct horse battery", "BEGIN PGP PRIVATE", "AKIAVERYSECRET"]) expect(text).not.toContain(secret);
    expect(text).toContain("[redacted]");
  });
});
