import { z } from "zod";
import {
  describeReport,
  findReport,
  getReport,
  listReports,
  REPORT_CATEGORIES,
  REPORT_KINDS,
  UnknownReportError,
  type CatalogueEntry,
} from "@transporter/reports";
import type { GatewayApp } from "../app.js";
import { pageQuery } from "../pagination.js";
import { badRequest, notFound } from "../problem.js";

const columnView = z.object({
  key: z.string(),
  type: z.enum(["string", "integer", "number", "boolean", "datetime"]),
  description: z.string(),
});

const versionView = z.object({
  version: z.number().int(),
  released: z.string(),
  notes: z.string(),
  formats: z.array(z.string()),
  columns: z.array(columnView),
  /** JSON Schema of the version's params. */
  params: z.record(z.string(), z.unknown()),
});

/** A catalogue entry as listed: the latest version's formats and params, and every version number. */
const reportSummary = z.object({
  id: z.string(),
  name: z.string(),
  description: z.string(),
  category: z.enum(REPORT_CATEGORIES),
  kind: z.enum(REPORT_KINDS),
  source: z.string(),
  window: z.enum(["windowed", "snapshot"]),
  minDelayMinutes: z.number().int(),
  /** How far back (minutes before a run) the source serves data; window + delay + interval must fit. null: no limit. */
  maxLookBackMinutes: z.number().int().nullable(),
  latestVersion: z.number().int(),
  versions: z.array(z.number().int()),
  formats: z.array(z.string()),
  params: z.record(z.string(), z.unknown()),
});

/** One report: the chosen version's columns and params (latest unless ?version=), and every version's details. */
const reportDetail = reportSummary.extend({
  version: z.number().int(),
  columns: z.array(columnView),
  malformedRecords: z.enum(["skip", "fail"]),
  versionDetails: z.array(versionView),
});

const summaryOf = (entry: CatalogueEntry): z.infer<typeof reportSummary> => ({
  id: entry.id,
  name: entry.name,
  description: entry.description,
  category: entry.category,
  kind: entry.kind,
  source: entry.source,
  window: entry.window,
  minDelayMinutes: entry.minDelayMinutes,
  maxLookBackMinutes: entry.maxLookBackMinutes,
  latestVersion: entry.latestVersion,
  versions: entry.versions.map((v) => v.version),
  formats: [...entry.formats],
  params: entry.params,
});

const toVersionView = (v: CatalogueEntry["versions"][number]): z.infer<typeof versionView> => ({
  version: v.version,
  released: v.released,
  notes: v.notes,
  formats: [...v.formats],
  columns: v.columns.map((c) => ({ key: c.key, type: c.type, description: c.description })),
  params: v.params,
});

/** The report catalogue tenants choose from (GET only; the catalogue is the same for every tenant). */
export default async function reportRoutes(app: GatewayApp) {
  app.get(
    "/v1/reports",
    {
      schema: {
        tags: ["reports"],
        // The whole catalogue is one page: `limit` and `cursor`, which every list takes, change nothing.
        querystring: pageQuery.extend({ category: z.enum(REPORT_CATEGORIES).optional(), kind: z.enum(REPORT_KINDS).optional() }),
        response: { 200: z.object({ items: z.array(reportSummary), nextCursor: z.null() }) },
      },
    },
    async (req) => {
      const { category, kind } = req.query;
      const items = listReports()
        .filter((r) => (!category || r.category === category) && (!kind || r.kind === kind))
        .map((r) => summaryOf(describeReport(r)));
      return { items, nextCursor: null };
    },
  );

  app.get(
    "/v1/reports/:id",
    {
      schema: {
        tags: ["reports"],
        params: z.object({ id: z.string().min(1).max(100) }),
        querystring: z.object({ version: z.union([z.literal("latest"), z.coerce.number().int().positive()]).default("latest") }).strict(),
        response: { 200: reportDetail },
      },
    },
    async (req) => {
      const definition = findReport(req.params.id);
      if (!definition) throw notFound(`report ${JSON.stringify(req.params.id)}`);
      let chosen;
      try {
        chosen = getReport(definition.id, req.query.version).version;
      } catch (error) {
        if (error instanceof UnknownReportError) {
          throw badRequest(`query.version: ${error.message}`, [{ path: "query.version", message: error.message }]);
        }
        throw error;
      }
      const entry = describeReport(definition);
      const version = toVersionView(entry.versions.find((v) => v.version === chosen.version)!);
      return {
        ...summaryOf(entry),
        version: version.version,
        formats: version.formats,
        params: version.params,
        columns: version.columns,
        malformedRecords: entry.malformedRecords,
        versionDetails: entry.versions.map(toVersionView),
      };
    },
  );
}
