import { createHash, randomBytes } from "node:crypto";
import { createServer as createHttpServer, request as httpRequest } from "node:http";
import type { IncomingHttpHeaders } from "node:http";
import { connect, createServer } from "node:net";
import { hostname } from "node:os";
import type { Server, Socket } from "node:net";
import { PassThrough, Readable } from "node:stream";
import {
  AbortMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import type { S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BlockedEndpointError, createS3Adapter, DestinationError, resolvePublicAddresses, s3Adapter as productionAdapter, s3ConfigSchema, s3ConfigSchemaFor, s3CredentialsSchema } from "../src/index.js";
import type { S3Config, S3Credentials } from "../src/index.js";
import { startS3rver } from "./support/s3rver.js";
import type { S3rverHandle } from "./support/s3rver.js";

const MIB = 1024 * 1024;
const BUCKET = "deliveries";
const meta = { tenantId: "tenant-1", runId: "run-1" };
/** The tests' servers listen on loopback: the adapter as tests, the demo and the simulator run it. */
const s3Adapter = createS3Adapter({ allowInsecureEndpoints: true });

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

  it("a key that may write and delete but not read reports permission and leaves no probe behind", async () => {
    // A drop bucket: s3:PutObject and s3:DeleteObject, no s3:GetObject. s3rver has no policies,
    // so a proxy refuses the probe's read-back the way S3 does (403, no body for HEAD).
    const proxy = await startProxy(s3.port, { refuse: (method, url) => (method === "HEAD" || method === "GET") && url.includes(".transporter-probe-") });
    try {
      const { config, credentials } = settings({ prefix: "drop-box", endpoint: proxy.endpoint });
      const seen = s3.requests.length;
      const error = await verifyError(config, credentials);
      expect(error.code).toBe("permission");
      expect(error.permanent).toBe(true);
      expect(error.message).toContain("reading the probe object back");
      expect(proxy.refused).toEqual([expect.objectContaining({ method: "HEAD" })]);
      const sent = s3.requests.slice(seen);
      expect(sent.map((r) => r.method)).toEqual(["PUT", "DELETE"]);
      expect(await keysUnder("drop-box/")).toEqual([]);
    } finally {
      await proxy.close();
    }
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

  it.each([
    ["a single PUT", 100_000, 60_000],
    ["a multipart upload", 12 * MIB, 11 * MIB],
    ["a file longer than expected", 100_000, 150_000],
  ])("a delivery of the wrong size (%s) fails before it completes, and the earlier file stays", async (_label, expected, sent) => {
    const prefix = `keep-old-${expected}-${sent}`;
    const { config, credentials } = settings({ prefix, partSizeBytes: 5 * MIB });
    const good = randomBytes(expected);
    await s3Adapter.deliver(streamOf(good), "r.csv.pgp", { ...meta, expectedBytes: expected }, config, credentials);
    const attempt = s3Adapter.deliver(streamOf(randomBytes(sent)), "r.csv.pgp", { ...meta, expectedBytes: expected }, config, credentials);
    await expect(attempt).rejects.toMatchObject({ code: "verification_failed", message: expect.stringContaining("nothing was written") });
    const kept = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: `${prefix}/r.csv.pgp` }));
    expect(Buffer.from(await kept.Body!.transformToByteArray()).equals(good)).toBe(true);
    expect(await lingeringUploads()).toEqual([]);
  }, 120_000);

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

  it("a source its feeder stops with a plain destroy() (no error) mid-upload fails the delivery instead of waiting for ever, and leaves no object and no parts", async () => {
    const { config, credentials } = settings({ prefix: "stopped-source", partSizeBytes: 5 * MIB });
    const body = new PassThrough();
    body.write(randomBytes(12 * MIB));
    setTimeout(() => body.destroy(), 100);
    const settled = await Promise.race([
      s3Adapter.deliver(body, "report.csv.pgp", meta, config, credentials).then(() => "delivered", (error: Error) => error.message),
      new Promise((resolve) => setTimeout(() => resolve("still waiting"), 15_000)),
    ]);
    expect(settled).toMatch(/premature close/i);
    expect(await keysUnder("stopped-source/")).toEqual([]);
    expect(await lingeringUploads()).toEqual([]);
  }, 30_000);

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

  it("takes only credentials an HTTP header can carry: printable ASCII, no line breaks", () => {
    const good = { accessKeyId: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY" };
    expect(s3CredentialsSchema.safeParse(good).success).toBe(true);
    // S3-compatible stores allow more than AWS's letters and digits; a secret is never sent, so it may hold a space.
    expect(s3CredentialsSchema.safeParse({ accessKeyId: "minio-user_1.@", secretAccessKey: "pass word+/=", sessionToken: "eyJhbGciOi.JIUzI1NiJ9-_/+=" }).success).toBe(true);
    const refused: Array<[Record<string, string>, string]> = [
      [{ accessKeyId: "AKIA\u{1F600}" }, "accessKeyId"],
      [{ accessKeyId: "AKIA\nX" }, "accessKeyId"],
      [{ accessKeyId: "AKIA X" }, "accessKeyId"],
      [{ accessKeyId: "AKIA\u00e9" }, "accessKeyId"],
      [{ secretAccessKey: "secret\r\nX-Evil: 1" }, "secretAccessKey"],
      [{ secretAccessKey: "secret\u0085" }, "secretAccessKey"],
      [{ secretAccessKey: "s\u00e9cret" }, "secretAccessKey"],
      [{ sessionToken: "tok\r\nX-Evil: 1" }, "sessionToken"],
      [{ sessionToken: "tok en" }, "sessionToken"],
      [{ sessionToken: "tok\u2028" }, "sessionToken"],
    ];
    for (const [override, field] of refused) {
      const result = s3CredentialsSchema.safeParse({ ...good, ...override });
      expect(result.success, JSON.stringify(override)).toBe(false);
      expect(result.error?.issues.map((issue) => issue.path.join("."))).toEqual([field]);
    }
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

describe("s3 etag check follows the store's encryption", () => {
  // s3rver has no KMS: a proxy in front of it answers as a bucket with default SSE-KMS (or an
  // SSE-C object) does, with an ETag that is not the MD5 of the bytes.
  it.each([
    ["bucket default SSE-KMS", { "x-amz-server-side-encryption": "aws:kms" }],
    ["bucket default DSSE-KMS", { "x-amz-server-side-encryption": "aws:kms:dsse" }],
    ["SSE-C", { "x-amz-server-side-encryption-customer-algorithm": "AES256" }],
  ])("a single-part delivery to %s succeeds, verified by size", async (_label, encryptionHeaders) => {
    const proxy = await startProxy(s3.port, {
      rewrite: (method, url, headers) => {
        if ((method === "PUT" && !url.includes("partNumber=")) || method === "HEAD") {
          Object.assign(headers, encryptionHeaders, { etag: `"${randomBytes(16).toString("hex")}"` });
        }
      },
    });
    try {
      // The tenant configured no encryption at all.
      const { config, credentials } = settings({ prefix: "kms-default", endpoint: proxy.endpoint });
      const data = randomBytes(100_000);
      const result = await s3Adapter.deliver(Readable.from([data]), "small.csv.pgp", meta, config, credentials);
      expect(result).toMatchObject({ bytes: data.length, checksum: sha256(data), notes: ["size verified; the store gives no whole-object MD5 for this upload"] });
      expect((await readObject(result.path)).equals(data)).toBe(true);
    } finally {
      await proxy.close();
    }
  });

  it("still refuses a single-part upload whose plain ETag differs from the MD5 sent", async () => {
    const proxy = await startProxy(s3.port, {
      rewrite: (method, _url, headers) => {
        if (method === "HEAD") headers.etag = `"${randomBytes(16).toString("hex")}"`;
      },
    });
    try {
      const { config, credentials } = settings({ prefix: "bad-etag", endpoint: proxy.endpoint });
      const attempt = s3Adapter.deliver(Readable.from([randomBytes(1000)]), "x.csv.pgp", meta, config, credentials);
      await expect(attempt).rejects.toMatchObject({ code: "verification_failed" });
      expect(await keysUnder("bad-etag/")).toEqual([]);
    } finally {
      await proxy.close();
    }
  });
});

describe("s3 verify when the probe's reply is lost", () => {
  it("deletes the probe all the same: a PUT the store kept, whose answer never arrived, leaves nothing behind", async () => {
    // A store that keeps the PUT's object, then loses the connection instead of answering.
    const stored = new Set<string>();
    const seen: string[] = [];
    const server = createHttpServer((req, res) => {
      const path = decodeURIComponent(new URL(req.url ?? "/", "http://store").pathname);
      seen.push(`${req.method} ${path}`);
      req.resume();
      req.on("end", () => {
        if (req.method === "PUT") {
          stored.add(path);
          req.socket.destroy();
        } else if (req.method === "DELETE") {
          stored.delete(path);
          res.writeHead(204).end();
        } else {
          res.writeHead(400).end();
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const { config, credentials } = settings({ prefix: "lost-reply", endpoint: `http://127.0.0.1:${(server.address() as { port: number }).port}` });
      const result = await s3Adapter.verify(config, credentials);
      expect(result).toMatchObject({ ok: false, error: { code: "connect", permanent: false } });
      expect([...stored]).toEqual([]);
      expect(seen.map((request) => request.split(" ")[0])).toEqual(["PUT", "DELETE"]);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe("s3 errors the store answers", () => {
  /** The verify error against an endpoint that answers every request with this S3 error. */
  async function verifyErrorFrom(status: number, code: string, message: string): Promise<DestinationError> {
    const server = createHttpServer((req, res) => {
      req.resume();
      req.on("end", () => {
        res.writeHead(status, { "content-type": "application/xml" });
        res.end(`<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message><RequestId>1</RequestId></Error>`);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const { config, credentials } = settings({ endpoint: `http://127.0.0.1:${(server.address() as { port: number }).port}` });
      return await verifyError(config, credentials);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  }

  it("reports RequestTimeTooSkewed (a 403) as a retryable clock problem, not access denied", async () => {
    const error = await verifyErrorFrom(403, "RequestTimeTooSkewed", "The difference between the request time and the current time is too large.");
    expect(error.code).toBe("timeout");
    expect(error.permanent).toBe(false);
    expect(error.message).toContain("clock");
    expect(error.message).not.toContain("access denied");
  });

  it("reports a request signed for another region (AuthorizationHeaderMalformed naming it) as the bucket's region, not a bad key", async () => {
    const error = await verifyErrorFrom(400, "AuthorizationHeaderMalformed", "The authorization header is malformed; the region 'us-east-1' is wrong; expecting 'eu-west-1'");
    expect(error).toMatchObject({ code: "not_found", permanent: true, message: expect.stringContaining("set the bucket's region") });
    expect(error.message).not.toContain("access key");
    // Malformed for another reason: the key's side.
    expect((await verifyErrorFrom(400, "AuthorizationHeaderMalformed", "The authorization header is malformed; a non-empty Access Key (AKID) must be provided in the credential.")).code).toBe("auth");
  });
});

describe("s3 multipart uploads left by a crashed attempt", () => {
  it("are aborted when the next attempt delivers", async () => {
    const key = "crashed/report.csv.pgp";
    // A worker killed mid-upload: the upload was started and a part sent, nothing aborted it.
    const started = await client.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key }));
    await client.send(new UploadPartCommand({ Bucket: BUCKET, Key: key, UploadId: started.UploadId, PartNumber: 1, Body: randomBytes(5 * MIB) }));
    // Another file's unfinished upload under the same prefix is not this delivery's to abort.
    const other = await client.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: `${key}.other` }));
    const uploadsOf = async (k: string) => ((await client.send(new ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: "crashed/" }))).Uploads ?? []).filter((u) => u.Key === k);
    expect(await uploadsOf(key)).toHaveLength(1);

    const { config, credentials } = settings({ prefix: "crashed" });
    const data = randomBytes(1000);
    const result = await s3Adapter.deliver(Readable.from([data]), "report.csv.pgp", meta, config, credentials);
    expect(result.path).toBe(key);
    expect((await readObject(key)).equals(data)).toBe(true);
    expect(await uploadsOf(key)).toEqual([]);
    expect(await uploadsOf(`${key}.other`)).toHaveLength(1);
    await client.send(new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: `${key}.other`, UploadId: other.UploadId }));
  });
});

describe("s3 endpoint with credentials in it", () => {
  // Settings are not secret: viewer keys read them and audit events record them.
  it.each(["https://AKIAEXAMPLE:secret@s3.example.com/", "https://AKIAEXAMPLE@s3.example.com", "https://:secret@s3.example.com"])("refuses %s under either policy, saying where credentials go", (endpoint) => {
    for (const schema of [s3ConfigSchema, s3ConfigSchemaFor({ allowInsecureEndpoints: false }), s3ConfigSchemaFor({ allowInsecureEndpoints: true })]) {
      const result = schema.safeParse({ bucket: "my-bucket", endpoint });
      expect(result.success).toBe(false);
      expect(result.error?.issues).toEqual([expect.objectContaining({ path: ["endpoint"], message: expect.stringContaining("credentials belong in the credentials fields") })]);
    }
  });

  it("accepts an endpoint without them", () => {
    expect(s3ConfigSchemaFor({ allowInsecureEndpoints: false }).safeParse({ bucket: "my-bucket", endpoint: "https://s3.eu-central-1.wasabisys.com" }).success).toBe(true);
  });
});

describe("s3 memory bounds", () => {
  it("refuses part sizes that would hold too much in memory, or less than S3's minimum", () => {
    expect(s3ConfigSchema.safeParse({ bucket: "my-bucket", partSizeBytes: 64 * MIB }).success).toBe(true);
    const tooBig = s3ConfigSchema.safeParse({ bucket: "my-bucket", partSizeBytes: 64 * MIB + 1 });
    expect(tooBig.success).toBe(false);
    expect(tooBig.error?.issues[0]).toMatchObject({ path: ["partSizeBytes"], message: expect.stringContaining("at most 64 MiB") });
    expect(s3ConfigSchema.safeParse({ bucket: "my-bucket", partSizeBytes: 512 * MIB }).success).toBe(false);
    expect(s3ConfigSchema.safeParse({ bucket: "my-bucket", partSizeBytes: 5 * MIB - 1 }).success).toBe(false);
  });
});

describe("s3 endpoints without ALLOW_INSECURE_ENDPOINTS", () => {
  const secure = s3ConfigSchemaFor({ allowInsecureEndpoints: false });

  it("refuses plain http and hosts in this service's own network when settings are saved", () => {
    for (const endpoint of ["http://s3.example.com", "https://127.0.0.1:9000", "https://localhost", "https://[::1]", "https://169.254.169.254", "https://10.1.2.3", "https://[::ffff:127.0.0.1]"]) {
      const result = secure.safeParse({ bucket: "my-bucket", endpoint });
      expect(result.success, endpoint).toBe(false);
      expect(result.error?.issues[0]?.path, endpoint).toEqual(["endpoint"]);
    }
    expect(secure.safeParse({ bucket: "my-bucket", endpoint: "http://s3.example.com" }).error?.issues[0]?.message).toBe("must use https");
    expect(secure.safeParse({ bucket: "my-bucket", endpoint: "https://s3.eu-central-1.wasabisys.com" }).success).toBe(true);
    expect(secure.safeParse({ bucket: "my-bucket" }).success).toBe(true);
    // With insecure endpoints allowed (tests, demo, simulator) loopback http is fine.
    expect(s3ConfigSchemaFor({ allowInsecureEndpoints: true }).safeParse({ bucket: "my-bucket", endpoint: s3.endpoint }).success).toBe(true);
  });

  it("verify and deliver refuse a loopback endpoint before sending anything", async () => {
    const { config, credentials } = settings();
    const seen = s3.requests.length;
    const result = await productionAdapter.verify(config, credentials);
    expect(result.ok).toBe(false);
    const error = (result as { error: DestinationError }).error;
    expect(error).toBeInstanceOf(BlockedEndpointError);
    expect(error).toMatchObject({ code: "connect", permanent: true, field: "config.endpoint" });
    const body = Readable.from([randomBytes(100)]);
    await expect(productionAdapter.deliver(body, "x.csv.pgp", meta, config, credentials)).rejects.toMatchObject({ code: "connect", permanent: true });
    expect(body.destroyed).toBe(true);
    expect(s3.requests.length).toBe(seen);
  });

  it("refuses a host name that resolves into this service's own network, as each connection is made", async () => {
    // This machine's own name resolves to a loopback or private address.
    const name = hostname();
    await expect(resolvePublicAddresses(name)).rejects.toMatchObject({ code: "ERR_INTERNAL_ADDRESS" });
    const seen = s3.requests.length;
    // https to s3rver's plain port: without the check the TLS handshake would fail instead.
    const { config, credentials } = settings({ endpoint: `https://${name}:${s3.port}` });
    const result = await productionAdapter.verify(config, credentials);
    expect(result).toMatchObject({ ok: false, error: { code: "connect", permanent: true, field: "config.endpoint" } });
    expect((result as { error: DestinationError }).error.message).toContain("own network");
    await expect(productionAdapter.deliver(Readable.from([randomBytes(100)]), "x.csv.pgp", meta, config, credentials)).rejects.toMatchObject({
      code: "connect",
      permanent: true,
    });
    expect(s3.requests.length).toBe(seen);
  });
});

interface ProxyRules {
  /** Requests answered 403 AccessDenied by the proxy itself, as a bucket policy would. */
  refuse?: (method: string, url: string) => boolean;
  /** Rewrites the response headers of successful answers. */
  rewrite?: (method: string, url: string, headers: IncomingHttpHeaders) => void;
}

/** An HTTP proxy to s3rver that refuses some requests itself and may rewrite response headers. */
async function startProxy(
  targetPort: number,
  rules: ProxyRules,
): Promise<{ endpoint: string; refused: Array<{ method: string; url: string }>; close(): Promise<void> }> {
  const refused: Array<{ method: string; url: string }> = [];
  const server = createHttpServer((req, res) => {
    const method = req.method ?? "GET";
    const url = req.url ?? "/";
    if (rules.refuse?.(method, url)) {
      refused.push({ method, url });
      req.resume();
      // S3 answers a refused HEAD with the status alone.
      const body = method === "HEAD" ? "" : '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code><Message>Access Denied</Message><RequestId>1</RequestId></Error>';
      res.writeHead(403, { "content-type": "application/xml", "content-length": String(Buffer.byteLength(body)) });
      res.end(body);
      return;
    }
    const upstream = httpRequest({ host: "127.0.0.1", port: targetPort, method, path: url, headers: req.headers }, (answer) => {
      const headers = { ...answer.headers };
      if ((answer.statusCode ?? 500) < 300) rules.rewrite?.(method, url, headers);
      res.writeHead(answer.statusCode ?? 502, headers);
      answer.pipe(res);
    });
    upstream.on("error", () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    refused,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
