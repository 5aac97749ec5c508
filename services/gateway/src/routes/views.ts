import { z } from "zod";
import type { ApiKey, Tenant } from "@transporter/db";

/**
 * A display name or description: trimmed, 1 to 200 characters, no control characters (PostgreSQL
 * text cannot hold NUL, and a line break in a name breaks e-mail subjects and file listings).
 */
export const nameText = z
  .string()
  .trim()
  .min(1)
  .max(200)
  .refine((value) => ![...value].some((ch) => ch.charCodeAt(0) < 0x20 || ch.charCodeAt(0) === 0x7f), "must not contain control characters (line breaks, tabs, NUL)");


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

export const timezoneField = z.string().min(1).max(64).refine(isKnownTimeZone, "must be an IANA time zone name such as Europe/London");
