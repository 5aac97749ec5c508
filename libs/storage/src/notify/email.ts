import nodemailer from "nodemailer";
import { DEFAULT_EMAIL_MESSAGE, DEFAULT_EMAIL_SUBJECT } from "./settings.js";
import { summaryValues } from "./summary.js";
import type { RunSummary } from "./summary.js";
import { renderTemplate } from "./template.js";

export interface MailerOptions {
  /** smtp:// or smtps:// URL, credentials included when the relay needs them. */
  smtpUrl: string;
  /** Sender, e.g. "Transporter <no-reply@example.com>". */
  from: string;
}

export interface RunEmail {
  to: string[];
  subjectTemplate?: string;
  messageTemplate?: string;
}

export interface SentEmail {
  messageId: string;
  accepted: string[];
  rejected: string[];
}

/** A notification email that was not accepted; `permanent` when the relay refused it (5xx). */
export class EmailError extends Error {
  override readonly name = "EmailError";
  readonly code = "email_failed";

  constructor(
    message: string,
    readonly permanent: boolean,
  ) {
    super(message);
  }
}

export interface Mailer {
  sendRunEmail(summary: RunSummary, email: RunEmail): Promise<SentEmail>;
  close(): void;
}

/**
 * What breaks a subject line: control characters (C0, DEL, C1 such as U+0085 NEXT LINE and U+009B
 * CSI) and line or paragraph separators, each run replaced by a space.
 */
const SUBJECT_BREAKS = /[\p{Cc}\p{Zl}\p{Zp}]+/gu;
/** Bidi embeddings, overrides and isolates: they make a subject display in another order than it reads. */
const BIDI_CONTROLS = /[\u202A-\u202E\u2066-\u2069]/g;

/** Renders subject and message from their templates; the subject is kept on one line and reads as written. */
export function renderRunEmail(summary: RunSummary, email: Pick<RunEmail, "subjectTemplate" | "messageTemplate">) {
  const values = summaryValues(summary);
  return {
    subject: renderTemplate(email.subjectTemplate ?? DEFAULT_EMAIL_SUBJECT, values)
      .replace(SUBJECT_BREAKS, " ")
      .replace(BIDI_CONTROLS, "")
      .trim(),
    text: renderTemplate(email.messageTemplate ?? DEFAULT_EMAIL_MESSAGE, values),
  };
}

export function createMailer(options: MailerOptions): Mailer {
  const transport = nodemailer.createTransport(options.smtpUrl);
  return {
    async sendRunEmail(summary, email) {
      const { subject, text } = renderRunEmail(summary, email);
      try {
        const info = await transport.sendMail({ from: options.from, to: email.to, subject, text });
        return {
          messageId: info.messageId,
          accepted: info.accepted.map(String),
          rejected: info.rejected.map(String),
        };
      } catch (error) {
        const responseCode = (error as { responseCode?: unknown }).responseCode;
        const permanent = typeof responseCode === "number" && responseCode >= 500;
        // nodemailer's message can quote the SMTP URL's credentials; report the server's code only.
        const code = (error as { code?: unknown }).code;
        throw new EmailError(
          `email to ${email.to.length} recipient(s) failed: ${typeof responseCode === "number" ? `SMTP ${responseCode}` : typeof code === "string" ? code : "unknown error"}`,
          permanent,
        );
      }
    },
    close() {
      transport.close();
    },
  };
}
