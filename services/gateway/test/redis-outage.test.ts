/**
 * The API with Redis away: what needs only PostgreSQL goes on (the rate limit lets through what
 * it cannot count), and a run asked for is answered at once with the run as committed.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRedisProxy, type RedisProxy } from "../../../libs/queue/test/support/redis-proxy.js";
import { ENQUEUE_WAIT_MS } from "../src/run-requests.js";
import { readyTenant, setupGateway, type TestGateway } from "./helpers.js";

describe("gateway with Redis gone", () => {
  let gw: TestGateway;
  let proxy: RedisProxy;
  beforeAll(async () => {
    proxy = await startRedisProxy();
    // Every connection of this gateway (its rate limit's included) goes through the proxy.
    gw = await setupGateway({ config: { REDIS_URL: proxy.url, API_RATE_LIMIT_PER_MINUTE: "3" }, deps: { now: () => new Date("2026-11-23T12:00:00Z") } });
  });
  afterAll(async () => gw.close());

  it("counts requests while Redis is there; once it is gone, answers reads at once and a run request with the run, PENDING", async () => {
    const t = await readyTenant(gw);
    const task = await gw.call(t.adminKey, "POST", "/v1/tasks", t.body({ enabled: false }));
    expect(task.status).toBe(201);
    // Counted while Redis is there: the fourth request in the minute is refused.
    for (let i = 0; i < 2; i++) expect((await gw.call(t.adminKey, "GET", "/v1/account")).status).toBe(200);
    expect((await gw.call(t.adminKey, "GET", "/v1/account")).status).toBe(429);

    await proxy.kill();
    const began = Date.now();
    const reads = await Promise.all([1, 2, 3, 4, 5].map(() => gw.call(t.adminKey, "GET", `/v1/tasks/${task.body.id}`)));
    expect(reads.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    const asked = await gw.call(t.adminKey, "POST", `/v1/tasks/${task.body.id}/runs`, { windowStart: "2026-11-20T00:00:00Z", windowEnd: "2026-11-21T00:00:00Z" });
    expect(asked.status).toBe(202);
    expect(asked.body).toMatchObject({ status: "PENDING", windowStart: "2026-11-20T00:00:00.000Z" });
    expect(Date.now() - began).toBeLessThan(ENQUEUE_WAIT_MS + 5_000);
    const row = await gw.prisma.run.findUniqueOrThrow({ where: { id: asked.body.id } });
    expect(row.enqueuedAt).toBeNull();
    expect(gw.logs.join("")).toMatch(/the run's job is not confirmed queued yet/);
  });
});
