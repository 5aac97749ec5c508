import { createHmac, randomBytes, randomUUID } from "node:crypto";
import { createServer } from "node:http";
import type { IncomingHttpHeaders, Server } from "node:http";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { sendWebhook, signWebhookBody, WebhookError } from "../src/notify/index.js";
import type { RunSummary } from "../src/notify/index.js";

interface Received {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

function summary(overrides: Partial<RunSummary> = {}): RunSummary {
  return {
    tenantId: randomUUID(),
    taskId: randomUUID(),
    task: "Daily messaging",
    runId: randomUUID(),
    status: "SUCCEEDED",
    trigger: "schedule",
    windowStart: "2026-11-22T00:00:00.000+01:00",
    windowEnd: "2026-11-23T00:00:00.000+01:00",
    fileName: "daily-messaging_2026-11-22_2026-11-23.csv.pgp",
    destinationPath: "/drop/daily-messaging_2026-11-22_2026-11-23.csv.pgp",
    bytes: 1234,
    checksum: "ab".repeat(32),
    records: 42,
    error: null,
    notes: [],
    finishedAt: "2026-11-23T06:01:02.000Z",
    ...overrides,
  };
}

describe("webhook notifications against a loopback receiver", () => {
  let server: Server;
  let base: string;
  let received: Received[] = [];
  /** Status codes to answer, in order; 200 once exhausted. */
  let script: number[] = [];
  const secret = randomBytes(24).toString("hex");

  beforeAll(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (chunk: Buffer) => chunks.push(chunk));
      req.on("end", () => {
        received.push({ method: req.method ?? "", path: req.url ?? "", headers: req.headers, body: Buffer.concat(chunks).toString("utf8") });
        const status = script.shift() ?? 200;
        res.statusCode = status;
        if (status >= 300 && status < 400) res.setHeader("location", `${base}/elsewhere`);
        res.end(status === 200 ? "ok" : "no");
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const address = server.address();
    base = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
  });

  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  beforeEach(() => {
    received = [];
    script = [];
  });

  it("posts the run summary as JSON with an HMAC-SHA256 signature of the body and a timestamp", async () => {
    const run = summary();
    const result = await sendWebhook(run, { url: `${base}/hooks/transporter?token=abc`, secret, allowInsecure: true });
    expect(result).toMatchObject({ status: 200, attempts: 1 });
    expect(received).toHaveLength(1);
    const [request] = received;
    expect(request?.method).toBe("POST");
    expect(request?.path).toBe("/hooks/transporter?token=abc");
    expect(request?.headers["content-type"]).toBe("application/json");
    const expected = `sha256=${createHmac("sha256", secret).update(request?.body ?? "").digest("hex")}`;
    expect(request?.headers["x-transporter-signature"]).toBe(expected);
    expect(signWebhookBody(request?.body ?? "", secret)).toBe(expected);
    const timestamp = Number(request?.headers["x-transporter-timestamp"]);
    expect(Math.abs(timestamp - Date.now() / 1000)).toBeLessThan(600);
    const payload = JSON.parse(request?.body ?? "{}") as { event: string; deliveryId: string; run: RunSummary };
    expect(payload.event).toBe("run.finished");
    expect(payload.deliveryId).toBe(result.deliveryId);
    expect(payload.run).toEqual(run);
    expect(JSON.stringify(request?.headers)).not.toContain(secret);
  });

  it("retries 5xx answers with the same signed body until one succeeds", async () => {
    script = [503, 500];
    const result = await sendWebhook(summary({ status: "FAILED", error: { code: "auth", message: "bad password" } }), {
      url: `${base}/retry`,
      secret,
      allowInsecure: true,
      backoffMs: 5,
    });
    expect(result.attempts).toBe(3);
    expect(received).toHaveLength(3);
    expect(new Set(received.map((r) => r.body)).size).toBe(1);
    expect(new Set(received.map((r) => r.headers["x-transporter-signature"])).size).toBe(1);
  });

  it("does not retry a 4xx answer and reports it as permanent", async () => {
    script = [404];
    const error = await sendWebhook(summary(), { url: `${base}/gone`, secret, allowInsecure: true, backoffMs: 5 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WebhookError);
    expect((error as WebhookError).permanent).toBe(true);
    expect((error as WebhookError).status).toBe(404);
    expect(received).toHaveLength(1);
  });

  it("does not follow redirects", async () => {
    script = [302];
    const error = await sendWebhook(summary(), { url: `${base}/moved`, secret, allowInsecure: true, backoffMs: 5 }).catch((e: unknown) => e);
    expect((error as WebhookError).permanent).toBe(true);
    expect(received.map((r) => r.path)).toEqual(["/moved"]);
  });

  it("gives up after the configured attempts on 5xx, as a transient failure", async () => {
    script = [502, 502, 502, 502];
    const error = await sendWebhook(summary(), { url: `${base}/down`, secret, allowInsecure: true, attempts: 3, backoffMs: 5 }).catch(
      (e: unknown) => e,
    );
    expect((error as WebhookError).permanent).toBe(false);
    expect((error as WebhookError).attempts).toBe(3);
    expect(received).toHaveLength(3);
  });

  it("retries network errors and never puts the URL's query in the message", async () => {
    const closed = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, "127.0.0.1", () => {
        const address = probe.address();
        probe.close(() => resolve(typeof address === "object" && address ? address.port : 1));
      });
    });
    const error = await sendWebhook(summary(), {
      url: `http://127.0.0.1:${closed}/hook?token=s3cr3t`,
      secret,
      allowInsecure: true,
      attempts: 2,
      backoffMs: 5,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WebhookError);
    expect((error as WebhookError).permanent).toBe(false);
    expect((error as WebhookError).attempts).toBe(2);
    expect((error as WebhookError).message).toContain("ECONNREFUSED");
    expect((error as WebhookError).message).not.toContain("s3cr3t");
  });

  it("refuses plain http unless insecure endpoints are allowed", async () => {
    const error = await sendWebhook(summary(), { url: `${base}/plain`, secret }).catch((e: unknown) => e);
    expect((error as WebhookError).permanent).toBe(true);
    expect(received).toHaveLength(0);
  });
});
