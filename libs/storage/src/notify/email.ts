import { parse as parseLegacyUrl } from "node:url";
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
  /** Limits on a relay that does not answer (defaults: DEFAULT_SMTP_TIMEOUTS). */
  timeouts?: Partial<SmtpTimeouts>;
}

export interface SmtpTimeouts {
  /** To open the connection. */
  connectionMs: number;
  /** For the relay's greeting once connected. */
  greetingMs: number;
  /** Of silence from the relay at any later point (nodemailer's own default is 10 minutes). */
  socketMs: number;
}

/**
 * A hung relay must not hold a notification job (and, at CONCURRENCY_NOTIFY of them, every
 * notification) for nodemailer's 2-minute connect and 10-minute silence defaults: the send fails
 * as temporary and is tried again. SMTP_URL's own `?socketTimeout=` (ms, and the others by their
 * nodemailer names) overrides these.
 */
export const DEFAULT_SMTP_TIMEOUTS: SmtpTimeouts = { connectionMs: 30_000, greetingMs: 30_000, socketMs: 60_000 };

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

/**
 * The SMTP URL with the timeouts it does not set itself as query parameters, which nodemailer
 * reads as transport options (given beside a URL, its options are dropped). Appended to the
 * text as given, so the credentials in it reach nodemailer exactly as written.
 */
function withTimeouts(smtpUrl: string, timeouts: SmtpTimeouts): string {
  // Read as nodemailer reads it (the legacy parser), and never thrown on: a URL it cannot read
  // fails each send as nodemailer fails it, without the URL (and its password) in an error.
  let given: Record<string, unknown> = {};
  try {
    given = parseLegacyUrl(smtpUrl, true).query;
  } catch {
    return smtpUrl;
  }
  const added = Object.entries({ connectionTimeout: timeouts.connectionMs, greetingTimeout: timeouts.greetingMs, socketTimeout: timeouts.socketMs })
    .filter(([name]) => !Object.hasOwn(given, name))
    .map(([name, ms]) => `${name}=${Math.round(ms)}`);
  if (added.length === 0) return smtpUrl;
  const hash = smtpUrl.indexOf("#");
  const [base, fragment] = hash < 0 ? [smtpUrl, ""] : [smtpUrl.slice(0, hash), smtpUrl.slice(hash)];
  return `${base}${base.includes("?") ? (base.endsWith("?") || base.endsWith("&") ? "" : "&") : "?"}${added.join("&")}${fragment}`;
}

export function createMailer(options: MailerOptions): Mailer {
  const transport = nodemailer.createTransport(withTimeouts(options.smtpUrl, { ...DEFAULT_SMTP_TIMEOUTS, ...options.timeouts }));
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
