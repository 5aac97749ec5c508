/**
 * A service whose PROMETHEUS_PORT cannot be listened on (another process has it) says so and
 * exits 1 before it starts. The exporter's own start told only OTel's diagnostic log, and the
 * service ran on with no metrics endpoint.
 */
import { once } from "node:events";
import { createServer } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "@transporter/db/testing";
import { testRedisPrefix } from "@transporter/queue";
import { ProcessGroup } from "./support/processes.js";

describe("a PROMETHEUS_PORT the service cannot listen on", () => {
  let db: TestDatabase;
  const taken = createServer();
  let group: ProcessGroup | undefined;

  beforeAll(async () => {
    db = await createTestDatabase();
    // Every interface, as the exporter listens.
    taken.listen(0);
    await once(taken, "listening");
  });

  afterAll(async () => {
    await group?.stopAll(5_000);
    taken.close();
    await db?.drop();
  });

  it("logs why and exits 1 at start-up", async () => {
    const port = (taken.address() as { port: number }).port;
    group = new ProcessGroup({
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      NODE_ENV: "test",
      LOG_LEVEL: "warn",
      DATABASE_URL: db.url,
      REDIS_URL: process.env.REDIS_URL ?? "redis://127.0.0.1:6379",
      REDIS_PREFIX: testRedisPrefix("prometheus-port"),
      PROMETHEUS_PORT: String(port),
    });
    const encryptor = group.start("encryptor");
    const exit = await Promise.race([encryptor.exited, sleep(20_000, "still running" as const)]);
    expect(exit, encryptor.output()).toEqual({ code: 1, signal: null });
    expect(encryptor.output()).toMatch(new RegExp(`encryptor: PROMETHEUS_PORT: cannot serve Prometheus metrics on port ${port}: .*EADDRINUSE`));
  }, 60_000);
});
