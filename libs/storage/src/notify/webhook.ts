import { createHmac, randomUUID } from "node:crypto";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { setTimeout as sleep } from "node:timers/promises";
import { endpointUrlProblem, InternalAddressError, publicOnlyLookup } from "../network/public-address.js";
import type { RunSummary } from "./summary.js";

export const SIGNATURE_HEADER = "x-transporter-signature";
export const TIMESTAMP_HEADER = "x-transporter-timestamp";
export const EVENT_HEADER = "x-transporter-event";
export const DELIVERY_HEADER = "x-transporter-delivery";

export interface WebhookOptions {
  url: string;
  /** Shared secret of the HMAC signature; without one the request goes unsigned. */
  secret?: string;
  /** Attempts in all, the first included. */
  attempts?: number;
  /** Wait before the second attempt; doubled for each further one, with jitter. */
  backoffMs?: number;
  timeoutMs?: number;
  /** Allow plain http:// and this service's own network (tests, the demo); otherwise https to public addresses only. */
  allowInsecure?: boolean;
  /**
   * The notification's id (a UUID), the same whenever it is sent again (its job run again after a
   * crash), so a receiver can drop repeats; a new one for each call if absent.
   */
  deliveryId?: string;
}

export interface WebhookDelivery {
  status: number;
  attempts: number;
  /** Same on every attempt, so a receiver can drop repeats. */
  deliveryId: string;
}

/** A webhook that could not be delivered; `permanent` when the receiver refused it (4xx, redirect). */
export class WebhookError extends Error {
  override readonly name = "WebhookError";
  readonly code = "webhook_failed";

  constructor(
    message: string,
    readonly permanent: boolean,
    readonly attempts: number,
    readonly status?: number,
  ) {
    super(message);
  }
}

/**
 * `sha256=<hex HMAC-SHA256 of "<X-Transporter-Timestamp>.<exact body bytes>">`, the value of
 * X-Transporter-Signature. The timestamp is signed too, so a receiver that refuses old
 * timestamps also refuses a captured request replayed with a fresh one.
 */
export function signWebhookBody(body: string | Buffer, secret: string, timestamp: string): string {
  return `sha256=${createHmac("sha256", secret).update(`${timestamp}.`).update(body).digest("hex")}`;
}

/**
 * One POST; resolves with the status as soon as it arrives: a receiver that accepted the
 * delivery has, whatever its body still takes (read and thrown away, not waited for: a slow
 * body would otherwise time the accepted delivery out, and send it again). Host names are
 * resolved through `publicOnlyLookup` unless `anyAddress`.
 */
function post(url: URL, headers: Record<string, string>, body: string, options: { timeoutMs: number; anyAddress: boolean }): Promise<number> {
  const request = url.protocol === "https:" ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(url, {
      method: "POST",
      headers: { ...headers, "content-length": String(Buffer.byteLength(body)) },
      signal: AbortSignal.timeout(options.timeoutMs),
      ...(options.anyAddress ? {} : { lookup: publicOnlyLookup }),
    });
    req.on("error", reject);
    req.on("response", (response) => {
      // The body is not awaited: its errors (the timeout cutting a slow one) matter to no one.
      response.on("error", () => undefined);
      response.resume();
      resolve(response.statusCode ?? 0);
    });
    req.end(body);
  });
}

/** The URL without credentials, query or fragment: safe for messages and logs. */
function shown(url: URL): string {
  return `${url.origin}${url.pathname}`;
}

/** Whether a failed attempt is worth repeating: server errors and throttling yes, other 4xx no. */
function retryable(status: number): boolean {
  return status >= 500 || status === 429 || status === 408;
}

/**
 * POSTs the run summary as JSON, signed with HMAC-SHA256 over the body. Retries with
 * exponential backoff on network errors, timeouts and 5xx; a 4xx (other than 408/429) or a
 * redirect is the receiver's answer and is not repeated. Redirects are not followed, so the
 * signed payload only goes where the tenant pointed it.
 */
export async function sendWebhook(summary: RunSummary, options: WebhookOptions): Promise<WebhookDelivery> {
  const url = new URL(options.url);
  const allowInsecure = options.allowInsecure === true;
  const problem = endpointUrlProblem(url, { allowInsecure });
  if (problem) throw new WebhookError(`webhook ${shown(url)} ${problem}`, true, 0);
  const attempts = Math.max(1, options.attempts ?? 5);
  const backoffMs = options.backoffMs ?? 1000;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const deliveryId = options.deliveryId ?? randomUUID();
  const sentAt = new Date();
  const body = JSON.stringify({ event: "run.finished", deliveryId, sentAt: sentAt.toISOString(), run: summary });
  const timestamp = String(Math.floor(sentAt.getTime() / 1000));
  const headers = {
    "content-type": "application/json",
    "user-agent": "Transporter-Webhook/1",
    [EVENT_HEADER]: "run.finished",
    [DELIVERY_HEADER]: deliveryId,
    [TIMESTAMP_HEADER]: timestamp,
    ...(options.secret ? { [SIGNATURE_HEADER]: signWebhookBody(body, options.secret, timestamp) } : {}),
  };

  let lastProblem = "";
  let lastStatus: number | undefined;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    if (attempt > 1) {
      const base = backoffMs * 2 ** (attempt - 2);
      await sleep(base / 2 + Math.random() * base);
    }
    try {
      // Redirects are answers like any other 3xx: never followed.
      const status = await post(url, headers, body, { timeoutMs, anyAddress: allowInsecure });
      if (status >= 200 && status < 300) return { status, attempts: attempt, deliveryId };
      lastStatus = status;
      lastProblem = `answered ${status}`;
      if (!retryable(status)) {
        throw new WebhookError(`webhook ${shown(url)} ${lastProblem}; not retried`, true, attempt, status);
      }
    } catch (error) {
      if (error instanceof WebhookError) throw error;
      if (error instanceof InternalAddressError) throw new WebhookError(`webhook ${shown(url)} may not point at this service's own network`, true, attempt);
      lastStatus = undefined;
      const reason = error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError") ? "timed out" : "could not be reached";
      const code = (error as { code?: unknown }).code;
      lastProblem = `${reason}${typeof code === "string" && code !== "ABORT_ERR" ? ` (${code})` : ""}`;
    }
  }
  throw new WebhookError(`webhook ${shown(url)} ${lastProblem} after ${attempts} attempts`, false, attempts, lastStatus);
}
