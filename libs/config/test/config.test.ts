import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ConfigError, envSchema, loadConfig } from "../src/index.js";

const key = () => randomBytes(32).toString("base64");
/** The development key loadConfig falls back to (in its source; repeated here on purpose). */
const developmentKey = Buffer.alloc(32, "transporter-development-only");

describe("configuration", () => {
  it("works on a developer machine with no variables at all", () => {
    const config = loadConfig({});
    expect(config.DATABASE_URL).toBe("postgresql://postgres@127.0.0.1:5432/transporter");
    expect(config.REDIS_URL).toBe("redis://127.0.0.1:6379");
    expect(config.GATEWAY_PORT).toBe(8080);
    expect(config.STAGING_DRIVER).toBe("fs");
    expect(config.MANAGED_RETENTION_DAYS).toBe(28);
    expect(Object.keys(config.SECRETS_MASTER_KEYS)).toEqual(["dev"]);
    expect(config.SECRETS_ACTIVE_KEY_ID).toBe("dev");
  });

  it("coerces numbers and booleans and treats empty strings as unset", () => {
    const config = loadConfig({ GATEWAY_PORT: "9000", MIGRATE_ON_START: "true", JOB_ATTEMPTS: "7", LOG_LEVEL: "", OTEL_EXPORTER_OTLP_ENDPOINT: "" });
    expect(config.GATEWAY_PORT).toBe(9000);
    expect(config.MIGRATE_ON_START).toBe(true);
    expect(config.JOB_ATTEMPTS).toBe(7);
    expect(config.LOG_LEVEL).toBe("info");
    expect(config.OTEL_EXPORTER_OTLP_ENDPOINT).toBeUndefined();
  });

  it("names every malformed variable at once", () => {
    let error: unknown;
    try {
      loadConfig({ DATABASE_URL: "mysql://x", GATEWAY_PORT: "http", REDIS_URL: "localhost:6379", LOG_LEVEL: "loud", STAGING_DRIVER: "ftp" });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems;
    for (const name of ["DATABASE_URL", "GATEWAY_PORT", "REDIS_URL", "LOG_LEVEL", "STAGING_DRIVER"]) {
      expect(problems.some((p) => p.startsWith(`${name}:`)), name).toBe(true);
    }
    expect((error as Error).message).toContain("Invalid configuration");
    // Values of URL and secret variables are never echoed (they may hold passwords).
    expect((error as Error).message).not.toContain("mysql://x");
    expect((error as Error).message).toContain('(got "loud")');
  });

  it("checks cross-field rules: production needs a master key, s3 drivers need a bucket, the active key must exist", () => {
    expect(() => loadConfig({ NODE_ENV: "production" })).toThrow(/SECRETS_MASTER_KEYS: required in production/);
    expect(() => loadConfig({ STAGING_DRIVER: "s3" })).toThrow(/STAGING_S3_BUCKET/);
    expect(() => loadConfig({ MANAGED_DRIVER: "s3" })).toThrow(/MANAGED_S3_BUCKET/);
    expect(() => loadConfig({ SECRETS_MASTER_KEYS: `a:${key()}`, SECRETS_ACTIVE_KEY_ID: "b" })).toThrow(/SECRETS_ACTIVE_KEY_ID/);
  });

  it("refuses an active key id that is not one of the master keys' own, even one every object has (toString, constructor)", () => {
    const key = Buffer.alloc(32, 7).toString("base64");
    for (const id of ["nope", "toString", "constructor", "__proto__"]) {
      expect(() => loadConfig({ NODE_ENV: "production", SECRETS_MASTER_KEYS: `k1:${key}`, SECRETS_ACTIVE_KEY_ID: id }), id).toThrow(/SECRETS_ACTIVE_KEY_ID: .* is not one of the ids/);
    }
  });

  it("refuses an SMTP_URL that is not a URL (a raw # in the password) without echoing it, and takes one percent-encoded", () => {
    let error: unknown;
    try {
      loadConfig({ SMTP_URL: "smtp://mailer:s3cr#t@mail.test:587" });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems.join("\n")).toMatch(/SMTP_URL: is not a valid URL \(percent-encode/);
    expect(JSON.stringify(error) + (error as Error).message).not.toContain("s3cr");
    expect(loadConfig({ SMTP_URL: "smtp://mailer:s3cr%23t@mail.test:587" }).SMTP_URL).toBe("smtp://mailer:s3cr%23t@mail.test:587");
  });

  it("takes a master key with any id the pattern allows, __proto__ included", () => {
    const key = Buffer.alloc(32, 9).toString("base64");
    const config = loadConfig({ NODE_ENV: "production", SECRETS_MASTER_KEYS: `k1:${key},__proto__:${key}`, SECRETS_ACTIVE_KEY_ID: "__proto__" });
    expect(Object.keys(config.SECRETS_MASTER_KEYS).sort()).toEqual(["__proto__", "k1"]);
    expect(config.SECRETS_ACTIVE_KEY_ID).toBe("__proto__");
  });

  it("refuses staging and managed storage in the same place (the staging sweep would delete managed files with a run's staging)", () => {
    const overlapping = [
      { STAGING_DIR: "/srv/data", MANAGED_DIR: "/srv/data" },
      { STAGING_DIR: "/srv/data/", MANAGED_DIR: "/srv/./data" },
      { STAGING_DIR: "/srv/data", MANAGED_DIR: "/srv/data/managed" },
      { STAGING_DIR: "/srv/data/staging", MANAGED_DIR: "/srv/data" },
      { STAGING_DIR: ".data", MANAGED_DIR: ".data/managed" },
      { STAGING_DRIVER: "s3", STAGING_S3_BUCKET: "transporter", MANAGED_DRIVER: "s3", MANAGED_S3_BUCKET: "transporter" },
      { STAGING_DRIVER: "s3", STAGING_S3_BUCKET: "files", STAGING_S3_ENDPOINT: "https://minio:9000", MANAGED_DRIVER: "s3", MANAGED_S3_BUCKET: "files", MANAGED_S3_ENDPOINT: "https://MINIO:9000/" },
    ];
    for (const env of overlapping) {
      expect(() => loadConfig(env), JSON.stringify(env)).toThrow(/STAGING_.*MANAGED_.*same place/);
    }
    const apart = [
      {},
      { STAGING_DIR: "/srv/data/staging", MANAGED_DIR: "/srv/data/managed" },
      { STAGING_DIR: "/srv/data", MANAGED_DIR: "/srv/data2" },
      // Only one driver is the file system: the other's folder setting is unused.
      { STAGING_DRIVER: "s3", STAGING_S3_BUCKET: "staging", STAGING_DIR: "/srv/data", MANAGED_DIR: "/srv/data" },
      { STAGING_DRIVER: "s3", STAGING_S3_BUCKET: "staging", MANAGED_DRIVER: "s3", MANAGED_S3_BUCKET: "managed" },
      { STAGING_DRIVER: "s3", STAGING_S3_BUCKET: "files", STAGING_S3_ENDPOINT: "https://minio-a:9000", MANAGED_DRIVER: "s3", MANAGED_S3_BUCKET: "files", MANAGED_S3_ENDPOINT: "https://minio-b:9000" },
    ];
    for (const env of apart) expect(() => loadConfig(env), JSON.stringify(env)).not.toThrow();
  });

  it("names malformed variables and broken cross-field rules together, not one start-up after the other", () => {
    let error: unknown;
    try {
      loadConfig({ NODE_ENV: "production", GATEWAY_PORT: "abc", LOG_LEVEL: "loud", MANAGED_DRIVER: "s3" });
    } catch (e) {
      error = e;
    }
    const names = (error as ConfigError).problems.map((p) => p.split(":")[0]);
    expect(names.sort()).toEqual(["GATEWAY_PORT", "LOG_LEVEL", "MANAGED_S3_BUCKET", "SECRETS_MASTER_KEYS"]);
    // A rule is checked only when the variables it reads are valid: a malformed driver is named once.
    const second = (() => {
      try {
        loadConfig({ STAGING_DRIVER: "ftp", SECRETS_MASTER_KEYS: "short" });
      } catch (e) {
        return (e as ConfigError).problems.filter((p) => !p.startsWith("SECRETS_MASTER_KEYS: entry"));
      }
    })();
    expect(second?.map((p) => p.split(":")[0]).sort()).toEqual(["SECRETS_MASTER_KEYS", "STAGING_DRIVER"]);
  });

  it("holds a process that keeps no secrets (secrets: false) to none of the rules about them", () => {
    const env = { NODE_ENV: "production", SECRETS_ACTIVE_KEY_ID: "prod", MANAGED_DRIVER: "s3", MANAGED_S3_BUCKET: "files" };
    expect(loadConfig(env, { secrets: false }).NODE_ENV).toBe("production");
    expect(() => loadConfig(env)).toThrow(/SECRETS_MASTER_KEYS: required in production/);
    // The other rules still hold.
    expect(() => loadConfig({ ...env, MANAGED_S3_BUCKET: "" }, { secrets: false })).toThrow(/MANAGED_S3_BUCKET/);
  });

  it("parses a rotating set of master keys and rejects short or malformed ones without echoing them", () => {
    const [a, b] = [key(), key()];
    const config = loadConfig({ NODE_ENV: "production", SECRETS_MASTER_KEYS: `old:${a}, new:${b}`, SECRETS_ACTIVE_KEY_ID: "new" });
    expect(config.SECRETS_MASTER_KEYS).toEqual({ old: a, new: b });
    expect(config.SECRETS_ACTIVE_KEY_ID).toBe("new");
    const short = Buffer.alloc(16, 1).toString("base64");
    let message = "";
    try {
      loadConfig({ SECRETS_MASTER_KEYS: `k1:${short}` });
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toMatch(/key "k1" must be 32 bytes/);
    expect(message).not.toContain(short);
    expect(() => loadConfig({ SECRETS_MASTER_KEYS: "nocolon" })).toThrow(/<id>:<base64 key>/);
  });

  it("refuses the development master key in production, however it is spelled or named, without echoing it", () => {
    const dev = developmentKey.toString("base64");
    const spellings = [`dev:${dev}`, `k1:${dev}`, `k1:${dev.replace(/=+$/, "")}`, `old:${key()},dev:${dev}`];
    for (const keys of spellings) {
      let message = "";
      try {
        loadConfig({ NODE_ENV: "production", SECRETS_MASTER_KEYS: keys });
      } catch (e) {
        message = (e as Error).message;
      }
      expect(message, keys).toMatch(/SECRETS_MASTER_KEYS: key "(dev|k1)" is the development key/);
      expect(message).not.toContain(dev.replace(/=+$/, ""));
    }
    // Outside production it is what a fresh clone runs with, given or not.
    expect(loadConfig({ NODE_ENV: "development", SECRETS_MASTER_KEYS: `dev:${dev}` }).SECRETS_MASTER_KEYS).toEqual({ dev });
    expect(loadConfig({ NODE_ENV: "test" }).SECRETS_MASTER_KEYS).toEqual({ dev });
  });
});

describe("the README's configuration table", () => {
  const readme = readFileSync(new URL("../../../README.md", import.meta.url), "utf8");
  const section = readme.slice(readme.indexOf("## Configuration"), readme.indexOf("\n## ", readme.indexOf("## Configuration") + 1));
  const rows = section
    .split("\n")
    .filter((line) => line.startsWith("| `"))
    .map((line) => line.split("|").slice(1, -1).map((cell) => cell.trim()))
    .map(([names = "", defaults = "", meaning = ""]) => ({ names: [...names.matchAll(/`([A-Z0-9_]+)`/g)].map((m) => m[1]!), defaults, meaning }));
  const defaultOf = (name: string): unknown => {
    const parsed = envSchema.shape[name as keyof typeof envSchema.shape].safeParse(undefined);
    return parsed.success ? parsed.data : undefined;
  };

  it("documents every variable of the schema, each in its own name column", () => {
    const documented = new Set(rows.flatMap((r) => r.names));
    const missing = Object.keys(envSchema.shape).filter((name) => !documented.has(name));
    expect(missing).toEqual([]);
    const unknown = [...documented].filter((name) => !(name in envSchema.shape));
    expect(unknown).toEqual([]);
  });

  it("gives the schema's defaults (— only for variables without one)", () => {
    const problems: string[] = [];
    for (const row of rows) {
      if (row.defaults === "—") {
        for (const name of row.names) if (defaultOf(name) !== undefined) problems.push(`${name}: documented without a default, has ${JSON.stringify(defaultOf(name))}`);
        continue;
      }
      const values = [...row.defaults.matchAll(/`([^`]*)`/g)].map((m) => m[1]);
      // Rows listing a backticked default per variable, in order (`a`, `b` | `1`, `2`).
      if (values.length !== row.names.length) continue;
      row.names.forEach((name, i) => {
        const value = defaultOf(name);
        if (value !== undefined && values[i] !== String(value)) problems.push(`${name}: documented default ${values[i]}, schema has ${String(value)}`);
      });
    }
    expect(problems).toEqual([]);
  });
});
