import { loadConfig } from "@transporter/config";
import { start } from "./index.js";

// The simulator is a test double: refuse to run in production unless explicitly asked.
const config = loadConfig();
if (config.NODE_ENV === "production" && !config.SIMULATOR_ALLOW_PRODUCTION) {
  console.error("The platform simulator does not start with NODE_ENV=production (set SIMULATOR_ALLOW_PRODUCTION=true to insist).");
  process.exit(1);
}
const simulator = await start(config, { logger: config.LOG_LEVEL !== "silent" });
console.log(`platform simulator listening on ${simulator.url} (seed "${config.SIMULATOR_SEED}"); CSDS: ${simulator.url}/api/account/<accountId>/service/baseURI.json?version=1.0`);

let stopping = false;
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    void simulator.stop().then(() => process.exit(0));
  });
}
