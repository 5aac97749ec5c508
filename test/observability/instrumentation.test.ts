import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSpan, startTelemetry, trace, type Telemetry } from "@transporter/telemetry";
import { InMemorySpanExporter } from "@transporter/telemetry/testing";

/**
 * startTelemetry (what every service's main runs) instruments PostgreSQL and Redis even though
 * this file imported pg and ioredis as ES modules before telemetry started; statements carry
 * no values, so job payloads and stored secrets never reach a span.
 */
describe("PostgreSQL and Redis spans from startTelemetry", () => {
  const spans = new InMemorySpanExporter();
  let telemetry: Telemetry;
  let redis: Redis;
  let client: pg.Client;
  const secret = `secret-${randomBytes(12).toString("hex")}`;
  const key = `test-instrumentation-${randomBytes(4).toString("hex")}`;

  beforeAll(async () => {
    telemetry = startTelemetry({ serviceName: "transporter-instrumentation-test", spanExporter: spans });
    redis = new Redis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379");
    client = new pg.Client({ connectionString: process.env.DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/postgres" });
    await client.connect();
    await startSpan(trace.getTracer("instrumentation-test"), "work", {}, async () => {
      await redis.set(key, secret, "EX", 60);
      await redis.get(key);
      await client.query("SELECT $1::text AS value", [secret]);
    });
    // Spans reach the exporter once the resource's detectors have answered, a moment after they end.
    for (let waited = 0; !spans.getFinishedSpans().some((s) => s.name === "work") && waited < 10_000; waited += 20) await new Promise((resolve) => setTimeout(resolve, 20));
  });

  afterAll(async () => {
    await redis?.del(key);
    redis?.disconnect();
    await client?.end();
    await telemetry?.shutdown();
  });

  it("records Redis commands and SQL queries as children of the active span", () => {
    const finished = spans.getFinishedSpans();
    const parent = finished.find((s) => s.name === "work")!;
    const children = finished.filter((s) => s.parentSpanContext?.spanId === parent.spanContext().spanId);
    const names = children.map((s) => s.name);
    expect(names).toEqual(expect.arrayContaining(["set", "get"]));
    expect(names.some((n) => n.startsWith("pg.query"))).toBe(true);
    for (const child of children) expect(child.spanContext().traceId).toBe(parent.spanContext().traceId);
  });

  it("keeps values out of the statements", () => {
    const text = JSON.stringify(spans.getFinishedSpans().map((s) => [s.name, s.attributes, s.events]));
    expect(text).not.toContain(secret);
    expect(text).toContain("SELECT $1::text AS value");
  });
});
