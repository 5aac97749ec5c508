import { runServiceMain } from "@transporter/telemetry";
import { start } from "./index.js";

await runServiceMain("gateway", async (config) => {
  const gateway = await start(config);
  gateway.app.log.info({ url: gateway.url }, "gateway listening");
  return gateway;
});
