// `npm start`: migrate, then run all six services in this one process (a single machine).
import { runServiceMain } from "@transporter/telemetry";
import { startSystem } from "./system.js";

await runServiceMain("all", async (config) => {
  const system = await startSystem(config);
  console.log(`Transporter is up: API ${system.gateway.url}  (docs ${system.gateway.url}/docs, readiness ${system.gateway.url}/readyz)`);
  return system;
});
