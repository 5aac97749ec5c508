export * from "./summary.js";
export * from "./template.js";
export * from "./settings.js";
export * from "./webhook.js";
export * from "./email.js";
