import type { Config } from "@transporter/config";
import type { Keyring } from "@transporter/crypto";
import type { Db } from "@transporter/db";
import type { JobProducer, Redis } from "@transporter/queue";
import type { DestinationRegistry, StagingStore } from "@transporter/storage";
import type { Logger } from "@transporter/telemetry";

/** Everything the gateway talks to, built once by `start()` (or by a test). */
export interface GatewayDeps {
  config: Config;
  prisma: Db;
  redis: Redis;
  keyring: Keyring;
  queues: JobProducer;
  logger?: Logger;
  /** Managed storage (the platform's blob store) for downloads. */
  managedStore?: StagingStore;
  /** Destination adapters; built from config when absent. */
  destinations?: DestinationRegistry;
  /** Injectable clock (tests of schedules and retention). */
  now?: () => Date;
  /** Optional collaborators provided by other packages, wired in `start()`. */
  [extra: string]: unknown;
}
