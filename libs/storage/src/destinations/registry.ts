// sftp.ts (engineer F) is wired in through its `sftpAdapter` export; keep that name.
// Services build one registry at start-up:
//   const registry = createDestinationRegistry({ managedStore: createManagedStore(config), allowInsecureEndpoints: config.ALLOW_INSECURE_ENDPOINTS });
//   const adapter = registry.adapterFor(destination.kind);
//   const settings = adapter.configSchema.parse(destination.config);
//   const secrets = adapter.credentialsSchema.parse(openedCredentials ?? null);
import type { StagingStore } from "../staging/types.js";
import { createGcsAdapter } from "./gcs.js";
import { createManagedAdapter } from "./managed.js";
import { createS3Adapter } from "./s3.js";
import { createSftpAdapter } from "./sftp.js";
import type { AnyDestinationAdapter, DestinationKind } from "./types.js";
import { DESTINATION_KINDS } from "./types.js";

export interface DestinationRegistry {
  /** The adapter of a kind; parse config and credentials with its schemas before calling it. */
  adapterFor(kind: DestinationKind): AnyDestinationAdapter;
}

export function isDestinationKind(value: unknown): value is DestinationKind {
  return typeof value === "string" && (DESTINATION_KINDS as readonly string[]).includes(value);
}

/**
 * All destination kinds. Managed storage writes into the platform's own store, so the registry
 * is built with it (createManagedStore(config) in services). `allowInsecureEndpoints` is the
 * ALLOW_INSECURE_ENDPOINTS setting: false (production) refuses plain http and endpoints, hosts and
 * token URIs in this service's own network, both in the adapters' schemas and before connecting.
 */
export function createDestinationRegistry(deps: { managedStore: StagingStore; allowInsecureEndpoints: boolean }): DestinationRegistry {
  const policy = { allowInsecureEndpoints: deps.allowInsecureEndpoints };
  const adapters: Record<DestinationKind, AnyDestinationAdapter> = {
    managed: createManagedAdapter(deps.managedStore) as AnyDestinationAdapter,
    sftp: createSftpAdapter(policy) as AnyDestinationAdapter,
    s3: createS3Adapter(policy) as AnyDestinationAdapter,
    gcs: createGcsAdapter(policy) as AnyDestinationAdapter,
  };
  return {
    adapterFor(kind) {
      const adapter = adapters[kind];
      if (!adapter) throw new RangeError(`unknown destination kind "${String(kind)}"`);
      return adapter;
    },
  };
}
