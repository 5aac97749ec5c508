import { runServiceMain } from "@transporter/telemetry";

// The service module is loaded after telemetry has started, so its PostgreSQL and Redis clients are instrumented.
await runServiceMain("fetcher", async (config) => (await import("./index.js")).start(config));
