import path from "node:path";
import type { z } from "zod";
import { envSchema, type Config } from "./schema.js";

/** Thrown at start-up when the environment is incomplete or malformed; names every problem. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "ConfigError";
  }
}

/**
 * A key for development and tests only, so `npm start` works on a fresh clone. Production
 * refuses to start without SECRETS_MASTER_KEYS, and with this key among them (see below).
 */
const DEVELOPMENT_KEY_BYTES = Buffer.alloc(32, "transporter-development-only");
const DEVELOPMENT_MASTER_KEY = { dev: DEVELOPMENT_KEY_BYTES.toString("base64") };

/**
 * Each variable parsed on its own, for the cross-field rules: they are checked even when some
 * other variable is malformed, so one start-up names every problem.
 */
function parseEach(cleaned: Record<string, string | undefined>): Partial<Config> {
  const values: Record<string, unknown> = {};
  for (const [name, schema] of Object.entries(envSchema.shape)) {
    const parsed = (schema as z.ZodType).safeParse(cleaned[name]);
    if (parsed.success) values[name] = parsed.data;
  }
  return values as Partial<Config>;
}

export interface LoadConfigOptions {
  /**
   * Whether the process seals or opens stored secrets (default true). Without, production does
   * not require SECRETS_MASTER_KEYS: the platform simulator, a test double, has none to keep.
   */
  secrets?: boolean;
}

/** Rules across variables; each is checked only when the variables it reads are valid. */
function crossFieldProblems(config: Partial<Config>, given: Record<string, string | undefined>, options: LoadConfigOptions): string[] {
  // A process that keeps no secrets is not held to the rules about them.
  return [...(options.secrets === false ? [] : secretProblems(config, given)), ...storageProblems(config)];
}

function secretProblems(config: Partial<Config>, given: Record<string, string | undefined>): string[] {
  const problems: string[] = [];
  if (config.NODE_ENV === "production" && !("SECRETS_MASTER_KEYS" in given)) {
    problems.push("SECRETS_MASTER_KEYS: required in production (id:base64 32-byte key)");
  }
  if (config.NODE_ENV === "production") {
    // Compared as bytes, so another id or base64 spelling of the public development key is refused too.
    for (const [id, key] of Object.entries(config.SECRETS_MASTER_KEYS ?? {})) {
      if (Buffer.from(key, "base64").equals(DEVELOPMENT_KEY_BYTES)) {
        problems.push(`SECRETS_MASTER_KEYS: key "${id}" is the development key, which is public; generate a production key (openssl rand -base64 32)`);
      }
    }
  }
  if (!("SECRETS_MASTER_KEYS" in given) || config.SECRETS_MASTER_KEYS) {
    const masterKeys = config.SECRETS_MASTER_KEYS ?? DEVELOPMENT_MASTER_KEY;
    const activeKeyId = config.SECRETS_ACTIVE_KEY_ID ?? Object.keys(masterKeys)[0]!;
    if (!Object.hasOwn(masterKeys, activeKeyId)) {
      problems.push(`SECRETS_ACTIVE_KEY_ID: "${activeKeyId}" is not one of the ids in SECRETS_MASTER_KEYS`);
    }
  }
  return problems;
}

function storageProblems(config: Partial<Config>): string[] {
  const problems: string[] = [];
  if (config.STAGING_DRIVER === "s3" && !config.STAGING_S3_BUCKET) {
    problems.push("STAGING_S3_BUCKET: required when STAGING_DRIVER=s3");
  }
  if (config.MANAGED_DRIVER === "s3" && !config.MANAGED_S3_BUCKET) {
    problems.push("MANAGED_S3_BUCKET: required when MANAGED_DRIVER=s3");
  }
  // Both stores keep a run's objects under tenants/<tenant>/runs/<run>/, and the staging sweep
  // deletes that folder STAGING_RETENTION_HOURS after the run: sharing one place would delete
  // the managed files with it, long before MANAGED_RETENTION_DAYS.
  const why = "the staging sweep would delete managed files after STAGING_RETENTION_HOURS";
  if (config.STAGING_DRIVER === "fs" && config.MANAGED_DRIVER === "fs" && config.STAGING_DIR && config.MANAGED_DIR) {
    const [staging, managed] = [path.resolve(config.STAGING_DIR), path.resolve(config.MANAGED_DIR)];
    const within = (inner: string, outer: string) => inner === outer || inner.startsWith(outer + path.sep);
    if (within(staging, managed) || within(managed, staging)) {
      problems.push(`STAGING_DIR and MANAGED_DIR: the same place or one inside the other (${staging}, ${managed}); ${why}`);
    }
  }
  if (config.STAGING_DRIVER === "s3" && config.MANAGED_DRIVER === "s3" && config.STAGING_S3_BUCKET && config.STAGING_S3_BUCKET === config.MANAGED_S3_BUCKET) {
    if (sameEndpoint(config.STAGING_S3_ENDPOINT, config.MANAGED_S3_ENDPOINT)) {
      problems.push(`STAGING_S3_BUCKET and MANAGED_S3_BUCKET: the same place (bucket "${config.STAGING_S3_BUCKET}" at one endpoint); use two buckets, as ${why}`);
    }
  }
  return problems;
}

/** Whether two S3 endpoints are the same service (unset: AWS's, where bucket names are global). */
function sameEndpoint(a: string | undefined, b: string | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  const [x, y] = [new URL(a), new URL(b)];
  return x.protocol === y.protocol && x.host === y.host && x.pathname.replace(/\/+$/, "") === y.pathname.replace(/\/+$/, "");
}

/** Parse and check the environment; throws ConfigError listing every bad or missing variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env, options: LoadConfigOptions = {}): Config {
  // Empty strings mean "unset", as they do in docker-compose and Kubernetes manifests.
  const cleaned = Object.fromEntries(
    Object.entries(env).filter(([key, value]) => key in envSchema.shape && value !== undefined && value !== ""),
  );
  const parsed = envSchema.safeParse(cleaned);
  const problems: string[] = parsed.success
    ? []
    : parsed.error.issues.map((issue) => {
        const name = String(issue.path[0] ?? "environment");
        const shown = name in cleaned && !/SECRET|KEY|PASSWORD|URL/.test(name) ? ` (got "${cleaned[name]}")` : "";
        return `${name}: ${issue.message}${shown}`;
      });
  problems.push(...crossFieldProblems(parsed.success ? parsed.data : parseEach(cleaned), cleaned, options));
  if (!parsed.success || problems.length > 0) throw new ConfigError(problems);
  const config = parsed.data;
  const masterKeys = config.SECRETS_MASTER_KEYS ?? DEVELOPMENT_MASTER_KEY;
  return { ...config, SECRETS_MASTER_KEYS: masterKeys, SECRETS_ACTIVE_KEY_ID: config.SECRETS_ACTIVE_KEY_ID ?? Object.keys(masterKeys)[0]! };
}
