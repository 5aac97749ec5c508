import { createHmac, randomBytes, randomUUID } from "node:crypto";
import { createServer } from "node:http";
import type { IncomingHttpHeaders, Server } from "node:http";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createServer as createNetServer, type AddressInfo } from "node:net";
import { request as httpsRequest } from "node:https";
import { sendWebhook, signWebhookBody, WebhookError } from "../src/notify/index.js";
import { InternalAddressError, isPublicAddress, publicOnlyLookup } from "../src/network/public-address.js";
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
        if (req.url === "/slow-body") {
          // Accepted at once, then a body that trickles for 2 s.
          res.writeHead(200);
          let sent = 0;
          const timer = setInterval(() => (++sent < 20 ? res.write(".") : (clearInterval(timer), res.end())), 100);
          res.on("close", () => clearInterval(timer));
          return;
        }
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
    // Signed: "<timestamp>.<body>", so the timestamp cannot be replaced on a replay.
    const timestampHeader = String(request?.headers["x-transporter-timestamp"]);
    const expected = `sha256=${createHmac("sha256", secret).update(`${timestampHeader}.${request?.body ?? ""}`).digest("hex")}`;
    expect(request?.headers["x-transporter-signature"]).toBe(expected);
    expect(signWebhookBody(request?.body ?? "", secret, timestampHeader)).toBe(expected);
    expect(signWebhookBody(request?.body ?? "", secret, String(Number(timestampHeader) + 60))).not.toBe(expected);
    const timestamp = Number(timestampHeader);
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

  it("counts a 2xx as delivered when it arrives, whatever its body still takes: no timeout, no second send", async () => {
    const result = await sendWebhook(summary(), { url: `${base}/slow-body`, secret, allowInsecure: true, backoffMs: 5, attempts: 2, timeoutMs: 500 });
    expect(result.attempts).toBe(1);
    expect(received).toHaveLength(1);
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

  it("never connects inside this service's own network: internal addresses, localhost, names that resolve there", async () => {
    let connections = 0;
    const listener = createNetServer((socket) => {
      connections += 1;
      socket.destroy();
    });
    await new Promise<void>((resolve) => listener.listen(0, "127.0.0.1", resolve));
    const port = (listener.address() as AddressInfo).port;
    try {
      for (const url of [`https://127.0.0.1:${port}/`, `https://localhost:${port}/`, `https://[::ffff:127.0.0.1]:${port}/`, "https://169.254.169.254/latest/meta-data/", "https://10.0.0.5:8443/admin", "https://[::1]:6443/"]) {
        const error = await sendWebhook(summary(), { url, secret, attempts: 1 }).catch((e: unknown) => e);
        expect(error, url).toBeInstanceOf(WebhookError);
        expect((error as WebhookError).permanent, url).toBe(true);
        expect((error as WebhookError).message, url).toContain("may not point at this service's own network");
      }
      // A name resolving inside (here: localhost, through the system resolver) is refused by the
      // lookup the webhook's requests use, before any connection is made.
      const refused = await new Promise<unknown>((resolve) => {
        const req = httpsRequest(`https://localhost:${port}/hook`, { method: "POST", lookup: publicOnlyLookup });
        req.on("error", resolve);
        req.end();
      });
      expect(refused).toBeInstanceOf(InternalAddressError);
      expect((refused as Error).message).toMatch(/^localhost resolves to (127\.0\.0\.1|::1), inside this service's own network$/);
      expect(connections).toBe(0);
    } finally {
      await new Promise((resolve) => listener.close(resolve));
    }
  });

  it("tells public addresses from internal ones", () => {
    for (const address of ["8.8.8.8", "1.1.1.1", "172.32.0.1", "100.128.0.1", "2606:4700:4700::1111"]) expect(isPublicAddress(address), address).toBe(true);
    for (const address of ["10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1", "127.0.0.1", "127.255.0.9", "169.254.169.254", "100.64.0.1", "0.0.0.0", "224.0.0.1", "255.255.255.255",
      "::1", "::", "fe80::1", "fd00::1", "fc12:3456::1", "::ffff:127.0.0.1", "::ffff:7f00:1", "::ffff:10.0.0.1", "64:ff9b::a00:1", "ff02::1", "not an address"]) {
      expect(isPublicAddress(address), address).toBe(false);
    }
  });

  it("refuses plain http unless insecure endpoints are allowed", async () => {
    const error = await sendWebhook(summary(), { url: `${base}/plain`, secret }).catch((e: unknown) => e);
    expect((error as WebhookError).permanent).toBe(true);
    expect(received).toHaveLength(0);
  });
});
