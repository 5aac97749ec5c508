import pino, { type DestinationStream, type Logger } from "pino";
import { currentTraceIds } from "./context.js";

/**
 * Paths that may hold secrets in anything we log (request bodies, headers, configs): pino
 * replaces them with "[redacted]". Secrets should not reach a logger at all; this is the net.
 */
export const REDACTED_PATHS = [
  "req.headers.authorization", "headers.authorization", "authorization",
  "*.password", "*.passphrase", "*.privateKey", "*.secret", "*.secretAccessKey", "*.sessionToken",
  "*.consumerSecret", "*.tokenSecret", "*.token", "*.credentials", "credentials", "*.apiKey", "*.key",
  "body.passphrase", "body.privateKey", "body.credentials",
];

export type { Logger };

/** pino JSON logs with the active trace and span ids on every line. */
export function createLogger(options: { name: string; level?: string; destination?: DestinationStream }): Logger {
  return pino(
    {
      name: options.name,
      level: options.level ?? "info",
      redact: { paths: REDACTED_PATHS, censor: "[redacted]" },
      mixin: () => currentTraceIds(),
      base: { service: options.name },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    options.destination,
  );
}
