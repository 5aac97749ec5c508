import { installTestTelemetry } from "@transporter/telemetry/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Clock, DAY, setup, type Env } from "./helpers.js";

/** A scheduled run has a trace of its own, linked to the tick that created it. */
describe("scheduler tracing", () => {
  const telemetry = installTestTelemetry();
  let env: Env;
  beforeAll(async () => {
    env = await setup("sched-tracing");
  });
  afterAll(async () => {
    await env.close();
    await telemetry.shutdown();
  });

  it("runs one tick creates (here for two tenants) each start their own trace, linked to the tick's span, carried by their fetch job", async () => {
    const createdAt = new Date("2026-11-20T12:00:00Z");
    const clock = new Clock(createdAt.getTime());
    const a = await env.task(await env.tenant("UTC"), { frequency: "daily", time: "06:00" }, "UTC", createdAt);
    const b = await env.task(await env.tenant("Europe/Paris"), { frequency: "daily", time: "06:00" }, "Europe/Paris", createdAt);
    const scheduler = env.scheduler({ now: clock.now });
    clock.advance(DAY);
    expect((await scheduler.tick()).created).toBe(2);

    const { rows } = await env.pool.query<{ id: string; traceparent: string }>(`SELECT id, traceparent FROM "Run" WHERE "taskId" = ANY($1::uuid[])`, [[a, b]]);
    const traceIds = rows.map((r) => r.traceparent.split("-")[1]);
    expect(new Set(traceIds).size).toBe(2);
    const tick = telemetry.spans.getFinishedSpans().find((s) => s.name === "scheduler.tick")!;
    expect(traceIds).not.toContain(tick.spanContext().traceId);
    for (const run of rows) {
      const [, traceId, spanId] = run.traceparent.split("-");
      const root = telemetry.spans.getFinishedSpans().find((s) => s.spanContext().spanId === spanId)!;
      expect(root).toMatchObject({ name: "scheduled run", attributes: expect.objectContaining({ "transporter.run_id": run.id }) });
      expect(root.spanContext().traceId).toBe(traceId);
      expect(root.links.map((l) => l.context.spanId)).toEqual([tick.spanContext().spanId]);
      // The fetch job carries the run's own context: every stage span joins the run's trace.
      const job = await scheduler.producer.queue("fetch").getJob(`${run.id}-fetch`);
      expect(job?.data.trace).toEqual({ traceparent: run.traceparent });
    }
  });
});
