import { randomUUID } from "node:crypto";
import { createServer, type AddressInfo } from "node:net";
import { SMTPServer } from "smtp-server";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createMailer, EmailError, notificationSettingsSchema, renderRunEmail, renderTemplate, shouldNotify, unknownPlaceholders } from "../src/notify/index.js";
import type { Mailer, RunSummary } from "../src/notify/index.js";

interface Received {
  from: string;
  to: string[];
  raw: string;
}

/** Undoes quoted-printable soft breaks and escapes so the assertions read the text as sent. */
function decoded(raw: string): string {
  const bytes = raw.replace(/=\r\n/g, "").replace(/=([0-9A-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
  return Buffer.from(bytes, "latin1").toString("utf8");
}

function failedRun(): RunSummary {
  return {
    tenantId: randomUUID(),
    taskId: randomUUID(),
    task: "Weekly agents",
    runId: randomUUID(),
    status: "FAILED",
    trigger: "schedule",
    windowStart: "2026-11-16T00:00:00.000Z",
    windowEnd: "2026-11-23T00:00:00.000Z",
    fileName: "weekly-agents_2026-11-16_2026-11-23.csv.pgp",
    destinationPath: null,
    bytes: null,
    checksum: null,
    records: 10,
    error: { code: "auth", message: "sftp.example.com:22 rejected the credentials of user \"acme\"" },
    notes: [],
    finishedAt: "2026-11-23T06:00:00.000Z",
  };
}

describe("email notifications against a loopback SMTP server", () => {
  let smtp: SMTPServer;
  let port: number;
  let received: Received[] = [];
  let mailer: Mailer;
  let rejectRecipients = false;

  beforeAll(async () => {
    smtp = new SMTPServer({
      authOptional: true,
      disabledCommands: ["STARTTLS"],
      logger: false,
      onRcptTo(address, _session, callback) {
        if (rejectRecipients) {
          const error = Object.assign(new Error("mailbox unavailable"), { responseCode: 550 });
          callback(error);
          return;
        }
        callback();
      },
      onData(stream, session, callback) {
        const chunks: Buffer[] = [];
        stream.on("data", (chunk: Buffer) => chunks.push(chunk));
        stream.on("end", () => {
          received.push({
            from: session.envelope.mailFrom ? session.envelope.mailFrom.address : "",
            to: session.envelope.rcptTo.map((r) => r.address),
            raw: Buffer.concat(chunks).toString("utf8"),
          });
          callback();
        });
      },
    });
    await new Promise<void>((resolve) => smtp.listen(0, "127.0.0.1", resolve));
    port = (smtp.server.address() as AddressInfo).port;
    mailer = createMailer({ smtpUrl: `smtp://127.0.0.1:${port}`, from: "Transporter <no-reply@transporter.test>" });
  });

  afterAll(async () => {
    mailer.close();
    await new Promise<void>((resolve) => smtp.close(() => resolve()));
  });

  beforeEach(() => {
    received = [];
    rejectRecipients = false;
  });

  it("sends the rendered subject and message to every address", async () => {
    const run = failedRun();
    const sent = await mailer.sendRunEmail(run, {
      to: ["ops@acme.test", "data@acme.test"],
      subjectTemplate: "{{task}} {{status}} for {{windowStart}}",
      messageTemplate: "Task {{task}} ended {{status}}.\nWindow: {{window}}\nFile: {{file}}\nError: {{error}}\n",
    });
    expect(sent.accepted.sort()).toEqual(["data@acme.test", "ops@acme.test"]);
    expect(received).toHaveLength(1);
    const [mail] = received;
    expect(mail?.from).toBe("no-reply@transporter.test");
    expect(mail?.to.sort()).toEqual(["data@acme.test", "ops@acme.test"]);
    const text = decoded(mail?.raw ?? "");
    expect(text).toContain("Subject: Weekly agents FAILED for 2026-11-16T00:00:00.000Z");
    expect(text).toContain("Task Weekly agents ended FAILED.");
    expect(text).toContain(`Window: ${run.windowStart} – ${run.windowEnd}`);
    expect(text).toContain(`File: ${run.fileName}`);
    expect(text).toContain(`Error: ${run.error?.message}`);
  });

  it("uses the default templates when the task sets none", async () => {
    const run = failedRun();
    await mailer.sendRunEmail(run, { to: ["ops@acme.test"] });
    const text = decoded(received[0]?.raw ?? "");
    expect(text).toContain("Subject: [Transporter] Weekly agents: FAILED");
    expect(text).toContain(`Run ${run.runId}`);
  });

  it("reports a refused recipient as a permanent failure", async () => {
    rejectRecipients = true;
    const error = await mailer.sendRunEmail(failedRun(), { to: ["nobody@acme.test"] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EmailError);
    expect((error as EmailError).permanent).toBe(true);
    expect(received).toHaveLength(0);
  });

  it("gives up on a relay that stops answering mid-conversation within its socket timeout, as a failure to try again", async () => {
    // Greets, then never answers another command: a hung relay.
    const silent = createServer((socket) => {
      socket.write("220 silent.test ESMTP\r\n");
      socket.on("data", () => undefined);
      socket.on("error", () => undefined);
    });
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const port = (silent.address() as AddressInfo).port;
    // The limit given to the mailer, and one the SMTP URL sets itself (which wins over the default).
    const mailers = [
      createMailer({ smtpUrl: `smtp://127.0.0.1:${port}`, from: "Transporter <no-reply@transporter.test>", timeouts: { socketMs: 500 } }),
      createMailer({ smtpUrl: `smtp://127.0.0.1:${port}/?socketTimeout=500`, from: "Transporter <no-reply@transporter.test>" }),
    ];
    try {
      for (const hung of mailers) {
        const started = Date.now();
        const error = await hung.sendRunEmail(failedRun(), { to: ["ops@acme.test"] }).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(EmailError);
        expect((error as EmailError).permanent).toBe(false);
        expect(Date.now() - started).toBeLessThan(10_000);
      }
    } finally {
      for (const hung of mailers) hung.close();
      silent.close();
    }
  });

  it("a URL nodemailer reads but the WHATWG parser refuses (a raw # in the password) makes a mailer all the same, and no error carries the URL", async () => {
    const url = "smtp://mailer:s3cr#t@127.0.0.1:9";
    const mailer = createMailer({ smtpUrl: url, from: "Transporter <no-reply@transporter.test>", timeouts: { connectionMs: 500, greetingMs: 500, socketMs: 500 } });
    try {
      const error = await mailer.sendRunEmail(failedRun(), { to: ["ops@acme.test"] }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(EmailError);
      expect(JSON.stringify({ message: (error as Error).message, ...(error as object) })).not.toContain("s3cr");
    } finally {
      mailer.close();
    }
  });

  it("keeps a multi-line value out of the subject header", () => {
    const run = { ...failedRun(), error: { code: "protocol", message: "line one\r\nBcc: victim@evil.test" } };
    const { subject } = renderRunEmail(run, { subjectTemplate: "{{status}}: {{error}}" });
    expect(subject).toBe("FAILED: line one Bcc: victim@evil.test");
  });

  it("keeps control characters, line separators and bidi overrides out of the subject", () => {
    const run = { ...failedRun(), task: "Daily\u2028report\u0085for\u009b31m ops\u2029\tteam", error: { code: "protocol", message: "abc\u202Egpj.exe \u2066x\u2069 \u202Ay\u202C\u0000" } };
    const { subject, text } = renderRunEmail(run, { subjectTemplate: "{{task}}: {{error}}", messageTemplate: "{{task}}" });
    expect(subject).toBe("Daily report for 31m ops team: abcgpj.exe x y");
    expect(subject).not.toMatch(/[\p{Cc}\p{Zl}\p{Zp}\u202A-\u202E\u2066-\u2069]/u);
    // The message body is not a header: it keeps what the task says.
    expect(text).toBe(run.task);
  });
});

describe("notification settings", () => {
  it("notifies on failure only by default, and on every run with on=always", () => {
    const onFailure = notificationSettingsSchema.parse({ emails: ["a@acme.test"] });
    expect(shouldNotify(onFailure, "FAILED")).toBe(true);
    expect(shouldNotify(onFailure, "SUCCEEDED")).toBe(false);
    const always = notificationSettingsSchema.parse({ webhookUrl: "https://hooks.acme.test/t", on: "always" });
    expect(shouldNotify(always, "SUCCEEDED")).toBe(true);
    expect(shouldNotify(notificationSettingsSchema.parse({ on: "always" }), "FAILED")).toBe(false);
  });

  it("renders known placeholders and leaves unknown ones as written", () => {
    expect(renderTemplate("{{ task }} / {{file}} / {{nope}}", { task: "T", file: "f.csv" })).toBe("T / f.csv / {{nope}}");
    expect(unknownPlaceholders("{{task}} {{nope}} {{window}}")).toEqual(["nope"]);
  });

  it("refuses a webhook URL over 2048 characters, naming the field", () => {
    const url = (length: number) => `https://hooks.acme.test/${"a".repeat(length - "https://hooks.acme.test/".length)}`;
    expect(notificationSettingsSchema.safeParse({ webhookUrl: url(2048) }).success).toBe(true);
    for (const length of [2049, 1_000_000]) {
      const result = notificationSettingsSchema.safeParse({ webhookUrl: url(length) });
      expect(result.success, String(length)).toBe(false);
      expect(result.error?.issues.map((issue) => [issue.path.join("."), issue.message])).toContainEqual(["webhookUrl", "at most 2048 characters"]);
    }
  });

  it("refuses templates with unknown placeholders", () => {
    const result = notificationSettingsSchema.safeParse({ emails: ["a@acme.test"], emailSubject: "{{task}} {{nope}}" });
    expect(result.success).toBe(false);
  });
});
