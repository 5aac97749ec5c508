import { ConfigError, loadConfig, type Config } from "@transporter/config";
import { startTelemetry, type TelemetryOptions } from "./sdk.js";
import { startShutdownGrace } from "./shutdown.js";

export interface RunningService {
  stop(): Promise<void>;
}

/**
 * After the grace period, the time left to hand the jobs back and close the connections before
 * the process forces its exit (code 1): 30 s in all by default, within the orchestrators' 45 s.
 */
export const HAND_BACK_MS = 5_000;

/** What a service's main starts telemetry with, from its configuration. */
export function telemetryOptions(serviceName: string, config: Config): TelemetryOptions {
  return {
    serviceName: `transporter-${serviceName}`,
    serviceVersion: config.SERVICE_VERSION,
    otlpEndpoint: config.OTEL_EXPORTER_OTLP_ENDPOINT,
    metricExportIntervalMs: config.METRICS_SAMPLE_INTERVAL_MS,
    prometheusPort: config.PROMETHEUS_PORT,
  };
}

/**
 * The body of every service's `main.ts`: load and check the configuration (a ConfigError
 * lists every bad variable and exits 1), start telemetry first (a Prometheus port it cannot
 * listen on exits 1), start the service, and stop it gracefully on SIGTERM/SIGINT: workers
 * finish the jobs under way, and hand back those still running after SHUTDOWN_GRACE_MS.
 */
export async function runServiceMain(serviceName: string, start: (config: Config) => Promise<RunningService>): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`${serviceName}: ${error.message}`);
      process.exit(1);
    }
    throw error;
  }
  const graceMs = config.SHUTDOWN_GRACE_MS;
  const telemetry = startTelemetry(telemetryOptions(serviceName, config));
  try {
    await telemetry.started;
  } catch (error) {
    console.error(`${serviceName}: PROMETHEUS_PORT: ${(error as Error).message}`);
    await telemetry.shutdown().catch(() => undefined);
    process.exit(1);
  }
  const service = await start(config);
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.error(`${serviceName}: ${signal} received, stopping`);
    // Jobs still under way when the grace period ends are handed back (see shutdownGraceOver);
    // the force-exit is for whatever hangs even so.
    startShutdownGrace(graceMs);
    const force = setTimeout(() => {
      console.error(`${serviceName}: not stopped ${graceMs + HAND_BACK_MS} ms after ${signal}; exiting`);
      process.exit(1);
    }, graceMs + HAND_BACK_MS);
    force.unref();
    await service.stop();
    await telemetry.shutdown().catch(() => undefined);
    process.exit(0);
  };
  process.once("SIGTERM", () => void stop("SIGTERM"));
  process.once("SIGINT", () => void stop("SIGINT"));
}
