import { createHash, randomBytes } from "node:crypto";
import { connect, createServer } from "node:net";
import type { Server, Socket } from "node:net";
import { Readable } from "node:stream";
import {
  AbortMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
} from "@aws-sdk/client-s3";
import type { S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DestinationError, s3Adapter, s3ConfigSchema, s3CredentialsSchema } from "../src/index.js";
import type { S3Config, S3Credentials } from "../src/index.js";
import { startS3rver } from "./support/s3rver.js";
import type { S3rverHandle } from "./support/s3rver.js";

const MIB = 1024 * 1024;
const BUCKET = "deliveries";
const meta = { tenantId: "tenant-1", runId: "run-1" };

let s3: S3rverHandle;
let client: S3Client;

beforeAll(async () => {
  s3 = await startS3rver({ buckets: [BUCKET] });
  client = s3.client();
});
afterAll(async () => {
  client?.destroy();
  await s3?.stop();
});

function settings(overrides: Record<string, unknown> = {}, credentialOverrides: Partial<S3Credentials> = {}): { config: S3Config; credentials: S3Credentials } {
  return {
    config: s3ConfigSchema.parse({ bucket: BUCKET, prefix: "exports/daily", region: s3.region, endpoint: s3.endpoint, ...overrides }),
    credentials: s3CredentialsSchema.parse({ accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey, ...credentialOverrides }),
  };
}

async function readObject(key: string): Promise<Buffer> {
  const response = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  return Buffer.from(await response.Body!.transformToByteArray());
}

async function keysUnder(prefix: string): Promise<string[]> {
  const listing = await client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix }));
  return (listing.Contents ?? []).map((o) => o.Key ?? "");
}

async function lingeringUploads(): Promise<unknown[]> {
  return (await client.send(new ListMultipartUploadsCommand({ Bucket: BUCKET }))).Uploads ?? [];
}

const sha256 = (data: Buffer) => createHash("sha256").update(data).digest("hex");

/** Sends `data` in 1 MiB chunks, then fails after `failAfter` bytes like a cut connection. */
function streamOf(data: Buffer, failAfter?: number): Readable {
  let offset = 0;
  return new Readable({
    read() {
      if (failAfter !== undefined && offset >= failAfter) return this.destroy(new Error("staging read cut mid-stream"));
      if (offset >= data.length) return this.push(null);
      this.push(data.subarray(offset, offset + MIB));
      offset += MIB;
    },
  });
}

async function verifyError(config: S3Config, credentials: S3Credentials): Promise<DestinationError> {
  const result = await s3Adapter.verify(config, credentials);
  if (result.ok) throw new Error("verification unexpectedly succeeded");
  expect(result.error).toBeInstanceOf(DestinationError);
  expect(result.error.message).not.toContain(credentials.secretAccessKey);
  return result.error;
}

describe("s3 verify", () => {
  it("writes, reads back and deletes a probe object", async () => {
    const { config, credentials } = settings();
    const result = await s3Adapter.verify(config, credentials);
    expect(result).toMatchObject({ ok: true });
    expect(await keysUnder("exports/")).toEqual([]);
  });

  it("reports a missing bucket as not_found", async () => {
    const { config, credentials } = settings({ bucket: "no-such-bucket" });
    const error = await verifyError(config, credentials);
    expect(error.code).toBe("not_found");
    expect(error.permanent).toBe(true);
    expect(error.message).toContain("no-such-bucket");
  });

  it("reports an unknown access key and a wrong secret as auth", async () => {
    const unknownKey = settings({}, { accessKeyId: "AKUNKNOWN0000000" });
    expect((await verifyError(unknownKey.config, unknownKey.credentials)).code).toBe("auth");
    const wrongSecret = settings({}, { secretAccessKey: randomBytes(24).toString("base64url") });
    const error = await verifyError(wrongSecret.config, wrongSecret.credentials);
    expect(error.code).toBe("auth");
    expect(error.permanent).toBe(true);
  });

  it("reports a key that may not write as permission", async () => {
    const { config, credentials } = settings({}, { accessKeyId: s3.readOnlyAccessKeyId, secretAccessKey: s3.readOnlySecretAccessKey });
    const error = await verifyError(config, credentials);
    expect(error.code).toBe("permission");
    expect(error.permanent).toBe(true);
  });

  it("reports a closed port as connect and an unresolvable host as dns, both retryable", async () => {
    const closed = await closedPort();
    const refused = settings({ endpoint: `http://127.0.0.1:${closed}` });
    const connectError = await verifyError(refused.config, refused.credentials);
    expect(connectError.code).toBe("connect");
    expect(connectError.permanent).toBe(false);

    const unresolvable = settings({ endpoint: "http://s3.transporter-test.invalid:9000" });
    const dnsError = await verifyError(unresolvable.config, unresolvable.credentials);
    expect(dnsError.code).toBe("dns");
    expect(dnsError.message).toContain("s3.transporter-test.invalid");
  });
});

describe("s3 deliver", () => {
  it("delivers a 50 MB file as a multipart upload, byte-identical, and an empty file", async () => {
    const { config, credentials } = settings({ partSizeBytes: 8 * MIB });
    const data = randomBytes(50 * MIB);
    const result = await s3Adapter.deliver(streamOf(data), "big_2026.csv.pgp", { ...meta, subfolder: "2026/11/22", expectedBytes: data.length }, config, credentials);
    expect(result).toMatchObject({ path: "exports/daily/2026/11/22/big_2026.csv.pgp", bytes: data.length, checksum: sha256(data) });
    const parts = s3.requests.filter((r) => r.method === "PUT" && r.url.includes("big_2026") && r.url.includes("partNumber="));
    expect(parts.length).toBe(7); // 50 MiB in 8 MiB parts: it went up as a multipart upload
    expect((await readObject(result.path)).equals(data)).toBe(true);

    const empty = await s3Adapter.deliver(Readable.from([]), "empty.csv.pgp", meta, config, credentials);
    expect(empty).toMatchObject({ path: "exports/daily/empty.csv.pgp", bytes: 0, checksum: sha256(Buffer.alloc(0)), notes: [] });
    expect((await readObject(empty.path)).length).toBe(0);
    expect(await lingeringUploads()).toEqual([]);
  });

  it("sends server-side encryption settings and checks a single upload's MD5", async () => {
    const { config, credentials } = settings({ prefix: "sse", serverSideEncryption: "AES256" });
    const data = randomBytes(100_000);
    const result = await s3Adapter.deliver(Readable.from([data]), "small.json.pgp", { ...meta, contentType: "application/pgp-encrypted" }, config, credentials);
    expect(result.notes).toEqual([]);
    expect((await readObject(result.path)).equals(data)).toBe(true);
    const head = await client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: result.path }));
    expect(head.ContentType).toBe("application/pgp-encrypted");
  });

  it("refuses a file of another size than expected and leaves nothing", async () => {
    const { config, credentials } = settings({ prefix: "size-check" });
    const attempt = s3Adapter.deliver(Readable.from([randomBytes(1000)]), "short.csv.pgp", { ...meta, expectedBytes: 2000 }, config, credentials);
    await expect(attempt).rejects.toMatchObject({ code: "verification_failed" });
    expect(await keysUnder("size-check/")).toEqual([]);
  });

  it("a source failing mid-upload leaves no object and no parts; the retry delivers one copy", async () => {
    const { config, credentials } = settings({ prefix: "cut-source", partSizeBytes: 5 * MIB });
    const data = randomBytes(24 * MIB);
    const failed = s3Adapter.deliver(streamOf(data, 17 * MIB), "report.csv.pgp", meta, config, credentials);
    await expect(failed).rejects.toThrow("staging read cut mid-stream");
    expect(await keysUnder("cut-source/")).toEqual([]);
    expect(await lingeringUploads()).toEqual([]);

    const result = await s3Adapter.deliver(streamOf(data), "report.csv.pgp", meta, config, credentials);
    expect(await keysUnder("cut-source/")).toEqual(["cut-source/report.csv.pgp"]);
    expect((await readObject(result.path)).equals(data)).toBe(true);
  });

  it("connections cut mid-upload leave no object and no parts; the retry delivers one copy", async () => {
    const proxy = await startCuttingProxy(s3.port);
    try {
      const { config, credentials } = settings({ prefix: "cut-network", endpoint: `http://127.0.0.1:${proxy.port}`, partSizeBytes: 5 * MIB });
      const data = randomBytes(16 * MIB);
      proxy.cutAbove = 2 * MIB; // every connection carrying more than 2 MiB is cut: parts never get through
      const failed = s3Adapter.deliver(streamOf(data), "report.csv.pgp", meta, config, credentials);
      await expect(failed).rejects.toMatchObject({ name: "DestinationError", code: "connect", permanent: false });
      expect(proxy.cuts).toBeGreaterThan(0);
      expect(await keysUnder("cut-network/")).toEqual([]);
      expect(await lingeringUploads()).toEqual([]);

      proxy.cutAbove = Infinity;
      const result = await s3Adapter.deliver(streamOf(data), "report.csv.pgp", meta, config, credentials);
      expect(await keysUnder("cut-network/")).toEqual(["cut-network/report.csv.pgp"]);
      expect((await readObject(result.path)).equals(data)).toBe(true);
      expect(await lingeringUploads()).toEqual([]);
    } finally {
      await proxy.close();
    }
  });

  it("a re-delivery of the same file replaces it: one copy, the new bytes", async () => {
    const { config, credentials } = settings({ prefix: "redeliver" });
    await s3Adapter.deliver(Readable.from([Buffer.from("first")]), "r.csv.pgp", meta, config, credentials);
    await s3Adapter.deliver(Readable.from([Buffer.from("second")]), "r.csv.pgp", meta, config, credentials);
    expect(await keysUnder("redeliver/")).toEqual(["redeliver/r.csv.pgp"]);
    expect((await readObject("redeliver/r.csv.pgp")).toString()).toBe("second");
  });
});

describe("the test server's multipart listing", () => {
  it("sees an upload that was started and not finished, until it is aborted", async () => {
    const started = await client.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: "listing/probe" }));
    expect((await client.send(new ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: "listing/" }))).Uploads?.map((u) => u.Key)).toEqual(["listing/probe"]);
    await client.send(new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: "listing/probe", UploadId: started.UploadId }));
    expect((await client.send(new ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: "listing/" }))).Uploads ?? []).toEqual([]);
  });
});

describe("s3 settings", () => {
  it("normalises the prefix and keeps secrets out of the config", () => {
    expect(s3ConfigSchema.parse({ bucket: "my-bucket", prefix: "/a/b/" }).prefix).toBe("a/b/");
    expect(s3ConfigSchema.parse({ bucket: "my-bucket" }).prefix).toBe("");
    expect(s3ConfigSchema.safeParse({ bucket: "my-bucket", prefix: "a/../b" }).success).toBe(false);
    expect(s3ConfigSchema.safeParse({ bucket: "Bad_Bucket" }).success).toBe(false);
    expect(s3ConfigSchema.safeParse({ bucket: "my-bucket", kmsKeyId: "k" }).success).toBe(false);
    expect(s3ConfigSchema.safeParse({ bucket: "my-bucket", serverSideEncryption: "aws:kms", kmsKeyId: "k" }).success).toBe(true);
    expect(s3CredentialsSchema.safeParse({ accessKeyId: "a" }).success).toBe(false);
  });

  it("verifies at the bucket root when there is no prefix", async () => {
    await client.send(new CreateBucketCommand({ Bucket: "created-later" }));
    const { config, credentials } = settings({ bucket: "created-later", prefix: "" });
    expect(await s3Adapter.verify(config, credentials)).toMatchObject({ ok: true });
  });
});

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A TCP proxy that cuts any connection once it has carried more than `cutAbove` request bytes. */
async function startCuttingProxy(targetPort: number): Promise<{ port: number; cutAbove: number; cuts: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const state = {
    port: 0,
    cutAbove: Infinity,
    cuts: 0,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
  const server: Server = createServer((downstream) => {
    const target = connect(targetPort, "127.0.0.1");
    sockets.add(downstream).add(target);
    let carried = 0;
    downstream.on("data", (chunk: Buffer) => {
      carried += chunk.length;
      if (carried > state.cutAbove) {
        state.cuts += 1;
        downstream.destroy();
        target.destroy();
        return;
      }
      target.write(chunk);
    });
    target.pipe(downstream);
    const drop = () => {
      downstream.destroy();
      target.destroy();
      sockets.delete(downstream);
      sockets.delete(target);
    };
    downstream.on("error", drop).on("close", drop);
    target.on("error", drop).on("close", drop);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  state.port = (server.address() as { port: number }).port;
  return state;
}
