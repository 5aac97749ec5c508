import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { PassThrough, Writable, type Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import ExcelJS from "exceljs";
import {
  agentActivityForWindow,
  agentGroupsResource,
  conversationsForWindow,
  dataAccessRecordsForWindow,
  engagementsForWindow,
  queueHealthForWindow,
  skillsResource,
  usersResource,
} from "@transporter/simulator";
import { SOURCE_APIS, transformStream, type SourceApi, type TransformRequest, type TransformResult, type TransformRuntime } from "../src/index.js";

/**
 * Fixed simulator data for golden files: one account, one seed, a window that crosses the
 * spring-forward change in Europe/Berlin (01:00 UTC on 2026-03-29), so the rendered offsets
 * switch from +01:00 to +02:00 inside the file. The records are generated once with the
 * simulator's exported generators and kept in test/fixtures/input, so the golden files test this
 * package and not the simulator's evolution; `generateGoldenInputs()` regenerates them.
 */
export const GOLDEN_ACCOUNT = "90412233";
export const GOLDEN_SEED = "golden-2026";
export const GOLDEN_ZONE = "Europe/Berlin";
export const GOLDEN_FROM = Date.UTC(2026, 2, 29, 0, 0);
export const GOLDEN_TO = Date.UTC(2026, 2, 29, 2, 0);
const OPS_FROM = Date.UTC(2026, 2, 29, 0, 30);
const OPS_TO = Date.UTC(2026, 2, 29, 1, 30);

const inputDir = join(dirname(fileURLToPath(import.meta.url)), "fixtures", "input");

function records(source: SourceApi): Iterable<unknown> {
  const a = GOLDEN_ACCOUNT;
  const s = GOLDEN_SEED;
  switch (source) {
    case "messaging-interactions":
      return conversationsForWindow(a, GOLDEN_FROM, GOLDEN_TO, s);
    case "engagement-history":
      return engagementsForWindow(a, GOLDEN_FROM, GOLDEN_TO, s);
    case "messaging-operations-queue-health":
      return queueHealthForWindow(a, OPS_FROM, OPS_TO, s, 15);
    case "messaging-operations-agent-activity":
      return agentActivityForWindow(a, OPS_FROM, OPS_TO, s, 15);
    case "account-config-users":
      return usersResource(a, s);
    case "account-config-skills":
      return skillsResource(a, s);
    case "account-config-agent-groups":
      return agentGroupsResource(a, s);
    case "data-access-agent-activity":
      return dataAccessRecordsForWindow(a, "agentActivity", GOLDEN_FROM, GOLDEN_TO, s);
    case "data-access-web-session":
      return dataAccessRecordsForWindow(a, "webSession", GOLDEN_FROM, GOLDEN_TO, s);
    case "data-access-engagement":
      return dataAccessRecordsForWindow(a, "engagement", GOLDEN_FROM, GOLDEN_TO, s);
    case "data-access-survey":
      return dataAccessRecordsForWindow(a, "survey", GOLDEN_FROM, GOLDEN_TO, s);
  }
}

/** Rewrites test/fixtures/input from the simulator (run by golden.test.ts with UPDATE_GOLDEN_INPUTS=1). */
export function generateGoldenInputs(): void {
  mkdirSync(inputDir, { recursive: true });
  for (const source of SOURCE_APIS) {
    writeFileSync(join(inputDir, `${source}.ndjson`), Array.from(records(source), (r) => `${JSON.stringify(r)}\n`).join(""));
  }
}

/** The NDJSON lines the fetcher would stage for each source API over the golden window. */
export function goldenInput(source: SourceApi): string[] {
  const text = readFileSync(join(inputDir, `${source}.ndjson`), "utf8");
  return text.split("\n").filter((l) => l.length > 0).map((l) => `${l}\n`);
}

/** Collects a stream's bytes. */
export class BufferSink extends Writable {
  private readonly chunks: Buffer[] = [];
  override _write(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    this.chunks.push(chunk);
    done();
  }
  get buffer(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

/** Input in small, odd-sized chunks so lines and UTF-8 sequences straddle chunk boundaries. */
export function chunkedInput(text: string | string[], chunkSize = 997): Readable {
  const bytes = Buffer.from(Array.isArray(text) ? text.join("") : text, "utf8");
  const out = new PassThrough();
  (async () => {
    for (let i = 0; i < bytes.length; i += chunkSize) {
      if (!out.write(bytes.subarray(i, i + chunkSize))) await new Promise((r) => out.once("drain", r));
    }
    out.end();
  })().catch((err: unknown) => out.destroy(err as Error));
  return out;
}

export async function transformToBuffer(
  request: TransformRequest,
  input: string | string[],
  runtime: TransformRuntime = {},
  chunkSize?: number,
): Promise<{ result: TransformResult; output: Buffer }> {
  const sink = new BufferSink();
  const result = await transformStream(request, chunkedInput(input, chunkSize), sink, runtime);
  return { result, output: sink.buffer };
}

export type SheetCell = string | number | boolean | null | { date: string };

/**
 * Text as Excel reads it from a cell (ECMA-376 ST_Xstring): each `_xHHHH_` is the character
 * U+HHHH, left to right. exceljs decodes them in shared strings only, not in the `str` cells the
 * streaming writer writes.
 */
export function fromXstring(text: string): string {
  return text.replace(/_x([0-9A-Fa-f]{4})_/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

/** An XLSX file's sheets as typed cells: dates as { date: ISO of the wall-clock fields }, text as Excel reads it. */
export async function readXlsx(buffer: Buffer): Promise<{ name: string; rows: SheetCell[][] }[]> {
  const workbook = new ExcelJS.Workbook();
  await workbook.xlsx.load(buffer as unknown as ArrayBuffer);
  return workbook.worksheets.map((sheet) => {
    const rows: SheetCell[][] = [];
    const width = sheet.columnCount;
    sheet.eachRow({ includeEmpty: true }, (row) => {
      const cells: SheetCell[] = [];
      for (let c = 1; c <= width; c++) {
        const v = row.getCell(c).value;
        if (v === null || v === undefined) cells.push(null);
        else if (v instanceof Date) cells.push({ date: v.toISOString() });
        else if (typeof v === "string") cells.push(fromXstring(v));
        else if (typeof v === "number" || typeof v === "boolean") cells.push(v);
        else cells.push(JSON.stringify(v));
      }
      rows.push(cells);
    });
    return { name: sheet.name, rows };
  });
}
