import { endpointUrlProblem } from "../network/public-address.js";

// The guard is shared with destinations (libs/storage/src/network); webhooks keep their names.
export { InternalAddressError, isPublicAddress, publicOnlyLookup } from "../network/public-address.js";

/** The problem with a webhook URL's scheme or host, or null. Checked on save and before each send. */
export function webhookUrlProblem(url: URL, options: { allowInsecure: boolean }): string | null {
  return endpointUrlProblem(url, options);
}
