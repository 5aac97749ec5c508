import { z } from "zod";
import type { Run, Task } from "@transporter/db";

export const runView = z.object({
  id: z.string(), taskId: z.string(), taskDescription: z.string(), taskDeleted: z.boolean(),
  windowStart: z.string(), windowEnd: z.string(), scheduledFor: z.string(),
  trigger: z.enum(["schedule", "manual", "retry"]), status: z.string(), retryOfId: z.string().nullable(), attempts: z.number(),
  reportId: z.string(), reportVersion: z.number().nullable(), params: z.record(z.string(), z.unknown()), format: z.string(),
  stages: z.object({
    enqueuedAt: z.string().nullable(), fetchStartedAt: z.string().nullable(), fetchFinishedAt: z.string().nullable(),
    transformStartedAt: z.string().nullable(), transformFinishedAt: z.string().nullable(), encryptStartedAt: z.string().nullable(),
    encryptFinishedAt: z.string().nullable(), deliverStartedAt: z.string().nullable(), deliveredAt: z.string().nullable(), finishedAt: z.string().nullable(),
  }),
  records: z.number().nullable(), rows: z.number().nullable(), skippedRecords: z.number().nullable(), sourceCalls: z.number().nullable(),
  bytes: z.number().nullable(), fileName: z.string().nullable(), destinationPath: z.string().nullable(), checksum: z.string().nullable(),
  keyFingerprint: z.string().nullable(), notes: z.unknown(), errorCode: z.string().nullable(), error: z.string().nullable(),
  fileExpiresAt: z.string().nullable(), fileDeletedAt: z.string().nullable(), createdAt: z.string(),
});

const iso = (d: Date | null) => d?.toISOString() ?? null;

export function toRunView(run: Run & { task: Task }): z.infer<typeof runView> {
  return {
    id: run.id, taskId: run.taskId, taskDescription: run.task.description, taskDeleted: run.task.deletedAt !== null,
    windowStart: run.windowStart.toISOString(), windowEnd: run.windowEnd.toISOString(), scheduledFor: run.scheduledFor.toISOString(),
    trigger: run.trigger, status: run.status, retryOfId: run.retryOfId, attempts: run.attempts,
    // What the run used (pinned by its stages); the task's settings only for a run not that far yet.
    reportId: run.reportId ?? run.task.reportId, reportVersion: run.reportVersion, format: run.format ?? run.task.format,
    params: ((run.params ?? run.task.params) ?? {}) as Record<string, unknown>,
    stages: {
      enqueuedAt: iso(run.enqueuedAt), fetchStartedAt: iso(run.fetchStartedAt), fetchFinishedAt: iso(run.fetchFinishedAt),
      transformStartedAt: iso(run.transformStartedAt), transformFinishedAt: iso(run.transformFinishedAt), encryptStartedAt: iso(run.encryptStartedAt),
      encryptFinishedAt: iso(run.encryptFinishedAt), deliverStartedAt: iso(run.deliverStartedAt), deliveredAt: iso(run.deliveredAt), finishedAt: iso(run.finishedAt),
    },
    records: run.records, rows: run.rows, skippedRecords: run.skippedRecords, sourceCalls: run.sourceCalls,
    bytes: run.bytes === null ? null : Number(run.bytes), fileName: run.fileName, destinationPath: run.destinationPath, checksum: run.checksum,
    keyFingerprint: run.keyFingerprint, notes: run.notes, errorCode: run.errorCode, error: run.error,
    fileExpiresAt: iso(run.fileExpiresAt), fileDeletedAt: iso(run.fileDeletedAt), createdAt: run.createdAt.toISOString(),
  };
}
