import { StorageKeyError } from "../errors.js";

const SAFE_SEGMENT = /^[A-Za-z0-9._=+@-]+$/;

/**
 * Checks that a key is a relative path of safe segments: no empty, absolute or dot-led segments
 * (so no "." or ".."; dot-led names are the stores' own temporary files), no backslashes or
 * control characters. Keys come from our own code, but a tenant-chosen file name ends up in
 * them, so a bad one must not reach outside the store's root.
 */
export function assertValidKey(key: string): string {
  if (key.length === 0) throw new StorageKeyError(key, "empty");
  if (key.length > 1024) throw new StorageKeyError(key, "longer than 1024 characters");
  for (const segment of key.split("/")) {
    if (segment === "") throw new StorageKeyError(key, "empty path segment (leading, trailing or double slash)");
    if (segment.startsWith(".")) throw new StorageKeyError(key, `segment "${segment.slice(0, 60)}" starts with a dot`);
    if (!SAFE_SEGMENT.test(segment)) throw new StorageKeyError(key, `segment "${segment.slice(0, 60)}" has characters outside [A-Za-z0-9._=+@-]`);
  }
  return key;
}

/** A prefix is a key that may end with "/" (everything below a folder). */
export function assertValidPrefix(prefix: string): string {
  assertValidKey(prefix.endsWith("/") ? prefix.slice(0, -1) : prefix);
  return prefix;
}

export type StagingStage = "raw" | "report" | "encrypted";

/** `tenants/<tenantId>/runs/<runId>/<stage>/<file>`: everything of one run shares a prefix. */
export function stagingKey(tenantId: string, runId: string, stage: StagingStage | (string & {}), file: string): string {
  return assertValidKey(`tenants/${tenantId}/runs/${runId}/${stage}/${file}`);
}

/**
 * The path of a run's staged file below its stage's folder: `name.csv`, or `2026/03/02/name.csv`
 * with date folders. The transformer decides it (with the report's name) and the later stages
 * keep it, so every delivery attempt of the run lands on the same path, whatever changed since.
 */
export function stagedPath(key: string, tenantId: string, runId: string, stage: StagingStage): string {
  const folder = `tenants/${tenantId}/runs/${runId}/${stage}/`;
  if (!key.startsWith(folder) || key.length === folder.length) throw new RangeError(`staging key "${key.slice(0, 200)}" is not a ${stage} file of run ${runId}`);
  return key.slice(folder.length);
}

/** The prefix under which all staging objects of a run live (for deletePrefix). */
export function stagingRunPrefix(tenantId: string, runId: string): string {
  return assertValidPrefix(`tenants/${tenantId}/runs/${runId}/`);
}
