import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { testConfig, type Config } from "@transporter/config";
import { createTestDatabase, type TestDatabase } from "@transporter/db/testing";
import { createOperatorKey } from "@transporter/gateway";
import { testRedisPrefix } from "@transporter/queue";
import { startSimulator, type Simulator } from "@transporter/simulator";
import type { Logger } from "@transporter/telemetry";
import { startSystem, type System } from "../../../scripts/system.js";

/** The whole system in this process against real PostgreSQL and Redis, with the platform simulator as source. */
export interface ObservedSystem {
  system: System;
  simulator: Simulator;
  db: TestDatabase;
  config: Config;
  /** A fresh operator key (the first secret the tests look for in spans and logs). */
  operatorKey: string;
  /** Calls the gateway over HTTP; throws with the problem body when the status is not the expected one. */
  api<T = Record<string, unknown>>(key: string, method: string, path: string, body?: unknown, expectStatus?: number): Promise<T>;
  stop(): Promise<void>;
}

export async function startObservedSystem(options: { logger?: Logger; now?: () => Date; env?: Record<string, string> } = {}): Promise<ObservedSystem> {
  const db = await createTestDatabase();
  const simulator = await startSimulator({ port: 0, host: "127.0.0.1" });
  const dir = mkdtempSync(join(tmpdir(), "observability-"));
  const config = testConfig({
    DATABASE_URL: db.url,
    REDIS_PREFIX: testRedisPrefix("obs"),
    LOG_LEVEL: "debug",
    STAGING_DIR: join(dir, "staging"),
    MANAGED_DIR: join(dir, "managed"),
    GATEWAY_PORT: "0",
    PLATFORM_CSDS_URL: simulator.url,
    PLATFORM_DATA_ACCESS_URL: simulator.url,
    ALLOW_INSECURE_ENDPOINTS: "true",
    PLATFORM_TIMEOUT_MS: "5000",
    JOB_ATTEMPTS: "3",
    JOB_BACKOFF_MS: "100",
    SCHEDULER_TICK_MS: "200",
    RECONCILER_INTERVAL_MS: "1000",
    ...options.env,
  });
  let system: System;
  try {
    system = await startSystem(config, { ...(options.logger ? { logger: options.logger } : {}), ...(options.now ? { now: options.now } : {}) });
  } catch (error) {
    await simulator.stop();
    await db.drop();
    throw error;
  }
  const operatorKey = (await createOperatorKey(system.prisma, "observability tests")).key;

  async function api<T>(key: string, method: string, path: string, body?: unknown, expectStatus?: number): Promise<T> {
    const res = await fetch(`${system.gateway.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(body !== undefined ? { "content-type": "application/json" } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    const ok = expectStatus === undefined ? res.ok : res.status === expectStatus;
    if (!ok) throw new Error(`${method} ${path} answered ${res.status}: ${text}`);
    return (text ? JSON.parse(text) : undefined) as T;
  }

  return {
    system,
    simulator,
    db,
    config,
    operatorKey,
    api,
    async stop() {
      await system.stop();
      await simulator.stop();
      await db.drop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface OAuthCredentials {
  consumerKey: string;
  consumerSecret: string;
  token: string;
  tokenSecret: string;
}

/** A brand as the API creates it: tenant, admin key, generated key pair, and a simulator-backed source. */
export interface Brand {
  accountId: string;
  tenantId: string;
  adminKey: string;
  passphrase: string;
  privateKey: string;
  publicKey: string;
  credentials: OAuthCredentials;
  sourceId: string;
}

export function newCredentials(): OAuthCredentials {
  return {
    consumerKey: `ck${randomBytes(10).toString("hex")}`,
    consumerSecret: `cs${randomBytes(16).toString("hex")}`,
    token: `tk${randomBytes(10).toString("hex")}`,
    tokenSecret: `ts${randomBytes(16).toString("hex")}`,
  };
}

/** Operator key → tenant → POST /v1/encryption-keys/generate → source (verified against the simulator). */
export async function createBrand(observed: ObservedSystem, timezone = "Europe/Paris"): Promise<Brand> {
  const accountId = `${Date.now() % 1e8}${randomBytes(2).readUInt16BE(0)}`;
  const { tenant, adminApiKey } = await observed.api<{ tenant: { id: string }; adminApiKey: { key: string } }>(
    observed.operatorKey, "POST", "/v1/tenants", { name: "Observed Brand", accountId, timezone }, 201,
  );
  const passphrase = `pass-${randomBytes(16).toString("base64url")}`;
  const keyPair = await observed.api<{ privateKey: string; publicKey: string }>(adminApiKey.key, "POST", "/v1/encryption-keys/generate", { passphrase }, 201);
  const credentials = newCredentials();
  observed.simulator.control.registerAccount(accountId, credentials);
  const source = await observed.api<{ id: string }>(adminApiKey.key, "POST", "/v1/sources", { name: "Platform", kind: "liveperson", accountId, credentials }, 201);
  return { accountId, tenantId: tenant.id, adminKey: adminApiKey.key, passphrase, privateKey: keyPair.privateKey, publicKey: keyPair.publicKey, credentials, sourceId: source.id };
}

export const REPORT_ID = "messaging-conversations";

/**
 * A task of the brand. Tasks that only serve "run now" are created disabled (`enabled: false`):
 * an enabled one would also be scheduled, and a test running near its time of day would see an
 * extra scheduled run.
 */
export async function createTask(
  observed: ObservedSystem,
  brand: Brand,
  destinationId: string,
  schedule: Record<string, unknown> = { frequency: "daily", time: "00:00", delayMinutes: 0 },
  options: { enabled?: boolean } = {},
): Promise<string> {
  const task = await observed.api<{ id: string }>(brand.adminKey, "POST", "/v1/tasks", {
    description: `observed ${randomBytes(3).toString("hex")}`, reportId: REPORT_ID, reportVersion: "latest", format: "csv",
    schedule, sourceId: brand.sourceId, destinationId, enabled: options.enabled ?? true,
  }, 201);
  return task.id;
}

export interface RunView {
  id: string;
  status: string;
  trigger: string;
  records: number | null;
  bytes: number | null;
  error: string | null;
  errorCode: string | null;
}

/** The last complete hour before `now`: small windows keep the runs quick. */
export function lastHour(now = new Date()): { windowStart: string; windowEnd: string } {
  const end = new Date(Math.floor(now.getTime() / 3_600_000) * 3_600_000 - 3_600_000);
  return { windowStart: new Date(end.getTime() - 3_600_000).toISOString(), windowEnd: end.toISOString() };
}

export async function waitForRun(observed: ObservedSystem, adminKey: string, runId: string, timeoutMs = 90_000): Promise<RunView> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const run = await observed.api<RunView>(adminKey, "GET", `/v1/runs/${runId}`);
    if (run.status === "SUCCEEDED" || run.status === "FAILED") return run;
    if (Date.now() > until) throw new Error(`run ${runId} did not finish: ${JSON.stringify(run)}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
