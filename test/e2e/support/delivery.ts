import { createHash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { join, relative, sep } from "node:path";
import { parse } from "csv-parse/sync";
import { conversationsForWindow } from "@transporter/simulator";
import type { GnupgHome } from "../../../libs/crypto/test/support/gnupg.js";
import type { RunView } from "./api.js";

/** The managed store writes `<name>.partial-<uuid>`-style temporary files and renames them into place. */
const TEMP_MARKER = ".partial-";

export interface ManagedListing {
  /** Visible files per run id (tenants/<tenant>/runs/<run id>/…), paths relative to the store root. */
  byRun: Map<string, string[]>;
  /** Temporary files left behind (a writer killed mid-upload): never visible as deliveries. */
  temporary: string[];
}

async function walk(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch((error: NodeJS.ErrnoException) => {
    if (error.code === "ENOENT") return [];
    throw error;
  });
  const files: string[] = [];
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) files.push(...(await walk(path)));
    else files.push(path);
  }
  return files;
}

/** Every file a tenant has in managed storage (MANAGED_DRIVER=fs), grouped by run. */
export async function listManagedFiles(managedDir: string, tenantId: string): Promise<ManagedListing> {
  const byRun = new Map<string, string[]>();
  const temporary: string[] = [];
  for (const file of await walk(join(managedDir, "tenants", tenantId, "runs"))) {
    const path = relative(managedDir, file).split(sep).join("/");
    if (path.split("/").some((part) => part.startsWith(TEMP_MARKER))) {
      temporary.push(path);
      continue;
    }
    const runId = path.split("/")[3] as string;
    byRun.set(runId, [...(byRun.get(runId) ?? []), path]);
  }
  return { byRun, temporary };
}

/**
 * What must hold for a run delivered to managed storage: SUCCEEDED, exactly one file in its run
 * folder, at the recorded path, with the recorded size and sha256. Returns the problems found
 * (empty when the run is fine), so a test can report every bad run at once.
 */
export async function managedDeliveryProblems(run: RunView, listing: ManagedListing, managedDir: string): Promise<string[]> {
  const problems: string[] = [];
  if (run.status !== "SUCCEEDED") problems.push(`status ${run.status}${run.error ? ` (${run.error})` : ""}`);
  const files = listing.byRun.get(run.id) ?? [];
  if (files.length !== 1) problems.push(`${files.length} files in its folder: ${JSON.stringify(files)}`);
  if (!run.destinationPath) return [...problems, "no destinationPath"];
  if (files.length === 1 && files[0] !== run.destinationPath) problems.push(`destinationPath ${run.destinationPath} but the file is ${files[0]}`);
  if (run.fileName && !run.destinationPath.endsWith(`/${run.fileName}`)) problems.push(`destinationPath ${run.destinationPath} does not end with fileName ${run.fileName}`);
  const body = await readFile(join(managedDir, run.destinationPath)).catch(() => undefined);
  if (!body) return [...problems, `nothing at ${run.destinationPath}`];
  if (run.bytes !== body.length) problems.push(`bytes ${run.bytes} but the file has ${body.length}`);
  const sha256 = createHash("sha256").update(body).digest("hex");
  if (run.checksum !== sha256) problems.push(`checksum ${run.checksum} but the file's sha256 is ${sha256}`);
  return problems;
}

/** Decrypts an OpenPGP file with GnuPG (the private key must be imported into `gnupg`). */
export async function gpgDecrypt(gnupg: GnupgHome, passphrase: string, file: string): Promise<Buffer> {
  const { stdout } = await gnupg.gpgWithPassphrase(passphrase, ["--decrypt", file]);
  return stdout;
}

/** The `conversationId` column of a CSV report (header row first; a UTF-8 BOM is tolerated). */
export function csvConversationIds(csv: Buffer | string): string[] {
  const rows = parse(csv, { columns: true, bom: true, skip_empty_lines: true }) as Array<Record<string, string>>;
  return rows.map((row) => {
    const id = row.conversationId;
    if (id === undefined) throw new Error(`the CSV has no conversationId column: ${Object.keys(row).join(",")}`);
    return id;
  });
}

/** The conversation ids the simulator serves for an account and window (what a correct report contains). */
export function simulatedConversationIds(accountId: string, windowStart: string | Date, windowEnd: string | Date, seed: string, perHour?: number): string[] {
  const ids: string[] = [];
  for (const conversation of conversationsForWindow(accountId, new Date(windowStart), new Date(windowEnd), seed, perHour === undefined ? {} : { perHour })) {
    ids.push((conversation.info as { conversationId: string }).conversationId);
  }
  return ids;
}
