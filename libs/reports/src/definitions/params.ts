import { z } from "zod";

/**
 * Parameter pieces shared by report versions. Filters (skill, agent, group ids, status) are
 * applied by the fetcher through the source API's own filters; rendering options (text,
 * transcripts, deleted entries) are applied by the definition.
 */
const ids = (what: string) =>
  z
    .array(z.number().int().nonnegative())
    .min(1)
    .max(1000)
    .optional()
    .describe(`Only ${what} with these ids (all when absent).`);

export const skillIds = ids("records of skills");
export const agentIds = ids("records of agents");
export const agentGroupIds = ids("records of agent groups");

export const conversationStatus = z
  .array(z.enum(["OPEN", "CLOSE"]))
  .min(1)
  .optional()
  .describe("Only conversations whose latest status is one of these (all when absent).");

export const includeText = z.boolean().default(true).describe("Include message text; when false the text cell reads [redacted].");

export const intervalMinutes = z
  .union([z.literal(5), z.literal(10), z.literal(15), z.literal(30), z.literal(60)])
  .default(15)
  .describe("Interval length in minutes.");

export const includeDeleted = z.boolean().default(false).describe("Include deleted entries.");

export const noParams = z.strictObject({});

export const REDACTED = "[redacted]";
