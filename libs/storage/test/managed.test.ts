import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { testConfig } from "@transporter/config";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createDestinationRegistry,
  createManagedAdapter,
  createManagedStore,
  DestinationError,
  FsStagingStore,
  managedConfigSchema,
  managedCredentialsSchema,
  managedFileExpiry,
  openManagedFile,
  S3StagingStore,
  StorageKeyError,
} from "../src/index.js";
import { startS3rver } from "./support/s3rver.js";
import type { S3rverHandle } from "./support/s3rver.js";

const sha256 = (data: Buffer) => createHash("sha256").update(data).digest("hex");

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function streamOf(data: Buffer, failAfter?: number): Readable {
  let offset = 0;
  const step = 1024 * 1024;
  return new Readable({
    read() {
      if (failAfter !== undefined && offset >= failAfter) return this.destroy(new Error("staging read cut mid-stream"));
      if (offset >= data.length) return this.push(null);
      this.push(data.subarray(offset, offset + step));
      offset += step;
    },
  });
}

let root: string;
let s3: S3rverHandle;
beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), "managed-"));
  s3 = await startS3rver({ buckets: ["managed-files"] });
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
  await s3?.stop();
});

const config = managedConfigSchema.parse({});
const credentials = managedCredentialsSchema.parse(null);

describe("managed destination on the local file system", () => {
  it("verifies by writing, reading back and removing a probe", async () => {
    const adapter = createManagedAdapter(new FsStagingStore(path.join(root, "verify")));
    expect(await adapter.verify(config, credentials)).toMatchObject({ ok: true });
    expect(await readdir(path.join(root, "verify"))).toEqual([]);
  });

  it("reports a store it cannot write to, as a platform problem that is not permanent", async () => {
    // A regular file where the store's folder should be: nothing can be created under it.
    const blocker = path.join(root, "not-a-folder");
    await writeFile(blocker, "x");
    const adapter = createManagedAdapter(new FsStagingStore(blocker));
    const result = await adapter.verify(config, credentials);
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.error).toBeInstanceOf(DestinationError);
      expect(result.error.permanent).toBe(false);
    }
  });

  it("delivers a 50 MB file and an empty file that download byte-identical", async () => {
    const store = new FsStagingStore(path.join(root, "files"));
    const adapter = createManagedAdapter(store);
    const data = randomBytes(50 * 1024 * 1024);
    const big = await adapter.deliver(streamOf(data), "daily_2026.csv.pgp", { tenantId: "t1", runId: "r1", subfolder: "2026/11/22", expectedBytes: data.length }, config, credentials);
    expect(big).toEqual({ path: "tenants/t1/runs/r1/2026/11/22/daily_2026.csv.pgp", bytes: data.length, checksum: sha256(data), notes: [] });
    const download = await openManagedFile(store, { tenantId: "t1", runId: "r1" }, big.path);
    expect(download?.bytes).toBe(data.length);
    expect((await readAll(download!.body)).equals(data)).toBe(true);

    const empty = await adapter.deliver(Readable.from([]), "empty.csv.pgp", { tenantId: "t1", runId: "r2" }, config, credentials);
    expect(empty.bytes).toBe(0);
    expect((await readAll((await openManagedFile(store, { tenantId: "t1", runId: "r2" }, empty.path))!.body)).length).toBe(0);
  });

  it("keeps each run's file apart even when two runs produce the same name", async () => {
    const store = new FsStagingStore(path.join(root, "apart"));
    const adapter = createManagedAdapter(store);
    const a = await adapter.deliver(Readable.from([Buffer.from("first run")]), "same.csv.pgp", { tenantId: "t1", runId: "run-a" }, config, credentials);
    const b = await adapter.deliver(Readable.from([Buffer.from("second run")]), "same.csv.pgp", { tenantId: "t1", runId: "run-b" }, config, credentials);
    expect(a.path).not.toBe(b.path);
    await store.delete(a.path);
    expect(await openManagedFile(store, { tenantId: "t1", runId: "run-a" }, a.path)).toBeNull();
    expect((await readAll((await openManagedFile(store, { tenantId: "t1", runId: "run-b" }, b.path))!.body)).toString()).toBe("second run");
  });

  it("a source failing mid-delivery leaves nothing; the retry delivers one copy", async () => {
    const dir = path.join(root, "cut");
    const store = new FsStagingStore(dir);
    const adapter = createManagedAdapter(store);
    const data = randomBytes(5 * 1024 * 1024);
    const delivery = { tenantId: "t1", runId: "r-cut" };
    await expect(adapter.deliver(streamOf(data, 2 * 1024 * 1024), "f.csv.pgp", delivery, config, credentials)).rejects.toThrow();
    expect(await openManagedFile(store, delivery, "tenants/t1/runs/r-cut/f.csv.pgp")).toBeNull();
    const result = await adapter.deliver(streamOf(data), "f.csv.pgp", delivery, config, credentials);
    const files = (await readdir(dir, { recursive: true, withFileTypes: true })).filter((e) => e.isFile());
    expect(files.map((f) => f.name)).toEqual(["f.csv.pgp"]);
    expect((await readAll((await openManagedFile(store, delivery, result.path))!.body)).equals(data)).toBe(true);
  });

  it("refuses a size other than expected and a file name that escapes the run's folder", async () => {
    const store = new FsStagingStore(path.join(root, "refuse"));
    const adapter = createManagedAdapter(store);
    await expect(adapter.deliver(Readable.from([Buffer.from("abc")]), "f.pgp", { tenantId: "t1", runId: "r1", expectedBytes: 4 }, config, credentials)).rejects.toMatchObject({
      code: "verification_failed",
    });
    expect(await openManagedFile(store, { tenantId: "t1", runId: "r1" }, "tenants/t1/runs/r1/f.pgp")).toBeNull();
    await expect(adapter.deliver(Readable.from([Buffer.from("x")]), "../../t2/runs/r/f.pgp", { tenantId: "t1", runId: "r1" }, config, credentials)).rejects.toBeInstanceOf(StorageKeyError);
  });

  it("opens only a path inside the run's own folder", async () => {
    const store = new FsStagingStore(path.join(root, "owner"));
    const adapter = createManagedAdapter(store);
    const other = await adapter.deliver(Readable.from([Buffer.from("tenant two's file")]), "f.csv.pgp", { tenantId: "t2", runId: "r2" }, config, credentials);
    await expect(openManagedFile(store, { tenantId: "t1", runId: "r1" }, other.path)).rejects.toThrow(/outside run r1's folder/);
    await expect(openManagedFile(store, { tenantId: "t2", runId: "r1" }, other.path)).rejects.toThrow(/outside/);
    expect((await readAll((await openManagedFile(store, { tenantId: "t2", runId: "r2" }, other.path))!.body)).toString()).toBe("tenant two's file");
  });

  it("computes the expiry from the delivery time and the retention", () => {
    expect(managedFileExpiry(new Date("2026-11-23T06:00:00Z"), 28).toISOString()).toBe("2026-12-21T06:00:00.000Z");
  });
});

describe("managed destination in an S3 bucket", () => {
  it("is built from MANAGED_* and delivers and downloads through S3", async () => {
    const store = createManagedStore(
      testConfig({
        MANAGED_DRIVER: "s3",
        MANAGED_S3_BUCKET: "managed-files",
        MANAGED_S3_ENDPOINT: s3.endpoint,
        MANAGED_S3_ACCESS_KEY_ID: s3.accessKeyId,
        MANAGED_S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
      }),
    );
    expect(store).toBeInstanceOf(S3StagingStore);
    const adapter = createDestinationRegistry({ managedStore: store, allowInsecureEndpoints: false }).adapterFor("managed");
    expect(await adapter.verify(config, credentials)).toMatchObject({ ok: true });
    const data = randomBytes(200_000);
    const result = await adapter.deliver(Readable.from([data]), "x.json.pgp", { tenantId: "t9", runId: "r9" }, config, credentials);
    expect((await readAll((await openManagedFile(store, { tenantId: "t9", runId: "r9" }, result.path))!.body)).equals(data)).toBe(true);
    expect(await openManagedFile(store, { tenantId: "t9", runId: "r9" }, "tenants/t9/runs/r9/missing.pgp")).toBeNull();
  });

  it("defaults to a local folder", () => {
    expect(createManagedStore(testConfig({ MANAGED_DIR: root }))).toBeInstanceOf(FsStagingStore);
  });
});
