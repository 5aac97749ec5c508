import { describe, expect, it } from "vitest";
import { startSpan, startTelemetry, trace } from "@transporter/telemetry";
import { InMemorySpanExporter } from "@transporter/telemetry/testing";

/** The span names an exporter has received, once `count` arrived (export waits for the resource's detectors). */
async function exported(exporter: InMemorySpanExporter, count: number): Promise<string[]> {
  for (let waited = 0; exporter.getFinishedSpans().length < count && waited < 10_000; waited += 20) await new Promise((resolve) => setTimeout(resolve, 20));
  return exporter.getFinishedSpans().map((s) => s.name);
}

/**
 * A process (or a test worker running one file after another) that shuts telemetry down and
 * starts it again records with the new setup: shutdown releases the global providers.
 */
describe("telemetry started again after a shutdown", () => {
  it("records spans with the second setup", async () => {
    const first = new InMemorySpanExporter();
    const telemetry = startTelemetry({ serviceName: "transporter-restart-test-1", spanExporter: first });
    await startSpan(trace.getTracer("restart-test"), "before", {}, async () => undefined);
    // (Read before the shutdown, which empties the exporter.)
    expect(await exported(first, 1)).toEqual(["before"]);
    await telemetry.shutdown();

    const second = new InMemorySpanExporter();
    const again = startTelemetry({ serviceName: "transporter-restart-test-2", spanExporter: second });
    try {
      await startSpan(trace.getTracer("restart-test"), "after", {}, async () => undefined);
      expect(await exported(second, 1)).toEqual(["after"]);
    } finally {
      await again.shutdown();
    }
  });
});
