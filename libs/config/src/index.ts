export { envSchema, type Config, type Env } from "./schema.js";
export { loadConfig, ConfigError, type LoadConfigOptions } from "./load.js";
export { testConfig } from "./test-config.js";
