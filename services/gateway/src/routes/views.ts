import { z } from "zod";
import type { ApiKey, Tenant } from "@transporter/db";

/**
 * Characters a name or description must not hold: control characters (C0, DEL and C1: NUL cannot
 * be stored, a line break breaks e-mail subjects and file listings, U+009B starts a terminal
 * escape), line and paragraph separators, and the bidi embeddings, overrides and isolates that
 * make text display in another order than it reads ("\u202Egpj.exe").
 */
const FORBIDDEN_IN_NAMES = /[\p{Cc}\p{Zl}\p{Zp}\u202A-\u202E\u2066-\u2069]/u;
/**
 * A character that shows: not white space, a format character (zero-width space, joiners, marks)
 * or one of the code points Unicode says are ignored in display (U+3164 HANGUL FILLER…).
 */
const VISIBLE = /[^\p{White_Space}\p{Cf}\p{Cc}\p{Z}\p{Default_Ignorable_Code_Point}]/u;

/**
 * A display name or description: trimmed, 1 to 200 characters with at least one that shows, no
 * control characters, line separators or bidi overrides (see FORBIDDEN_IN_NAMES). Joiners inside
 * text stay allowed ("ops 👩‍💻").
 */
export const nameText = z
  .string()
  .trim()
  .min(1)
  .max(200)
  .refine((value) => !FORBIDDEN_IN_NAMES.test(value), "must not contain control characters, line or paragraph separators, or bidi overrides (line breaks, tabs, NUL, U+2028, U+202E…)")
  .refine((value) => value === "" || VISIBLE.test(value), "must contain at least one visible character");

/** API views: what a response may contain. Rows never leave the gateway as they are. */
export const idParams = z.object({ id: z.string().uuid("must be a UUID") });

export const tenantView = z.object({
  id: z.string(), name: z.string(), accountId: z.string(), timezone: z.string().nullable(),
  taskLimit: z.number().int(), disabled: z.boolean(), createdAt: z.string(), updatedAt: z.string(),
});
export const toTenantView = (t: Tenant): z.infer<typeof tenantView> => ({
  id: t.id, name: t.name, accountId: t.accountId, timezone: t.timezone, taskLimit: t.taskLimit,
  disabled: t.disabled, createdAt: t.createdAt.toISOString(), updatedAt: t.updatedAt.toISOString(),
});

export const apiKeyView = z.object({
  id: z.string(), name: z.string(), role: z.enum(["operator", "admin", "viewer"]), prefix: z.string(),
  createdAt: z.string(), lastUsedAt: z.string().nullable(), revokedAt: z.string().nullable(),
});
export const toApiKeyView = (k: ApiKey): z.infer<typeof apiKeyView> => ({
  id: k.id, name: k.name, role: k.role, prefix: k.prefix, createdAt: k.createdAt.toISOString(),
  lastUsedAt: k.lastUsedAt?.toISOString() ?? null, revokedAt: k.revokedAt?.toISOString() ?? null,
});

/** IANA zone names the runtime knows (Intl throws RangeError for unknown ones). */
export function isKnownTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: zone });
    return zone.length > 0 && !/^[+-]/.test(zone);
  } catch {
    return false;
  }
}

/**
 * A known zone as it is stored: in its proper case ("europe/paris" → "Europe/Paris"), the runtime's
 * canonical spelling, so a change of case alone is no change. A link (US/Pacific, Asia/Kolkata)
 * keeps the name it was given: Node's ICU resolves some current names to older ones (Asia/Kolkata
 * to Asia/Calcutta, Asia/Kathmandu to Asia/Katmandu), which would answer with a name the caller
 * did not choose. Either way the schedule rules and luxon read it as the same zone.
 */
export function canonicalTimeZone(zone: string): string {
  const resolved = new Intl.DateTimeFormat("en-US", { timeZone: zone }).resolvedOptions().timeZone;
  return resolved.toLowerCase() === zone.toLowerCase() ? resolved : zone;
}

export const timezoneField = z.string().min(1).max(64).refine(isKnownTimeZone, "must be an IANA time zone name such as Europe/London").transform(canonicalTimeZone);
