import { z } from "zod";
import type { Task } from "@transporter/db";
import { FILE_NAME_PLACEHOLDERS, MAX_FILE_NAME_PATTERN_LENGTH, notificationSettingsSchema, validateFileNamePattern } from "@transporter/storage";
import { nameText } from "./routes/views.js";

/** A whole number in [min, max], with one message for every way it can be wrong. */
const wholeNumber = (min: number, max: number, message: string) => z.number().int(message).min(min, message).max(max, message);

/** The schedule fields each frequency uses; any other is refused rather than stored unused. */
const FIELDS_OF: Record<"time" | "dayOfWeek" | "everyMinutes", { frequencies: readonly string[]; message: string }> = {
  time: { frequencies: ["daily", "weekly"], message: "time is only for daily and weekly schedules" },
  dayOfWeek: { frequencies: ["weekly"], message: "dayOfWeek is only for weekly schedules" },
  everyMinutes: { frequencies: ["interval"], message: "everyMinutes is only for interval schedules" },
};

/**
 * The task contract of API.md. The schedule rules themselves live in @transporter/schedule
 * (validateSchedule: required fields, everyMinutes dividing a day); these bounds and messages
 * are its own, repeated here so every field's range is checked, and documented, with the body.
 */
export const scheduleBody = z
  .object({
    frequency: z.enum(["daily", "weekly", "interval"]),
    /** Local "HH:MM" (daily, weekly). */
    time: z.string().regex(/^([01]\d|2[0-3]):([0-5]\d)$/, `time must be "HH:MM" between 00:00 and 23:59`).nullish(),
    /** 1 = Monday … 7 = Sunday (weekly). */
    dayOfWeek: wholeNumber(1, 7, "dayOfWeek must be a whole number from 1 (Monday) to 7 (Sunday)").nullish(),
    /** Interval length in minutes (interval), dividing 1440. */
    everyMinutes: wholeNumber(15, 1440, "everyMinutes must be a whole number from 15 to 1440").nullish(),
    /** Minutes between the end of a window and its run. */
    delayMinutes: wholeNumber(0, 1440, "delayMinutes must be a whole number from 0 to 1440").nullish(),
  })
  .strict()
  .superRefine((schedule, ctx) => {
    for (const [field, { frequencies, message }] of Object.entries(FIELDS_OF)) {
      // null is "not set", as the task view shows unused fields: a schedule read back can be sent again.
      if (schedule[field as keyof typeof FIELDS_OF] != null && !frequencies.includes(schedule.frequency)) ctx.addIssue({ code: "custom", path: [field], message });
    }
  });

export const taskOptions = z
  .object({
    /** ASCII-armored OpenPGP output instead of binary. */
    armor: z.boolean(),
    /** Compress before encrypting (default on). */
    compression: z.boolean(),
    /** CSV: a UTF-8 byte-order mark so Excel detects the encoding. */
    csvBom: z.boolean(),
    /** Keep cells that look like spreadsheet formulas as they are (default: neutralised). */
    keepFormulas: z.boolean(),
    /** Deliver under YYYY/MM/DD/ subfolders. */
    dateFolders: z.boolean(),
    /** The delivered file's name before ".<format>.pgp", e.g. "conversations_{startDate}"; the default name when absent. */
    fileNamePattern: z
      .string()
      .max(MAX_FILE_NAME_PATTERN_LENGTH)
      .superRefine((pattern, ctx) => {
        for (const message of validateFileNamePattern(pattern)) ctx.addIssue({ code: "custom", message });
      })
      .describe(`Placeholders: ${Object.entries(FILE_NAME_PLACEHOLDERS).map(([k, v]) => `{${k}} ${v}`).join("; ")}`),
  })
  .partial()
  .strict();

/** The deliverer's notification settings, plus the write-only webhook signing secret. */
export const notificationsBody = notificationSettingsSchema
  .extend({
    /** Write-only: HMAC-SHA256 key for the webhook signature. */
    webhookSecret: z.string().min(16, "must be at least 16 characters").max(256).optional(),
    /** Read-only (the view's): ignored. */
    webhookSecretSet: z.unknown().optional(),
  })
  .strict();

const taskFields = {
  description: nameText,
  reportId: z.string().min(1).max(100),
  reportVersion: z.union([z.literal("latest"), z.number().int().positive()]),
  format: z.string().min(1).max(20),
  schedule: scheduleBody,
  sourceId: z.string().uuid().nullable(),
  destinationId: z.string().uuid(),
  params: z.record(z.string(), z.unknown()),
  options: taskOptions,
  notifications: notificationsBody,
  enabled: z.boolean(),
};

/**
 * Fields of the task view the server sets: accepted and ignored, so a task read back can be sent
 * again. Any other field not in the contract is refused (400), not dropped: a misspelt field
 * (`enable`, `windowstart`) would otherwise "succeed" without doing what was asked.
 */
const readOnlyFields = {
  id: z.unknown().optional().describe("read-only; ignored"),
  nextRunAt: z.unknown().optional().describe("read-only; ignored"),
  createdAt: z.unknown().optional().describe("read-only; ignored"),
  updatedAt: z.unknown().optional().describe("read-only; ignored"),
};

/** The body without the read-only fields (see readOnlyFields). */
export function writableFields<T extends Record<string, unknown>>(body: T): Omit<T, keyof typeof readOnlyFields> {
  const { id: _id, nextRunAt: _nextRunAt, createdAt: _createdAt, updatedAt: _updatedAt, ...rest } = body;
  return rest;
}

export const taskBody = z
  .object({
    ...taskFields,
    reportVersion: taskFields.reportVersion.default("latest"),
    // Required, as the task rules say: documented so, and refused by the schema when missing.
    sourceId: z.string({ error: (issue) => (issue.input == null ? "a task needs a source to read from" : undefined) }).uuid(),
    params: taskFields.params.default({}),
    options: taskFields.options.default({}),
    notifications: taskFields.notifications.optional(),
    enabled: taskFields.enabled.default(false),
    ...readOnlyFields,
  })
  .strict();
/** A create's fields or a PATCH's (whose sourceId may be null, which the task rules refuse). */
export type TaskBody = Omit<z.output<typeof taskBody>, keyof typeof readOnlyFields | "sourceId"> & { sourceId?: string | null };

// No defaults here: a PATCH changes only the fields it names.
export const taskPatchBody = z
  .object({ ...taskFields, ...readOnlyFields })
  .partial()
  .strict()
  .refine((b) => Object.keys(writableFields(b)).length > 0, "send at least one field to change");

export const taskView = z.object({
  id: z.string(), description: z.string(), reportId: z.string(), reportVersion: z.union([z.literal("latest"), z.number()]),
  format: z.string(),
  schedule: z.object({ frequency: z.string(), time: z.string().nullable(), dayOfWeek: z.number().nullable(), everyMinutes: z.number().nullable(), delayMinutes: z.number() }),
  sourceId: z.string().nullable(), destinationId: z.string(), params: z.unknown(), options: z.unknown(),
  notifications: z.object({ webhookUrl: z.string().optional(), emails: z.array(z.string()).optional(), on: z.string().optional(), emailSubject: z.string().optional(), emailMessage: z.string().optional(), webhookSecretSet: z.boolean() }),
  enabled: z.boolean(), nextRunAt: z.string().nullable(), createdAt: z.string(), updatedAt: z.string(),
});

export function toTaskView(t: Task): z.infer<typeof taskView> {
  const notifications = (t.notifications ?? {}) as { webhookUrl?: string; emails?: string[]; on?: string; emailSubject?: string; emailMessage?: string };
  return {
    id: t.id, description: t.description, reportId: t.reportId,
    reportVersion: t.reportVersion === "latest" ? "latest" : Number(t.reportVersion), format: t.format,
    schedule: { frequency: t.frequency, time: t.time, dayOfWeek: t.dayOfWeek, everyMinutes: t.everyMinutes, delayMinutes: t.delayMinutes },
    sourceId: t.sourceId, destinationId: t.destinationId, params: t.params, options: t.options,
    notifications: { ...notifications, webhookSecretSet: t.sealedWebhookSecret !== null },
    enabled: t.enabled, nextRunAt: t.nextRunAt?.toISOString() ?? null, createdAt: t.createdAt.toISOString(), updatedAt: t.updatedAt.toISOString(),
  };
}

export function scheduleOf(t: Pick<Task, "frequency" | "time" | "dayOfWeek" | "everyMinutes" | "delayMinutes">) {
  return { frequency: t.frequency, time: t.time, dayOfWeek: t.dayOfWeek, everyMinutes: t.everyMinutes, delayMinutes: t.delayMinutes };
}
