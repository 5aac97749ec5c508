/**
 * Whether a link the platform gave (a Data Access file's `@href`) may be followed with the
 * account's signed requests: on the base URL's own origin, or, for a named host, on a sibling
 * host of the same platform domain with the same scheme and port. The Data Access API lists its
 * files on a host other than the one it is asked on (asked on `va.da.liveperson.net`, files on
 * `va-a.da.liveperson.net`); anything further afield would carry the account's OAuth signature
 * to a host that is not the platform's.
 */
export function onPlatformHost(href: string, base: string): boolean {
  let link: URL;
  let from: URL;
  try {
    link = new URL(href);
    from = new URL(base);
  } catch {
    return false;
  }
  if (link.origin === from.origin) return true;
  if (link.protocol !== from.protocol || link.port !== from.port || link.username || link.password) return false;
  const labels = from.hostname.split(".");
  // An address, or a host too close to the top of the name tree to have platform siblings.
  if (/^[\d.]+$/.test(from.hostname) || from.hostname.includes(":") || labels.length < 4) return false;
  const parent = labels.slice(1).join(".");
  return link.hostname.endsWith(`.${parent}`) && link.hostname.split(".").length === labels.length;
}
