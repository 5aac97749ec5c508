import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { testConfig, type Config } from "@transporter/config";
import { keyringFromConfig } from "@transporter/crypto";
import { createTestDatabase, type TestDatabase } from "@transporter/db/testing";
import { closeRedis, createRedis, JobProducer, logConnectionOutages, testRedisPrefix, type Redis } from "@transporter/queue";
import { createManagedStore } from "@transporter/storage";
import { createLogger } from "@transporter/telemetry";
import { buildApp, type GatewayApp } from "../src/app.js";
import type { GatewayDeps } from "../src/deps.js";
import { createOperatorKey } from "../src/operator-key.js";

export interface TestGateway {
  app: GatewayApp;
  db: TestDatabase;
  prisma: TestDatabase["prisma"];
  redis: Redis;
  config: Config;
  operatorKey: string;
  /** Every log line the gateway wrote (to scan for secrets). */
  logs: string[];
  createTenant(overrides?: { name?: string; accountId?: string; timezone?: string; taskLimit?: number }): Promise<{ tenant: { id: string; accountId: string }; adminKey: string }>;
  /** Request helper: `call(key, "POST", "/v1/...", body)`. */
  call(key: string, method: string, url: string, body?: unknown): Promise<{ status: number; body: any; headers: Record<string, unknown> }>;
  close(): Promise<void>;
}

let accountCounter = 0;

/** A gateway over a fresh database and Redis prefix, with an operator key, for `inject` tests. */
export async function setupGateway(options: { config?: Record<string, string>; deps?: Partial<GatewayDeps> } = {}): Promise<TestGateway> {
  const db = await createTestDatabase();
  const prefix = testRedisPrefix("gw");
  const dataDir = mkdtempSync(join(tmpdir(), "gateway-test-"));
  const config = testConfig({ REDIS_PREFIX: prefix, LOG_LEVEL: "info", MANAGED_DIR: join(dataDir, "managed"), STAGING_DIR: join(dataDir, "staging"), ...options.config });
  const redis = createRedis(config.REDIS_URL);
  const queues = new JobProducer(redis, prefix, { attempts: 2, backoffMs: 10 });
  const logs: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, done) {
      logs.push(String(chunk));
      done();
    },
  });
  const logger = createLogger({ name: "gateway-test", level: "info", destination });
  logConnectionOutages(redis, logger, "gateway test");
  const app = await buildApp({ config, prisma: db.prisma, redis, queues, keyring: keyringFromConfig(config), logger, managedStore: createManagedStore(config), ...options.deps });
  const { key: operatorKey } = await createOperatorKey(db.prisma, "test operator");

  const call: TestGateway["call"] = async (key, method, url, body) => {
    const res = await app.inject({
      method: method as "GET",
      url,
      headers: { authorization: `Bearer ${key}`, ...(body !== undefined ? { "content-type": "application/json" } : {}) },
      ...(body !== undefined ? { payload: typeof body === "string" ? body : JSON.stringify(body) } : {}),
    });
    let parsed: unknown = res.body;
    try {
      parsed = res.body ? JSON.parse(res.body) : undefined;
    } catch {
      parsed = res.body;
    }
    return { status: res.statusCode, body: parsed, headers: res.headers };
  };

  return {
    app, db, prisma: db.prisma, redis, config, operatorKey, logs, call,
    async createTenant(overrides = {}) {
      accountCounter += 1;
      const res = await call(operatorKey, "POST", "/v1/tenants", {
        name: overrides.name ?? `Brand ${accountCounter}`,
        accountId: overrides.accountId ?? `${process.pid}${accountCounter}${Date.now() % 100000}`,
        timezone: overrides.timezone ?? "Europe/London",
        ...(overrides.taskLimit !== undefined ? { taskLimit: overrides.taskLimit } : {}),
      });
      if (res.status !== 201) throw new Error(`tenant creation failed: ${res.status} ${JSON.stringify(res.body)}`);
      return { tenant: res.body.tenant, adminKey: res.body.adminApiKey.key };
    },
    async close() {
      await app.close();
      await queues.close();
      // Redis may be gone (a test cut it off): then there is nothing to clean, and QUIT would wait for it.
      if (redis.status === "ready") {
        const keys = await redis.keys(`${prefix}:*`);
        if (keys.length) await redis.del(...keys);
      }
      await closeRedis(redis);
      await db.drop();
    },
  };
}

/** A tenant ready for tasks: zone, a source, a managed destination and an active key (as rows). */
export async function readyTenant(gw: TestGateway, options: { timezone?: string; taskLimit?: number; withKey?: boolean } = {}) {
  const { tenant, adminKey } = await gw.createTenant({ timezone: options.timezone ?? "America/New_York", taskLimit: options.taskLimit });
  const source = await gw.prisma.source.create({ data: { tenantId: tenant.id, name: "LP", kind: "liveperson", accountId: tenant.accountId, sealedCredentials: "v1.x.y.z", permissions: ["messaging-interactions", "engagement-history"], verifiedAt: new Date() } });
  const destination = await gw.prisma.destination.create({ data: { tenantId: tenant.id, name: "Managed", kind: "managed", config: {}, verifiedAt: new Date() } });
  if (options.withKey !== false) {
    await gw.prisma.encryptionKey.create({ data: { tenantId: tenant.id, publicKey: "k", fingerprint: `FP${tenant.id}`, algorithm: "rsa", bits: 2048, origin: "generated", active: true } });
  }
  const body = (overrides: Record<string, unknown> = {}) => ({
    description: "Daily messaging", reportId: "messaging-conversations", reportVersion: "latest", format: "csv",
    schedule: { frequency: "daily", time: "00:00", delayMinutes: 360 }, sourceId: source.id, destinationId: destination.id,
    params: {}, enabled: true, ...overrides,
  });
  return { tenant, adminKey, source, destination, body };
}

/**
 * Makes every insert into (or update of) `table` for which the SQL condition `when` holds fail
 * until `undo()` is called, as a database fault would. A trigger, not `failStatements`: it also
 * fails the statement inside a transaction, so what a failed write leaves behind can be checked.
 */
export async function failWrites(gw: TestGateway, table: "AuditEvent" | "Alert" | "Task", when = "TRUE"): Promise<() => Promise<unknown>> {
  await gw.prisma.$executeRawUnsafe(`CREATE OR REPLACE FUNCTION test_fail_write() RETURNS trigger AS $$ BEGIN IF ${when} THEN RAISE EXCEPTION 'test: write refused'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql`);
  await gw.prisma.$executeRawUnsafe(`CREATE TRIGGER test_fail_write BEFORE INSERT OR UPDATE ON "${table}" FOR EACH ROW EXECUTE FUNCTION test_fail_write()`);
  return async () => gw.prisma.$executeRawUnsafe(`DROP TRIGGER test_fail_write ON "${table}"`);
}
