import { createHash } from "node:crypto";
import type { Config } from "@transporter/config";
import { unseal } from "@transporter/crypto";
import type { Keyring } from "@transporter/crypto";
import { notificationAlertKey, raiseAlert, resolveAlert, settleOwedNotification } from "@transporter/db";
import type { Db, Run, Task } from "@transporter/db";
import type { JobPayload } from "@transporter/queue";
import { EmailError, notificationSettingsSchema, sendWebhook, shouldNotify } from "@transporter/storage";
import type { Mailer, RunSummary } from "@transporter/storage";
import type { Logger } from "@transporter/telemetry";

/** Tries of an email the relay refuses for now (a 4xx, greylisting) or cannot be reached for. */
const EMAIL_ATTEMPTS = 3;

/** Sends, trying again after `backoffMs`, then 2×… while the failure is temporary (not a 5xx). */
async function withEmailRetries<T>(send: () => Promise<T>, attempts: number, backoffMs: number): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await send();
    } catch (error) {
      if (attempt >= attempts || !(error instanceof EmailError) || error.permanent) throw error;
      await new Promise((resolve) => setTimeout(resolve, backoffMs * 2 ** (attempt - 1)));
    }
  }
}

export interface NotifyDeps {
  config: Pick<Config, "ALLOW_INSECURE_ENDPOINTS" | "JOB_BACKOFF_MS">;
  prisma: Db;
  keyring: Keyring;
  /** Absent when no SMTP relay is configured: email notifications are then skipped with a warning. */
  mailer?: Mailer;
  logger: Logger;
  webhookAttempts?: number;
  /** Tries of an email refused for now (default 3). */
  emailAttempts?: number;
}

/** The sealing context of a task's webhook secret. */
export function webhookSecretContext(tenantId: string, taskId: string): string {
  return `tenant:${tenantId}/task:${taskId}/webhook`;
}

/** The gateway seals the secret with sealJson (a JSON string); a plainly sealed one opens too. */
function openWebhookSecret(sealed: string, keyring: Keyring, run: Pick<Run, "tenantId" | "taskId">): string {
  const opened = unseal(sealed, keyring, webhookSecretContext(run.tenantId, run.taskId));
  if (opened.startsWith('"')) {
    try {
      const parsed: unknown = JSON.parse(opened);
      if (typeof parsed === "string") return parsed;
    } catch {
      // Not JSON: the secret itself starts with a quote.
    }
  }
  return opened;
}

export function runSummary(run: Run, task: Task): RunSummary {
  return {
    tenantId: run.tenantId,
    taskId: run.taskId,
    task: task.description,
    runId: run.id,
    status: run.status,
    trigger: run.trigger,
    windowStart: run.windowStart.toISOString(),
    windowEnd: run.windowEnd.toISOString(),
    fileName: run.fileName,
    destinationPath: run.destinationPath,
    bytes: run.bytes === null ? null : Number(run.bytes),
    checksum: run.checksum,
    records: run.records,
    error: run.error === null ? null : { code: run.errorCode, message: run.error },
    notes: Array.isArray(run.notes) ? (run.notes as string[]) : [],
    finishedAt: run.finishedAt?.toISOString() ?? null,
  };
}

/**
 * The webhook delivery id of a run's notification: a name-based UUID (version 5 layout) of the
 * run and the time the notification became owed, so the same notification sent again (its job
 * run again after a crash before the bookkeeping) carries the same id, and the receiver can drop
 * the repeat. A later notification of the run (after a retry finished it again) gets another.
 */
export function notificationDeliveryId(runId: string, dueAt: Date): string {
  const bytes = createHash("sha256").update(`transporter:notification:${runId}:${dueAt.toISOString()}`).digest().subarray(0, 16);
  bytes[6] = (bytes[6]! & 0x0f) | 0x50;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = bytes.toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export interface NotifyOutcome {
  webhook: "sent" | "failed" | "skipped";
  email: "sent" | "failed" | "skipped";
}

/**
 * Sends a finished run's notifications as its task asks (webhook and/or email). A failed
 * notification never changes the run: it raises an alert for the task instead (resolved by the
 * next one that goes through), and the job completes so nothing already sent is sent twice.
 */
export function createNotifyHandler(deps: NotifyDeps) {
  return async function notifyRun(payload: JobPayload<"notify">): Promise<NotifyOutcome> {
    const outcome: NotifyOutcome = { webhook: "skipped", email: "skipped" };
    const run = await deps.prisma.run.findFirst({ where: { id: payload.runId, tenantId: payload.tenantId }, include: { task: true } });
    if (!run) return outcome;
    const logger = deps.logger.child({ runId: run.id, tenantId: run.tenantId, taskId: run.taskId });
    const dueAt = run.notificationDueAt;
    if (!dueAt) {
      // Handled already: a duplicate job (queued again after the first one was removed) sends nothing twice.
      logger.info("the run's notification was handled already; nothing sent");
      return outcome;
    }
    await sendAsTaskAsks(run, dueAt, logger, outcome);
    // Bookkeeping only: when it fails, the job still completes (a retry would send again) and the
    // reconciler, finding the notify job completed, clears the mark.
    try {
      await settleOwedNotification(deps.prisma, run.id, dueAt);
    } catch (error) {
      logger.warn({ err: { message: error instanceof Error ? error.message : String(error) } }, "the notification was handled but could not be marked so");
    }
    return outcome;
  };

  async function sendAsTaskAsks(run: Run & { task: Task }, dueAt: Date, logger: Logger, outcome: NotifyOutcome): Promise<void> {
    const parsed = notificationSettingsSchema.safeParse(run.task.notifications ?? {});
    if (!parsed.success) {
      logger.warn("task notification settings are unreadable; nothing sent");
      return;
    }
    const settings = parsed.data;
    if (!shouldNotify(settings, run.status)) return;
    const summary = runSummary(run, run.task);

    const problem = async (channel: "webhook" | "email", message: string | undefined) => {
      const dedupeKey = notificationAlertKey(channel, run.taskId);
      if (message === undefined) {
        await resolveAlert(deps.prisma, run.tenantId, dedupeKey);
        return;
      }
      // None for a deleted task, whose last runs still notify (see raiseAlert).
      await raiseAlert(deps.prisma, {
        tenantId: run.tenantId,
        kind: `notification.${channel}`,
        severity: "warning",
        title: `The ${channel} notification of task "${run.task.description}" failed`,
        message,
        dedupeKey,
        taskId: run.taskId,
        runId: run.id,
      });
    };

    /**
     * The channel's alert follows its outcome. Bookkeeping only: its failure (the database out
     * for a moment) is logged, never taken for the send's failure, and never fails the job, whose
     * retry would send the notification a second time.
     */
    const recordOutcome = async (channel: "webhook" | "email", failure: string | undefined) => {
      try {
        await problem(channel, failure);
      } catch (error) {
        logger.warn({ err: { message: error instanceof Error ? error.message : String(error) }, channel }, "the notification's alert could not be updated");
      }
    };

    if (settings.webhookUrl) {
      let failure: string | undefined;
      try {
        const secret = run.task.sealedWebhookSecret ? openWebhookSecret(run.task.sealedWebhookSecret, deps.keyring, run) : undefined;
        const sent = await sendWebhook(summary, {
          url: settings.webhookUrl,
          deliveryId: notificationDeliveryId(run.id, dueAt),
          ...(secret !== undefined ? { secret } : {}),
          allowInsecure: deps.config.ALLOW_INSECURE_ENDPOINTS,
          attempts: deps.webhookAttempts ?? 5,
          backoffMs: deps.config.JOB_BACKOFF_MS,
        });
        outcome.webhook = "sent";
        logger.info({ status: sent.status, attempts: sent.attempts }, "webhook notification sent");
      } catch (error) {
        outcome.webhook = "failed";
        failure = error instanceof Error ? error.message : "unknown error";
        logger.warn({ err: { message: failure } }, "webhook notification failed");
      }
      await recordOutcome("webhook", failure);
    }

    if (settings.emails?.length) {
      if (!deps.mailer) {
        logger.warn("email notification skipped: no SMTP relay configured (SMTP_URL)");
      } else {
        let failure: string | undefined;
        const mailer = deps.mailer;
        const send = () =>
          mailer.sendRunEmail(summary, {
            to: settings.emails!,
            ...(settings.emailSubject ? { subjectTemplate: settings.emailSubject } : {}),
            ...(settings.emailMessage ? { messageTemplate: settings.emailMessage } : {}),
          });
        try {
          const sent = await withEmailRetries(send, deps.emailAttempts ?? EMAIL_ATTEMPTS, deps.config.JOB_BACKOFF_MS);
          outcome.email = "sent";
          // The relay took the message for some recipients and refused the others (5xx for them):
          // those get nothing, every time, so it is the channel's failure to report.
          if (sent.rejected.length > 0) failure = `${sent.rejected.length} of ${settings.emails.length} recipient(s) refused by the SMTP relay`;
        } catch (error) {
          outcome.email = "failed";
          failure = error instanceof Error ? error.message : "unknown error";
          logger.warn({ err: { message: failure } }, "email notification failed");
        }
        await recordOutcome("email", failure);
      }
    }
  }
}
