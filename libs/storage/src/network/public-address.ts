import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from "node:dns";
import { lookup as dnsLookupAsync } from "node:dns/promises";
import { BlockList, isIP } from "node:net";

/**
 * Where a tenant-chosen address may not point: this service's own network. Webhooks and
 * destinations make our servers connect to an address a tenant chose, so without this a tenant
 * could reach the database, the cloud's metadata service or any internal port, and read what
 * answered from the error we return. Loopback, private (RFC 1918, unique-local), link-local,
 * shared (CGNAT), unspecified, multicast and reserved ranges; IPv4-mapped and NAT64 IPv6 forms included.
 */
const INTERNAL = new BlockList();
for (const [network, prefix] of [
  ["0.0.0.0", 8], ["10.0.0.0", 8], ["100.64.0.0", 10], ["127.0.0.0", 8], ["169.254.0.0", 16], ["172.16.0.0", 12],
  ["192.0.0.0", 24], ["192.168.0.0", 16], ["198.18.0.0", 15], ["224.0.0.0", 4], ["240.0.0.0", 4],
] as const) {
  INTERNAL.addSubnet(network, prefix, "ipv4");
}
for (const [network, prefix] of [
  // IPv4-mapped addresses (::ffff:a.b.c.d) need no rule: BlockList checks them against the IPv4 ones.
  ["::", 127], ["64:ff9b::", 96], ["fc00::", 7], ["fe80::", 10], ["ff00::", 8],
] as const) {
  INTERNAL.addSubnet(network, prefix, "ipv6");
}

/** True for an IP address outside every internal range above. */
export function isPublicAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return false;
  return !INTERNAL.check(address, family === 4 ? "ipv4" : "ipv6");
}

export const OWN_NETWORK = "may not point at this service's own network";

/**
 * The problem with a host as written (before any lookup), or null: "localhost" names and IP
 * literals inside this service's network. Names are checked again when resolved.
 */
export function hostProblem(hostname: string): string | null {
  const host = hostname.replace(/^\[(.*)\]$/, "$1").replace(/\.$/, "").toLowerCase();
  if (host === "localhost" || host.endsWith(".localhost")) return OWN_NETWORK;
  if (isIP(host) !== 0 && !isPublicAddress(host)) return OWN_NETWORK;
  return null;
}

/**
 * The problem with a URL our servers will call (a webhook, a storage or token endpoint), or
 * null: https only, outside this service's own network, unless insecure endpoints are allowed
 * (tests, demo, simulator).
 */
export function endpointUrlProblem(url: URL, options: { allowInsecure: boolean }): string | null {
  if (url.protocol !== "https:" && !(url.protocol === "http:" && options.allowInsecure)) return "must use https";
  if (options.allowInsecure) return null;
  return hostProblem(url.hostname);
}

/** The error a connection gets when its host name resolves to an internal address. */
export class InternalAddressError extends Error {
  override readonly name = "InternalAddressError";
  readonly code = "ERR_INTERNAL_ADDRESS";
}

type LookupCallback = (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/** `addresses` when there is at least one and every one is public; the error saying where `host` points otherwise. */
function publicAddressesOf(host: string, addresses: LookupAddress[]): LookupAddress[] | InternalAddressError {
  const internal = addresses.find((a) => !isPublicAddress(a.address));
  if (!internal && addresses.length > 0) return addresses;
  return new InternalAddressError(`${host} resolves to ${internal?.address ?? "no public address"}, inside this service's own network`);
}

/**
 * A `lookup` for http(s).request / agents that resolves as usual but refuses a name with any
 * internal address. The connection then goes to the address checked here, so a name that
 * resolves publicly once and internally the next time (DNS rebinding) cannot slip through.
 */
export function publicOnlyLookup(hostname: string, options: LookupOptions, callback: LookupCallback): void {
  dnsLookup(hostname, { ...options, all: true }, (error, addresses) => {
    if (error) return callback(error, []);
    const checked = publicAddressesOf(hostname, addresses);
    if (checked instanceof InternalAddressError) return callback(checked, []);
    if (options.all) return callback(null, checked);
    const first = checked[0]!;
    callback(null, first.address, first.family);
  });
}

/**
 * Resolves a host (an IP literal stands for itself) and returns its addresses when every one is
 * public; throws InternalAddressError otherwise, or the resolver's own error (ENOTFOUND…).
 */
export async function resolvePublicAddresses(hostname: string): Promise<LookupAddress[]> {
  const host = hostname.replace(/^\[(.*)\]$/, "$1");
  const family = isIP(host);
  const checked = publicAddressesOf(host, family !== 0 ? [{ address: host, family }] : await dnsLookupAsync(host, { all: true, verbatim: true }));
  if (checked instanceof InternalAddressError) throw checked;
  if (family === 0 && hostProblem(host) !== null) throw new InternalAddressError(`${host} resolves to no public address, inside this service's own network`);
  return checked;
}
