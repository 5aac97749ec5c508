import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "csv-parse/sync";
import { afterAll, describe, expect, it } from "vitest";
import { listReports, TransformPool, type ReportFormat } from "../src/index.js";
import { generateGoldenInputs, GOLDEN_ZONE, goldenInput, readXlsx, transformToBuffer } from "./helpers.js";

/**
 * Every report version in every format it offers, on fixed simulator data (test/fixtures/input).
 * The expected files live in test/golden; `UPDATE_GOLDEN=1 npx vitest run libs/reports/test/golden.test.ts`
 * rewrites them (review the diff before committing), and UPDATE_GOLDEN_INPUTS=1 first regenerates
 * the inputs from the simulator. XLSX files carry creation times, so their golden form is the
 * cells read back with exceljs.
 */
const here = dirname(fileURLToPath(import.meta.url));
const goldenDir = join(here, "golden");
const update = process.env.UPDATE_GOLDEN === "1";
if (process.env.UPDATE_GOLDEN_INPUTS === "1") generateGoldenInputs();

/** Params that exercise optional columns; everything else uses the defaults. */
const PARAMS: Record<string, Record<number, unknown>> = {
  "messaging-conversations": { 2: { includeTranscript: true } },
};

function goldenPath(id: string, version: number, format: ReportFormat): string {
  return join(goldenDir, `${id}.v${version}.${format === "xlsx" ? "xlsx.json" : format}`);
}

function check(path: string, actual: string): void {
  if (update || !existsSync(path)) {
    if (!update) throw new Error(`missing golden file ${path}; run with UPDATE_GOLDEN=1 to create it`);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, actual);
    return;
  }
  expect(actual).toBe(readFileSync(path, "utf8"));
}

const cases = listReports().flatMap((definition) =>
  definition.versions.flatMap((version) =>
    version.formats.map((format) => ({ definition, version, format, name: `${definition.id} v${version.version} ${format}` })),
  ),
);

describe("golden files", () => {
  it.each(cases)("$name", async ({ definition, version, format }) => {
    const input = goldenInput(definition.source);
    expect(input.length).toBeGreaterThan(0);
    const { result, output } = await transformToBuffer(
      { report: definition.id, version: version.version, format, timeZone: GOLDEN_ZONE, params: PARAMS[definition.id]?.[version.version] ?? {} },
      input,
    );
    expect(result.skipped).toBe(0);
    expect(result.records).toBe(input.length);
    expect(result.bytes).toBe(output.length);
    expect(result.reportVersion).toBe(version.version);

    if (format === "xlsx") {
      const sheets = await readXlsx(output);
      expect(sheets).toHaveLength(1);
      const rows = sheets[0]!.rows;
      expect(rows.length - 1).toBe(result.rows);
      check(goldenPath(definition.id, version.version, format), `${JSON.stringify(sheets, null, 1)}\n`);
      return;
    }
    const text = output.toString("utf8");
    if (format === "csv") {
      const records = parse(text, { relax_column_count: false }) as string[][];
      expect(records.length - 1).toBe(result.rows);
      if (version.shape === "rows") expect(records[0]).toEqual(version.columns.map((c) => c.key));
    } else if (format === "json") {
      expect(JSON.parse(text)).toHaveLength(result.rows);
    } else {
      expect(text.split("\n").filter(Boolean).map((l) => JSON.parse(l) as unknown)).toHaveLength(result.rows);
    }
    check(goldenPath(definition.id, version.version, format), text);
  });
});

describe("golden files through the worker-thread pool", () => {
  // Small chunks, so that every file is split across both threads and put back in order.
  const pool = new TransformPool({ threads: 2, chunkBytes: 2048 });
  afterAll(() => pool.close());

  it.each(cases.filter((c) => c.format === "csv" || c.format === "ndjson"))("$name", async ({ definition, version, format }) => {
    const input = goldenInput(definition.source);
    const request = { report: definition.id, version: version.version, format, timeZone: GOLDEN_ZONE, params: PARAMS[definition.id]?.[version.version] ?? {} };
    const { result, output } = await transformToBuffer(request, input, { pool });
    expect(readFileSync(goldenPath(definition.id, version.version, format), "utf8")).toBe(output.toString("utf8"));
    expect(result).toEqual((await transformToBuffer(request, input)).result);
  });
});
