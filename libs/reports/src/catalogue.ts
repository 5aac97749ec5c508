import { z } from "zod";
import { REPORTS } from "./definitions/index.js";
import { UnknownReportError } from "./errors.js";
import type { Column, ReportDefinition, ReportFormat, ReportVersion } from "./types.js";

const byId = new Map<string, ReportDefinition>(REPORTS.map((r) => [r.id, r]));

/** Every report of the catalogue, in catalogue order. */
export function listReports(): readonly ReportDefinition[] {
  return REPORTS;
}

export function findReport(id: string): ReportDefinition | undefined {
  return byId.get(id);
}

function latestOf(definition: ReportDefinition): ReportVersion {
  return definition.versions[definition.versions.length - 1]!;
}

/**
 * The pinned version number a task's `reportVersion` means today: "latest" follows new
 * versions, a number (or its text, as tasks store it) pins one. Throws UnknownReportError
 * naming the field that is wrong.
 */
export function resolveVersion(reportId: string, requested: number | string): number {
  return getReport(reportId, requested).version.version;
}

/** One report and one of its versions. */
export function getReport(id: string, requested: number | string = "latest"): { definition: ReportDefinition; version: ReportVersion } {
  const definition = byId.get(id);
  if (!definition) throw new UnknownReportError("reportId", `unknown report ${JSON.stringify(id)}`);
  if (requested === "latest") return { definition, version: latestOf(definition) };
  const number = typeof requested === "number" ? requested : /^[1-9][0-9]{0,5}$/.test(requested) ? Number(requested) : Number.NaN;
  const version = Number.isInteger(number) ? definition.versions.find((v) => v.version === number) : undefined;
  if (!version) {
    const known = definition.versions.map((v) => v.version).join(", ");
    throw new UnknownReportError("reportVersion", `report ${id} has no version ${JSON.stringify(requested)} (versions: ${known}, or "latest")`);
  }
  return { definition, version };
}

export interface CatalogueVersion {
  version: number;
  released: string;
  notes: string;
  formats: readonly ReportFormat[];
  columns: readonly Column[];
  /** JSON Schema of the version's params. */
  params: Record<string, unknown>;
}

/** What the catalogue endpoint shows: the report, its latest version's shape, and every version. */
export interface CatalogueEntry {
  id: string;
  name: string;
  description: string;
  category: ReportDefinition["category"];
  kind: ReportDefinition["kind"];
  source: ReportDefinition["source"];
  window: ReportDefinition["window"];
  /** Smallest task delay the report accepts (0: any). */
  minDelayMinutes: number;
  /** How far back (minutes before the run) the source serves data: window + delay + interval must fit (null: no limit). */
  maxLookBackMinutes: number | null;
  malformedRecords: ReportDefinition["malformed"];
  latestVersion: number;
  versions: CatalogueVersion[];
  formats: readonly ReportFormat[];
  columns: readonly Column[];
  params: Record<string, unknown>;
}

function paramsJsonSchema(version: ReportVersion): Record<string, unknown> {
  const schema = z.toJSONSchema(version.params, { io: "input", unrepresentable: "any" }) as Record<string, unknown>;
  delete schema.$schema;
  return schema;
}

export function describeVersion(version: ReportVersion): CatalogueVersion {
  return {
    version: version.version,
    released: version.released,
    notes: version.notes,
    formats: version.formats,
    columns: version.shape === "rows" ? version.columns : [],
    params: paramsJsonSchema(version),
  };
}

export function describeReport(definition: ReportDefinition): CatalogueEntry {
  const versions = definition.versions.map(describeVersion);
  const latest = versions[versions.length - 1]!;
  return {
    id: definition.id,
    name: definition.name,
    description: definition.description,
    category: definition.category,
    kind: definition.kind,
    source: definition.source,
    window: definition.window,
    minDelayMinutes: definition.minDelayMinutes ?? 0,
    maxLookBackMinutes: definition.maxLookBackMinutes ?? null,
    malformedRecords: definition.malformed,
    latestVersion: latest.version,
    versions,
    formats: latest.formats,
    columns: latest.columns,
    params: latest.params,
  };
}
