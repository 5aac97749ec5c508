import { createHmac, randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
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
  /** Allow plain http:// (tests, the simulator, the demo); https only otherwise. */
  allowInsecure?: boolean;
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

/** `sha256=<hex HMAC-SHA256 of the exact body bytes>`, the value of X-Transporter-Signature. */
export function signWebhookBody(body: string | Buffer, secret: string): string {
  return `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;
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
  if (url.protocol !== "https:" && !(url.protocol === "http:" && options.allowInsecure)) {
    throw new WebhookError(`webhook ${shown(url)} must use https`, true, 0);
  }
  const attempts = Math.max(1, options.attempts ?? 5);
  const backoffMs = options.backoffMs ?? 1000;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const deliveryId = randomUUID();
  const sentAt = new Date();
  const body = JSON.stringify({ event: "run.finished", deliveryId, sentAt: sentAt.toISOString(), run: summary });
  const headers = {
    "content-type": "application/json",
    "user-agent": "Transporter-Webhook/1",
    [EVENT_HEADER]: "run.finished",
    [DELIVERY_HEADER]: deliveryId,
    [TIMESTAMP_HEADER]: String(Math.floor(sentAt.getTime() / 1000)),
    ...(options.secret ? { [SIGNATURE_HEADER]: signWebhookBody(body, options.secret) } : {}),
  };

  let lastProblem = "";
  let lastStatus: number | undefined;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    if (attempt > 1) {
      const base = backoffMs * 2 ** (attempt - 2);
      await sleep(base / 2 + Math.random() * base);
    }
    try {
      const response = await fetch(url, {
        method: "POST",
        headers,
        body,
        redirect: "manual",
        signal: AbortSignal.timeout(timeoutMs),
      });
      // Drain so the connection can be reused; the content does not matter.
      await response.arrayBuffer().catch(() => undefined);
      if (response.status >= 200 && response.status < 300) return { status: response.status, attempts: attempt, deliveryId };
      lastStatus = response.status;
      lastProblem = `answered ${response.status}`;
      if (!retryable(response.status)) {
        throw new WebhookError(`webhook ${shown(url)} ${lastProblem}; not retried`, true, attempt, response.status);
      }
    } catch (error) {
      if (error instanceof WebhookError) throw error;
      lastStatus = undefined;
      const reason = error instanceof Error && error.name === "TimeoutError" ? "timed out" : "could not be reached";
      const code = (error as { cause?: { code?: unknown } }).cause?.code;
      lastProblem = `${reason}${typeof code === "string" ? ` (${code})` : ""}`;
    }
  }
  throw new WebhookError(`webhook ${shown(url)} ${lastProblem} after ${attempts} attempts`, false, attempts, lastStatus);
}
