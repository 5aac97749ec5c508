import { randomBytes } from "node:crypto";
import type { AccountRegistration } from "@transporter/simulator";
import type { SourceCredentials } from "@transporter/sources";

/** A non-2xx answer of the gateway, with its problem+json body. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
    what: string,
  ) {
    super(`${what} → ${status}: ${JSON.stringify(body)}`);
  }
}

export type ApiCall = <T = unknown>(key: string, method: string, path: string, body?: unknown) => Promise<T>;

/** Calls the gateway over real HTTP with `Authorization: Bearer <key>`; throws ApiError on a non-2xx answer. */
export function apiClient(baseUrl: string): ApiCall {
  return async <T>(key: string, method: string, path: string, body?: unknown): Promise<T> => {
    const res = await fetch(`${baseUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(body !== undefined ? { "content-type": "application/json" } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      // not JSON: keep the text
    }
    if (!res.ok) throw new ApiError(res.status, parsed, `${method} ${path}`);
    return parsed as T;
  };
}

/** The subset of the run view (API.md) these tests read. */
export interface RunView {
  id: string;
  taskId: string;
  status: string;
  windowStart: string;
  windowEnd: string;
  attempts: number;
  records: number | null;
  rows: number | null;
  bytes: number | null;
  fileName: string | null;
  destinationPath: string | null;
  checksum: string | null;
  keyFingerprint: string | null;
  error: string | null;
}

export interface ProvisionedTenant {
  tenantId: string;
  accountId: string;
  adminKey: string;
  /** The generated key pair's private half and its passphrase: kept only in the test's memory. */
  privateKey: string;
  passphrase: string;
  keyFingerprint: string;
  /** The simulator account's OAuth 1.0a credentials (also stored in the source). */
  credentials: SourceCredentials;
  sourceId: string;
  managedDestinationId: string;
}

export interface ProvisionOptions {
  name?: string;
  timezone?: string;
  /** Simulator volume for the account (mean conversations per hour; the simulator's default is 12). */
  conversationsPerHour?: number;
}

/**
 * The admin's setup through the API, as a newcomer would do it: the operator creates a tenant,
 * the admin generates an encryption key pair, connects the simulator account as source (the
 * gateway verifies it against the simulator) and adds a managed-storage destination.
 */
/** Registers an account with the simulator: in this process (`Simulator`), or over its control API. */
export interface SimulatorAccounts {
  control: { registerAccount(accountId: string, registration: AccountRegistration): void | Promise<void> };
}

export async function provisionTenant(call: ApiCall, operatorKey: string, simulator: SimulatorAccounts, options: ProvisionOptions = {}): Promise<ProvisionedTenant> {
  const accountId = `e2e${randomBytes(4).toString("hex")}`;
  const created = await call<{ tenant: { id: string }; adminApiKey: { key: string } }>(operatorKey, "POST", "/v1/tenants", {
    name: options.name ?? `E2E ${accountId}`,
    accountId,
    timezone: options.timezone ?? "UTC",
  });
  const adminKey = created.adminApiKey.key;
  const passphrase = `E2e pass ${randomBytes(12).toString("base64url")}`;
  const key = await call<{ privateKey: string; fingerprint: string }>(adminKey, "POST", "/v1/encryption-keys/generate", { passphrase, algorithm: "curve25519" });

  const credentials = {
    consumerKey: randomBytes(8).toString("hex"),
    consumerSecret: randomBytes(12).toString("hex"),
    token: randomBytes(8).toString("hex"),
    tokenSecret: randomBytes(12).toString("hex"),
  };
  const registration: AccountRegistration = { ...credentials, ...(options.conversationsPerHour !== undefined ? { volume: { conversations: options.conversationsPerHour } } : {}) };
  await simulator.control.registerAccount(accountId, registration);
  const source = await call<{ id: string }>(adminKey, "POST", "/v1/sources", { name: "Platform (simulator)", kind: "liveperson", accountId, credentials });
  const destination = await call<{ id: string }>(adminKey, "POST", "/v1/destinations", { name: "Managed storage", kind: "managed", config: {} });
  return {
    tenantId: created.tenant.id,
    accountId,
    adminKey,
    privateKey: key.privateKey,
    passphrase,
    keyFingerprint: key.fingerprint,
    credentials,
    sourceId: source.id,
    managedDestinationId: destination.id,
  };
}

export interface Window {
  start: Date;
  end: Date;
}

/** `count` consecutive windows of `minutes` each, the last one ending `endingMinutesAgo` minutes before now, aligned to the window length. */
export function pastWindows(count: number, minutes: number, endingMinutesAgo: number, now = Date.now()): Window[] {
  const length = minutes * 60_000;
  const lastEnd = Math.floor((now - endingMinutesAgo * 60_000) / length) * length;
  const firstStart = lastEnd - count * length;
  return Array.from({ length: count }, (_, i) => ({ start: new Date(firstStart + i * length), end: new Date(firstStart + (i + 1) * length) }));
}

/** `POST /v1/tasks/:id/runs` for one given window. */
export async function requestRun(call: ApiCall, adminKey: string, taskId: string, window: Window): Promise<RunView> {
  return call<RunView>(adminKey, "POST", `/v1/tasks/${taskId}/runs`, { windowStart: window.start.toISOString(), windowEnd: window.end.toISOString() });
}

/** Every run of a task through `GET /v1/runs?taskId=` (cursor paging, newest first). */
export async function listTaskRuns(call: ApiCall, key: string, taskId: string): Promise<RunView[]> {
  const runs: RunView[] = [];
  let cursor: string | null = null;
  do {
    const query = new URLSearchParams({ taskId, limit: "500", ...(cursor ? { cursor } : {}) });
    const page: { items: RunView[]; nextCursor: string | null } = await call(key, "GET", `/v1/runs?${query}`);
    runs.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor);
  return runs;
}

/**
 * A CSV conversations task every `everyMinutes` to the tenant's managed storage, created
 * disabled: only the runs a test asks for exist (a disabled task still runs on request).
 */
export async function createConversationsTask(call: ApiCall, tenant: ProvisionedTenant, options: { description: string; everyMinutes: number }): Promise<{ id: string }> {
  return call<{ id: string }>(tenant.adminKey, "POST", "/v1/tasks", {
    description: options.description,
    reportId: "messaging-conversations",
    reportVersion: "latest",
    format: "csv",
    schedule: { frequency: "interval", everyMinutes: options.everyMinutes, delayMinutes: 0 },
    sourceId: tenant.sourceId,
    destinationId: tenant.managedDestinationId,
    enabled: false,
  });
}
