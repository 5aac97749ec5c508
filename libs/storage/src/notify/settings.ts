import { z } from "zod";
import { hasUserInfo } from "../network/endpoint-url.js";
import { unknownPlaceholders } from "./template.js";

const template = (max: number) =>
  z
    .string()
    .min(1)
    .max(max)
    .refine((value) => unknownPlaceholders(value).length === 0, {
      message: "uses a placeholder that does not exist (see TEMPLATE_PLACEHOLDERS)",
    });

/** The longest webhook URL a task may keep (the length browsers and most servers accept). */
export const MAX_WEBHOOK_URL_LENGTH = 2048;

/**
 * A task's notification settings (`Task.notifications`); the webhook secret is kept apart,
 * sealed in `Task.sealedWebhookSecret`.
 */
export const notificationSettingsSchema = z.object({
  // Settings are shown to every key of the account and written to audit events: a password
  // belongs in `webhookSecret` (sealed, write-only), never in the URL.
  webhookUrl: z
    .string()
    // Kept with the task, returned by every read and copied into audit events.
    .max(MAX_WEBHOOK_URL_LENGTH, `at most ${MAX_WEBHOOK_URL_LENGTH} characters`)
    .url()
    .refine((value) => !hasUserInfo(value), { message: "must not carry a user name or password; use webhookSecret to sign requests" })
    .optional(),
  emails: z.array(z.string().email()).max(20).optional(),
  /** "failure": only when a run fails; "always": after every finished run. */
  on: z.enum(["failure", "always"]).default("failure"),
  emailSubject: template(200).optional(),
  emailMessage: template(10_000).optional(),
});
export type NotificationSettings = z.output<typeof notificationSettingsSchema>;

export const DEFAULT_EMAIL_SUBJECT = "[Transporter] {{task}}: {{status}}";
export const DEFAULT_EMAIL_MESSAGE = [
  "Task: {{task}}",
  "Status: {{status}}",
  "Data window: {{window}}",
  "File: {{file}}",
  "Delivered to: {{path}}",
  "Error: {{error}}",
  "",
  "Run {{runId}}",
].join("\n");

/** Whether a run that ended with `status` gets notifications under these settings. */
export function shouldNotify(settings: NotificationSettings, status: string): boolean {
  if (!settings.webhookUrl && !settings.emails?.length) return false;
  return settings.on === "always" || status === "FAILED";
}
