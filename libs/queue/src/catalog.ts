import { z } from "zod";

/**
 * The job catalogue is the contract between services: one entry per queue with its payload
 * schema, the stage that follows it and its worker settings. Producers validate against it;
 * handler types are inferred from it. Payloads are small — ids and staging keys, never file
 * contents (bytes live in the staging store). New fields must be optional.
 */
const runRef = z.object({
  runId: z.string().uuid(),
  tenantId: z.string().uuid(),
  /** W3C trace context of the API call or scheduler tick that created the run. */
  trace: z.record(z.string(), z.string()).default({}),
});

export const jobCatalog = {
  fetch: { payload: runRef, next: "transform", concurrencyKey: "CONCURRENCY_FETCH", lockDurationMs: 120_000 },
  transform: { payload: runRef.extend({ rawKey: z.string().min(1) }), next: "encrypt", concurrencyKey: "CONCURRENCY_TRANSFORM", lockDurationMs: 120_000 },
  encrypt: { payload: runRef.extend({ reportKey: z.string().min(1) }), next: "deliver", concurrencyKey: "CONCURRENCY_ENCRYPT", lockDurationMs: 120_000 },
  deliver: { payload: runRef.extend({ encryptedKey: z.string().min(1) }), next: "notify", concurrencyKey: "CONCURRENCY_DELIVER", lockDurationMs: 300_000 },
  notify: { payload: runRef.extend({ outcome: z.enum(["succeeded", "failed"]) }), next: null, concurrencyKey: "CONCURRENCY_NOTIFY", lockDurationMs: 60_000 },
} as const;

/** The payload fields that name a staging object (the previous stage's output). */
const STAGING_KEY_FIELDS = ["rawKey", "reportKey", "encryptedKey"] as const;

/**
 * Why a payload's staging keys are not its run's own, or null. A stage reads what the key names,
 * so a job whose data was edited (the queue dashboard, anyone with access to Redis) must not make
 * it read another run's, or another tenant's, staged data. The run's folder is
 * `tenants/<tenantId>/runs/<runId>/` (the layout of `stagingKey` in @transporter/storage).
 */
export function foreignStagingKey(payload: { runId: string; tenantId: string } & Partial<Record<(typeof STAGING_KEY_FIELDS)[number], string>>): string | null {
  const folder = `tenants/${payload.tenantId}/runs/${payload.runId}/`;
  for (const field of STAGING_KEY_FIELDS) {
    const key = payload[field];
    if (key === undefined) continue;
    if (!key.startsWith(folder) || key.split("/").some((segment) => segment === ".." || segment === ".")) return `${field} is not in run ${payload.runId}'s staging folder ${folder}`;
  }
  return null;
}

export type QueueName = keyof typeof jobCatalog;
export const QUEUE_NAMES = Object.keys(jobCatalog) as QueueName[];
/** The pipeline stages that move a run's data, in order. */
export const STAGES = ["fetch", "transform", "encrypt", "deliver"] as const;
export type Stage = (typeof STAGES)[number];

export type JobPayload<Q extends QueueName> = z.output<(typeof jobCatalog)[Q]["payload"]>;
export type JobInput<Q extends QueueName> = z.input<(typeof jobCatalog)[Q]["payload"]>;

/**
 * Deterministic job id from the domain key: one job per run and stage, so a second enqueue
 * of the same stage (reconciler, retry of a crashed producer) is a no-op. BullMQ refuses ":"
 * in custom ids, hence "-".
 */
export function jobIdFor(queue: QueueName, runId: string): string {
  return `${runId}-${queue}`;
}
