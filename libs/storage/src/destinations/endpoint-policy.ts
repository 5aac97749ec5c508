import type { LookupAddress } from "node:dns";
import type { z } from "zod";
import { DestinationError } from "../errors.js";
import { endpointUrlProblem, hostProblem, InternalAddressError, resolvePublicAddresses } from "../network/public-address.js";

/**
 * Which endpoints destination adapters may reach. Production refuses plain http and anything in
 * this service's own network (a tenant could otherwise port-scan it through verification and
 * read the answer from the classified error); tests, the demo and the simulator set
 * ALLOW_INSECURE_ENDPOINTS to talk to loopback servers.
 */
export interface EndpointPolicy {
  allowInsecureEndpoints: boolean;
}

export const SECURE_ENDPOINTS: EndpointPolicy = { allowInsecureEndpoints: false };

/** A destination refused because its endpoint is not allowed; `field` names the setting ("config.endpoint"). */
export class BlockedEndpointError extends DestinationError {
  constructor(
    readonly field: string,
    message: string,
  ) {
    // Retrying cannot fix it: the tenant has to point the destination elsewhere.
    super("connect", message, { permanent: true });
  }
}

/**
 * `schema` with one more rule under the secure policy: the setting at `path` must be allowed
 * (`problemOf` names what is wrong with it, or gives null). Under ALLOW_INSECURE_ENDPOINTS, `schema` itself.
 */
export function refusingBlockedEndpoints<T>(schema: z.ZodType<T>, policy: EndpointPolicy, path: string[], problemOf: (value: T) => string | null): z.ZodType<T> {
  if (policy.allowInsecureEndpoints) return schema;
  return schema.superRefine((value, ctx) => {
    const problem = problemOf(value);
    if (problem) ctx.addIssue({ code: "custom", path, message: problem });
  });
}

/** The problem with an endpoint URL setting under a policy, or null (for zod refinements and checks before use). */
export function endpointSettingProblem(value: string | undefined, policy: EndpointPolicy): string | null {
  if (value === undefined) return null;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return "not a URL";
  }
  return endpointUrlProblem(url, { allowInsecure: policy.allowInsecureEndpoints });
}

/** The problem with a bare host setting (SFTP) under a policy, or null. */
export function hostSettingProblem(host: string, policy: EndpointPolicy): string | null {
  return policy.allowInsecureEndpoints ? null : hostProblem(host);
}

/** Throws a BlockedEndpointError when an endpoint URL setting is not allowed (checked again right before use). */
export function assertEndpointSetting(field: string, value: string | undefined, policy: EndpointPolicy): void {
  const problem = endpointSettingProblem(value, policy);
  if (problem) throw new BlockedEndpointError(field, `${field} ${problem}`);
}

/**
 * Resolves `host` and refuses it when any address is internal (unless the policy allows it).
 * Returns the checked addresses (empty when the policy allows anything and nothing was looked
 * up), so a caller that can connect to an address connects to one checked here. A name that
 * cannot be resolved becomes a `dns` error.
 */
export async function assertPublicHost(field: string, host: string, policy: EndpointPolicy): Promise<LookupAddress[]> {
  if (policy.allowInsecureEndpoints) return [];
  try {
    return await resolvePublicAddresses(host);
  } catch (error) {
    if (error instanceof InternalAddressError) {
      throw new BlockedEndpointError(field, `${field}: ${error.message}; destinations must be reachable on the public internet`);
    }
    const code = (error as { code?: string }).code ?? "lookup failed";
    throw new DestinationError("dns", `${field}: the host name "${host}" cannot be resolved (${code})`, { cause: code });
  }
}

/** Same, for the host of an endpoint URL setting; nothing to do when it is unset (the provider's own endpoint). */
export async function assertPublicEndpoint(field: string, value: string | undefined, policy: EndpointPolicy): Promise<void> {
  assertEndpointSetting(field, value, policy);
  if (value === undefined) return;
  await assertPublicHost(field, new URL(value).hostname, policy);
}
