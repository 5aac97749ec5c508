import { randomBytes } from "node:crypto";
import { startSimulator, type AccountRegistration, type Simulator } from "@transporter/simulator";
import { createPlatform, rawJsonOf, type HttpOptions, type Platform, type SourceCredentials } from "../src/index.js";

export const SEED = "sources-tests";

export function newCredentials(): SourceCredentials {
  const r = () => randomBytes(12).toString("base64url");
  return { consumerKey: r(), consumerSecret: r(), token: r(), tokenSecret: r() };
}

let counter = 0;
/** A fresh account id per test, so faults and logs never leak between tests. */
export function newAccount(sim: Simulator, registration: Partial<AccountRegistration> = {}): { accountId: string; credentials: SourceCredentials } {
  const accountId = `${Date.now() % 1_000_000}${process.pid % 1000}${++counter}`;
  const credentials = newCredentials();
  sim.control.registerAccount(accountId, { ...credentials, ...registration });
  return { accountId, credentials };
}

export interface Sleeps {
  calls: number[];
}

/** A platform against the simulator whose backoff sleeps are recorded (and shortened); `now` pins its clock. */
export function platformFor(sim: Simulator, http: HttpOptions = {}, now?: () => number): { platform: Platform; sleeps: Sleeps } {
  const sleeps: Sleeps = { calls: [] };
  const platform = createPlatform({
    csdsUrl: sim.url,
    dataAccessUrl: sim.url,
    allowInsecure: true,
    ...(now ? { now } : {}),
    http: {
      timeoutMs: 5_000,
      sleep: async (ms) => {
        sleeps.calls.push(ms);
        await new Promise((r) => setTimeout(r, Math.min(ms, 5)));
      },
      ...http,
    },
  });
  return { platform, sleeps };
}

export async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

/** Records as NDJSON: as received when they carry their own JSON (`asReceived`), else serialised. */
export function ndjson(records: unknown[]): string {
  return records.map((r) => (r !== null && typeof r === "object" ? rawJsonOf(r)?.toString() : undefined) ?? JSON.stringify(r)).join("\n") + "\n";
}

export async function failure(promise: Promise<unknown>): Promise<Error & Record<string, unknown>> {
  try {
    await promise;
  } catch (error) {
    return error as Error & Record<string, unknown>;
  }
  throw new Error("expected a failure");
}

export { startSimulator };
