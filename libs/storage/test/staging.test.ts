import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { PassThrough, Readable } from "node:stream";
import { CreateBucketCommand, ListMultipartUploadsCommand, ListObjectsV2Command } from "@aws-sdk/client-s3";
import { testConfig } from "@transporter/config";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createStagingStore, FsStagingStore, S3StagingStore, StorageKeyError, StorageObjectNotFoundError, createS3Client, stagingKey, stagingRunPrefix } from "../src/index.js";
import type { StagingStore } from "../src/index.js";
import { startS3rver } from "./support/s3rver.js";
import type { S3rverHandle } from "./support/s3rver.js";

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

const sha256 = (data: Buffer) => createHash("sha256").update(data).digest("hex");

/** A stream that sends `first` and then fails, like a socket cut mid-transfer. */
function failingStream(first: Buffer): Readable {
  const stream = new PassThrough();
  stream.write(first);
  setTimeout(() => stream.destroy(new Error("source cut mid-stream")), 20);
  return stream;
}

describe("stagingKey", () => {
  it("lays keys out by tenant, run and stage", () => {
    expect(stagingKey("t1", "r1", "encrypted", "report.csv.pgp")).toBe("tenants/t1/runs/r1/encrypted/report.csv.pgp");
    expect(stagingRunPrefix("t1", "r1")).toBe("tenants/t1/runs/r1/");
  });

  it.each(["../etc/passwd", "a/../../b", "/abs", "a//b", "a/./b", "a\\b", "a/.hidden", "tab\there", ""])("refuses %j", (file) => {
    expect(() => stagingKey("t1", "r1", "raw", file)).toThrow(StorageKeyError);
  });
});

/** The contract every StagingStore keeps, run against each implementation. */
function contract(name: string, open: () => Promise<{ store: StagingStore; listKeys(): Promise<string[]> }>) {
  describe(name, () => {
    let store: StagingStore;
    let listKeys: () => Promise<string[]>;
    beforeAll(async () => {
      ({ store, listKeys } = await open());
    });

    it("puts a stream and reads the same bytes back, with size and sha256", async () => {
      const data = randomBytes(300_000);
      const key = stagingKey("t1", "r-put", "raw", "records.ndjson");
      const written = await store.put(key, Readable.from([data.subarray(0, 1000), data.subarray(1000)]));
      expect(written).toEqual({ bytes: data.length, sha256: sha256(data) });
      expect(await store.stat(key)).toEqual({ bytes: data.length });
      expect((await readAll(await store.get(key))).equals(data)).toBe(true);
    });

    it("stores an empty object", async () => {
      const key = stagingKey("t1", "r-empty", "raw", "records.ndjson");
      expect(await store.put(key, Readable.from([]))).toEqual({ bytes: 0, sha256: sha256(Buffer.alloc(0)) });
      expect(await store.stat(key)).toEqual({ bytes: 0 });
      expect((await readAll(await store.get(key))).length).toBe(0);
    });

    it("replaces an object, and a failed put leaves the previous one whole", async () => {
      const key = stagingKey("t1", "r-replace", "report", "report.csv");
      const first = randomBytes(50_000);
      const second = randomBytes(70_000);
      await store.put(key, Readable.from([first]));
      await store.put(key, Readable.from([second]));
      await expect(store.put(key, failingStream(randomBytes(10_000)))).rejects.toThrow("source cut mid-stream");
      expect((await readAll(await store.get(key))).equals(second)).toBe(true);
      const underRun = (await listKeys()).filter((k) => k.includes("r-replace"));
      expect(underRun).toEqual([key]);
    });

    it("a body that fails before the store reads it: the put rejects with its error, nothing is uncaught", async () => {
      const key = stagingKey("t1", "r-early", "raw", "records.ndjson");
      const body = new PassThrough();
      const put = store.put(key, body);
      // At once, while the store is still getting ready to write (a folder made, a file opened).
      body.destroy(new Error("source cut before the write began"));
      await expect(put).rejects.toThrow("source cut before the write began");
      expect(await store.stat(key)).toBeNull();
    });

    it("a body its feeder stops with a plain destroy() (no error) mid-stream: the put rejects instead of waiting for ever, and leaves nothing", async () => {
      const key = stagingKey("t1", "r-stopped", "raw", "records.ndjson");
      const body = new PassThrough();
      body.write(randomBytes(10 * 1024 * 1024));
      setTimeout(() => body.destroy(), 50);
      const settled = await Promise.race([
        store.put(key, body).then(() => "resolved", (error: Error) => error.message),
        new Promise((resolve) => setTimeout(() => resolve("still waiting"), 8_000)),
      ]);
      expect(settled).toMatch(/premature close/i);
      expect(await store.stat(key)).toBeNull();
      expect((await listKeys()).filter((k) => k.includes("r-stopped"))).toEqual([]);
    });

    it("a failed first put leaves nothing visible", async () => {
      const key = stagingKey("t1", "r-failed", "raw", "records.ndjson");
      await expect(store.put(key, failingStream(randomBytes(10_000)))).rejects.toThrow("source cut mid-stream");
      expect(await store.stat(key)).toBeNull();
      await expect(store.get(key)).rejects.toBeInstanceOf(StorageObjectNotFoundError);
      expect((await listKeys()).filter((k) => k.includes("r-failed"))).toEqual([]);
    });

    it("stat and get of a missing key: null and StorageObjectNotFoundError; delete of it is fine", async () => {
      const key = stagingKey("t1", "r-missing", "raw", "nothing");
      expect(await store.stat(key)).toBeNull();
      await expect(store.get(key)).rejects.toBeInstanceOf(StorageObjectNotFoundError);
      await expect(store.delete(key)).resolves.toBeUndefined();
    });

    it("deletes one object, and everything under a run prefix", async () => {
      const keys = ["raw/records.ndjson", "report/report.csv", "encrypted/report.csv.pgp"].map((k) => `tenants/t2/runs/r9/${k}`);
      for (const key of keys) await store.put(key, Readable.from([Buffer.from(key)]));
      const neighbour = stagingKey("t2", "r90", "raw", "records.ndjson");
      await store.put(neighbour, Readable.from([Buffer.from("keep")]));

      await store.delete(keys[0]!);
      expect(await store.stat(keys[0]!)).toBeNull();
      expect(await store.deletePrefix(stagingRunPrefix("t2", "r9"))).toBe(2);
      for (const key of keys) expect(await store.stat(key)).toBeNull();
      expect(await store.stat(neighbour)).toEqual({ bytes: 4 });
      expect(await store.deletePrefix(stagingRunPrefix("t2", "r9"))).toBe(0);
    });

    it("refuses keys that escape the store", async () => {
      await expect(store.put("../outside", Readable.from([Buffer.from("x")]))).rejects.toBeInstanceOf(StorageKeyError);
      await expect(store.get("tenants/../../etc/passwd")).rejects.toBeInstanceOf(StorageKeyError);
      await expect(store.deletePrefix("/")).rejects.toBeInstanceOf(StorageKeyError);
    });

    it("a reader during a put sees the old object or the new one, never a mix", async () => {
      const key = stagingKey("t1", "r-race", "report", "report.csv");
      const old = Buffer.alloc(200_000, 1);
      const fresh = Buffer.alloc(300_000, 2);
      await store.put(key, Readable.from([old]));
      const slow = new PassThrough();
      const putting = store.put(key, slow);
      slow.write(fresh.subarray(0, 100_000));
      const during = await readAll(await store.get(key));
      expect(during.equals(old)).toBe(true);
      slow.end(fresh.subarray(100_000));
      await putting;
      expect((await readAll(await store.get(key))).equals(fresh)).toBe(true);
    });
  });
}

const fsRoot = await mkdtemp(path.join(tmpdir(), "staging-fs-"));
afterAll(() => rm(fsRoot, { recursive: true, force: true }));

contract("FsStagingStore", async () => {
  const store = new FsStagingStore(fsRoot);
  const listKeys = async () => {
    const entries = await readdir(fsRoot, { recursive: true, withFileTypes: true });
    return entries.filter((e) => e.isFile()).map((e) => path.relative(fsRoot, path.join(e.parentPath, e.name)));
  };
  return { store, listKeys };
});

/** An endless stream: only a reader that goes away can stop whoever fills it. */
function endlessStream(): Readable {
  return new Readable({
    read() {
      this.push(Buffer.alloc(64 * 1024, 7));
    },
  });
}

/** Resolves once `stream` is destroyed (a body left paused forever would time the test out). */
const destroyed = (stream: Readable) => new Promise<void>((resolve) => (stream.destroyed ? resolve() : stream.once("close", () => resolve())));

describe("FsStagingStore folders", () => {
  it("a put that fails before reading its body destroys the body", async () => {
    const notAFolder = path.join(fsRoot, "not-a-folder");
    await writeFile(notAFolder, "");
    const body = endlessStream();
    await expect(new FsStagingStore(notAFolder).put(stagingKey("t1", "r-enotdir", "report", "report.csv"), body)).rejects.toMatchObject({ code: "ENOTDIR" });
    await destroyed(body);
    expect(body.destroyed).toBe(true);
  });


  const store = new FsStagingStore(fsRoot);
  it("puts into a folder that concurrent deletes keep emptying (and removing) all succeed", async () => {
    // Deleting a folder's last object removes the folder; a put into it at that moment must
    // make the folder again, never fail. (File system only: S3 has no folders, and s3rver's own
    // file backend has this very race.)
    for (let i = 0; i < 40; i++) {
      const sibling = stagingKey("t1", "r-churn", "raw", `old-${i}.ndjson`);
      const key = stagingKey("t1", "r-churn", "raw", `new-${i}.ndjson`);
      await store.put(sibling, Readable.from([Buffer.from("old")]));
      const [written] = await Promise.all([store.put(key, Readable.from([Buffer.from(`new ${i}`)])), store.delete(sibling)]);
      expect(written.bytes).toBe(`new ${i}`.length);
      expect((await readAll(await store.get(key))).toString()).toBe(`new ${i}`);
      await store.delete(key);
    }
    expect(await readdir(path.join(fsRoot, "tenants/t1/runs")).catch(() => [])).not.toContain("r-churn");
  });
});

let s3: S3rverHandle;
beforeAll(async () => {
  s3 = await startS3rver({ buckets: ["staging"] });
});
afterAll(() => s3?.stop());

contract("S3StagingStore on s3rver", async () => {
  const client = s3.client();
  const store = new S3StagingStore(createS3Client({ region: s3.region, endpoint: s3.endpoint, accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey }), "staging");
  const listKeys = async () => {
    const listing = await client.send(new ListObjectsV2Command({ Bucket: "staging" }));
    return (listing.Contents ?? []).map((o) => o.Key ?? "");
  };
  return { store, listKeys };
});

describe("S3StagingStore multipart", () => {
  it("a refused upload destroys its body", async () => {
    const store = new S3StagingStore(createS3Client({ region: s3.region, endpoint: s3.endpoint, accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey }), "no-such-bucket");
    const body = endlessStream();
    await expect(store.put(stagingKey("t3", "r-refused", "report", "report.csv"), body)).rejects.toThrow();
    await destroyed(body);
    expect(body.destroyed).toBe(true);
  });


  it("uploads a multi-part object whole, and a failed one leaves no object and no parts", async () => {
    await s3.client().send(new CreateBucketCommand({ Bucket: "multipart" }));
    const store = new S3StagingStore(createS3Client({ region: s3.region, endpoint: s3.endpoint, accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey }), "multipart");
    const data = randomBytes(20 * 1024 * 1024);
    const key = stagingKey("t3", "r1", "encrypted", "big.pgp");
    expect(await store.put(key, Readable.from([data]))).toEqual({ bytes: data.length, sha256: sha256(data) });
    expect((await readAll(await store.get(key))).equals(data)).toBe(true);

    const failedKey = stagingKey("t3", "r2", "encrypted", "big.pgp");
    await expect(store.put(failedKey, failingStream(randomBytes(12 * 1024 * 1024)))).rejects.toThrow("source cut mid-stream");
    expect(await store.stat(failedKey)).toBeNull();
    const uploads = await s3.client().send(new ListMultipartUploadsCommand({ Bucket: "multipart" }));
    expect(uploads.Uploads ?? []).toEqual([]);
  });
});

describe("createStagingStore", () => {
  it("builds a file-system store by default and an S3 one from STAGING_S3_*", async () => {
    const fsStore = createStagingStore(testConfig({ STAGING_DIR: fsRoot }));
    expect(fsStore).toBeInstanceOf(FsStagingStore);

    const s3Store = createStagingStore(
      testConfig({
        STAGING_DRIVER: "s3",
        STAGING_S3_BUCKET: "staging",
        STAGING_S3_ENDPOINT: s3.endpoint,
        STAGING_S3_ACCESS_KEY_ID: s3.accessKeyId,
        STAGING_S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
      }),
    );
    const key = stagingKey("t4", "r1", "raw", "x.ndjson");
    await s3Store.put(key, Readable.from([Buffer.from("through config")]));
    expect((await readAll(await s3Store.get(key))).toString()).toBe("through config");
    expect(() => createStagingStore(testConfig({ STAGING_DRIVER: "s3" }))).toThrow("STAGING_S3_BUCKET");
  });
});
