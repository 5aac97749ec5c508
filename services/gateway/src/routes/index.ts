import type { GatewayApp } from "../app.js";
import account from "./account.js";
import alerts from "./alerts.js";
import apiKeys from "./api-keys.js";
import auditEvents from "./audit-events.js";
import destinations from "./destinations.js";
import encryptionKeys from "./encryption-keys.js";
import health from "./health.js";
import reports from "./reports.js";
import runs from "./runs.js";
import sources from "./sources.js";
import tasks from "./tasks.js";
import tenants from "./tenants.js";

/** Every route module of the API. Add a module here to expose it. */
const routeModules: Array<(app: GatewayApp) => Promise<void>> = [health, tenants, account, apiKeys, auditEvents, encryptionKeys, sources, destinations, reports, tasks, runs, alerts];

export async function registerRoutes(app: GatewayApp): Promise<void> {
  for (const register of routeModules) await app.register(async (scope) => register(scope as GatewayApp));
}
