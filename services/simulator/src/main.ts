import { ConfigError, loadConfig, type Config } from "@transporter/config";
import { start } from "./index.js";

/** How long a stop may wait for requests under way (a slow-fault request can hold for minutes). */
const FORCE_EXIT_MS = 10_000;

let config: Config;
try {
  // The simulator keeps no secrets: production asks it for no master keys.
  config = loadConfig(process.env, { secrets: false });
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  console.error(`simulator: ${error.message}`);
  process.exit(1);
}
// The simulator is a test double: refuse to run in production unless explicitly asked.
if (config.NODE_ENV === "production" && !config.SIMULATOR_ALLOW_PRODUCTION) {
  console.error("The platform simulator does not start with NODE_ENV=production (set SIMULATOR_ALLOW_PRODUCTION=true to insist).");
  process.exit(1);
}
const simulator = await start(config, { logger: config.LOG_LEVEL !== "silent" });
console.log(`platform simulator listening on ${simulator.url} (seed "${config.SIMULATOR_SEED}"); CSDS: ${simulator.url}/api/account/<accountId>/service/baseURI.json?version=1.0`);

// The first signal stops; a second gets Node's default (exit at once), as the services' does.
const SIGNALS = ["SIGTERM", "SIGINT"] as const;
const stop = () => {
  for (const signal of SIGNALS) process.removeListener(signal, stop);
  setTimeout(() => process.exit(1), FORCE_EXIT_MS).unref();
  void simulator.stop().then(() => process.exit(0));
};
for (const signal of SIGNALS) process.on(signal, stop);
