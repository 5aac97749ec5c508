import { availableParallelism } from "node:os";
import { z } from "zod";

/** A comma-separated list of `id:base64key` pairs; each key must be 32 bytes (AES-256). */
const masterKeys = z
  .string()
  .transform((value, ctx) => {
    // No prototype: an id such as "__proto__" is a key like any other, not the object's prototype.
    const keys: Record<string, string> = Object.create(null) as Record<string, string>;
    for (const part of value.split(",").map((s) => s.trim()).filter(Boolean)) {
      const colon = part.indexOf(":");
      const id = colon > 0 ? part.slice(0, colon) : "";
      const key = colon > 0 ? part.slice(colon + 1) : "";
      if (!/^[A-Za-z0-9_-]{1,32}$/.test(id)) {
        ctx.addIssue({ code: "custom", message: `entry "${part.slice(0, 8)}…" must look like <id>:<base64 key>` });
        continue;
      }
      if (Buffer.from(key, "base64").length !== 32) {
        ctx.addIssue({ code: "custom", message: `key "${id}" must be 32 bytes, base64-encoded` });
        continue;
      }
      keys[id] = key;
    }
    if (Object.keys(keys).length === 0) ctx.addIssue({ code: "custom", message: "needs at least one <id>:<base64 key>" });
    return keys;
  });

const bool = z
  .enum(["true", "false", "1", "0", "yes", "no"])
  .transform((v) => v === "true" || v === "1" || v === "yes");
const port = z.coerce.number().int().min(0).max(65535);
const positiveInt = z.coerce.number().int().positive();
const optionalUrl = z.string().url().optional();

/**
 * The environment of every Transporter process. Defaults work on a developer machine
 * (PostgreSQL and Redis on localhost, files under .data/). Production must set the
 * secrets master key explicitly (see the cross-field check in loadConfig).
 */
export const envSchema = z.object({
  NODE_ENV: z.enum(["development", "test", "production"]).default("development"),
  SERVICE_VERSION: z.string().default("0.1.0"),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),

  DATABASE_URL: z.string().regex(/^postgres(ql)?:\/\//, "must be a postgresql:// URL").default("postgresql://postgres@127.0.0.1:5432/transporter"),
  DATABASE_POOL_SIZE: positiveInt.default(10),
  MIGRATE_ON_START: bool.default(false),
  REDIS_URL: z.string().regex(/^rediss?:\/\//, "must be a redis:// URL").default("redis://127.0.0.1:6379"),
  /** Prefix of every Redis key (queues, rate budgets, caches): lets several systems share a Redis. */
  REDIS_PREFIX: z.string().regex(/^[A-Za-z0-9_.-]+$/).default("transporter"),

  /** Sealing keys for stored credentials, `id:base64,id2:base64`; the active one seals, all open. */
  SECRETS_MASTER_KEYS: masterKeys.optional(),
  SECRETS_ACTIVE_KEY_ID: z.string().optional(),
  /** Optional bootstrap operator key (`tp_…`), created at gateway start-up if missing. */
  OPERATOR_API_KEY: z.string().regex(/^tp_[A-Za-z0-9]+_[A-Za-z0-9_-]+$/, "must be a key printed by operator:create-key").optional(),

  GATEWAY_HOST: z.string().default("127.0.0.1"),
  GATEWAY_PORT: port.default(8080),
  API_RATE_LIMIT_PER_MINUTE: positiveInt.default(600),

  STAGING_DRIVER: z.enum(["fs", "s3"]).default("fs"),
  STAGING_DIR: z.string().default(".data/staging"),
  STAGING_S3_BUCKET: z.string().optional(),
  STAGING_S3_ENDPOINT: optionalUrl,
  STAGING_S3_REGION: z.string().default("us-east-1"),
  STAGING_S3_ACCESS_KEY_ID: z.string().optional(),
  STAGING_S3_SECRET_ACCESS_KEY: z.string().optional(),
  STAGING_S3_FORCE_PATH_STYLE: bool.default(true),
  STAGING_RETENTION_HOURS: positiveInt.default(24),

  MANAGED_DRIVER: z.enum(["fs", "s3"]).default("fs"),
  MANAGED_DIR: z.string().default(".data/managed"),
  MANAGED_S3_BUCKET: z.string().optional(),
  MANAGED_S3_ENDPOINT: optionalUrl,
  MANAGED_S3_REGION: z.string().default("us-east-1"),
  MANAGED_S3_ACCESS_KEY_ID: z.string().optional(),
  MANAGED_S3_SECRET_ACCESS_KEY: z.string().optional(),
  MANAGED_RETENTION_DAYS: positiveInt.default(28),

  SCHEDULER_TICK_MS: positiveInt.default(5000),
  SCHEDULER_BATCH_SIZE: positiveInt.default(500),
  SCHEDULER_CATCH_UP_DAYS: positiveInt.default(7),
  RECONCILER_INTERVAL_MS: positiveInt.default(30_000),
  /** A run unchanged for this long whose stage job is missing is enqueued again (failed, if its job failed). */
  RECONCILER_GRACE_MS: positiveInt.default(60_000),
  RETENTION_SWEEP_INTERVAL_MS: positiveInt.default(3_600_000),

  JOB_ATTEMPTS: positiveInt.default(5),
  JOB_BACKOFF_MS: positiveInt.default(2000),
  /**
   * Overrides every queue's job lock (ms). A worker that dies mid-job (SIGKILL, lost machine)
   * keeps its lock until it expires; then another worker takes the job over. Shorter = faster
   * recovery, but a lock must outlast the longest pause of a healthy worker.
   */
  JOB_LOCK_MS: positiveInt.optional(),
  /** On SIGTERM/SIGINT, how long a service waits for its jobs before handing back those still running. */
  SHUTDOWN_GRACE_MS: positiveInt.default(25_000),
  CONCURRENCY_FETCH: positiveInt.default(4),
  CONCURRENCY_TRANSFORM: positiveInt.default(2),
  CONCURRENCY_ENCRYPT: positiveInt.default(2),
  CONCURRENCY_DELIVER: positiveInt.default(4),
  CONCURRENCY_NOTIFY: positiveInt.default(4),
  /**
   * Worker threads that read and encode CSV and NDJSON reports (one per core by default), shared
   * by all of a transformer's jobs; 0 = transform in the service's own thread only.
   */
  TRANSFORM_THREADS: z.coerce.number().int().min(0).max(64).default(() => availableParallelism()),

  PLATFORM_CSDS_URL: z.string().url().default("https://api.liveperson.net"),
  /** Data Access API host; empty = the regional host chosen per account. */
  PLATFORM_DATA_ACCESS_URL: optionalUrl,
  PLATFORM_TIMEOUT_MS: positiveInt.default(30_000),
  /** Requests per second one platform account may receive from all our fetchers together. */
  PLATFORM_RATE_PER_SECOND: positiveInt.default(10),
  /** Allow plain http:// source and destination hosts (simulator, tests, demo). */
  ALLOW_INSECURE_ENDPOINTS: bool.default(false),

  SIMULATOR_HOST: z.string().default("127.0.0.1"),
  SIMULATOR_PORT: port.default(8090),
  SIMULATOR_SEED: z.string().default("transporter"),
  /** The simulator refuses NODE_ENV=production unless this is true (a test double deployed by mistake). */
  SIMULATOR_ALLOW_PRODUCTION: bool.default(false),

  SMTP_URL: z
    .string()
    .regex(/^smtps?:\/\//, "must be an smtp:// URL")
    // A password with a raw "#", "?" or "/" cuts the URL short where it should not: percent-encode it.
    .refine((value) => URL.canParse(value), "is not a valid URL (percent-encode special characters in the user name and password)")
    .optional(),
  SMTP_FROM: z.string().default("Transporter <no-reply@transporter.local>"),

  OTEL_EXPORTER_OTLP_ENDPOINT: optionalUrl,
  /** When set, the process serves Prometheus metrics (`/metrics`) on this port. */
  PROMETHEUS_PORT: port.optional(),
  /** How often metrics are pushed to OTEL_EXPORTER_OTLP_ENDPOINT (the Prometheus endpoint is read when scraped). */
  METRICS_SAMPLE_INTERVAL_MS: positiveInt.default(15_000),
});

export type Env = z.input<typeof envSchema>;
export type Config = z.output<typeof envSchema> & {
  SECRETS_MASTER_KEYS: Record<string, string>;
  SECRETS_ACTIVE_KEY_ID: string;
};
