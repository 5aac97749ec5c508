import { loadConfig } from "./load.js";
import type { Config } from "./schema.js";

/** A config for tests: defaults plus the given overrides (never reads process.env secrets). */
export function testConfig(overrides: Record<string, string | undefined> = {}): Config {
  return loadConfig({
    NODE_ENV: "test",
    LOG_LEVEL: "silent",
    DATABASE_URL: process.env.DATABASE_URL,
    REDIS_URL: process.env.REDIS_URL,
    ALLOW_INSECURE_ENDPOINTS: "true",
    ...overrides,
  });
}
