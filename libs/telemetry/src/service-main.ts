import { ConfigError, loadConfig, type Config } from "@transporter/config";
import { startTelemetry, type TelemetryOptions } from "./sdk.js";

export interface RunningService {
  stop(): Promise<void>;
}

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
 * lists every bad variable and exits 1), start telemetry first, start the service, and stop
 * it gracefully on SIGTERM/SIGINT (workers finish the jobs under way).
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
  const telemetry = startTelemetry(telemetryOptions(serviceName, config));
  const service = await start(config);
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.error(`${serviceName}: ${signal} received, stopping`);
    const force = setTimeout(() => process.exit(1), 30_000);
    force.unref();
    await service.stop();
    await telemetry.shutdown().catch(() => undefined);
    process.exit(0);
  };
  process.once("SIGTERM", () => void stop("SIGTERM"));
  process.once("SIGINT", () => void stop("SIGINT"));
}
