import { createHash, randomBytes } from "node:crypto";
import { createServer } from "node:net";
import { hostname } from "node:os";
import { PassThrough, Readable } from "node:stream";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  BlockedEndpointError,
  createGcsAdapter,
  DestinationError,
  gcsAdapter as productionAdapter,
  gcsConfigSchema,
  gcsConfigSchemaFor,
  gcsCredentialsSchema,
  gcsCredentialsSchemaFor,
  gcsStorageClient,
} from "../src/index.js";
import type { GcsConfig, GcsCredentials } from "../src/index.js";
import { crc32cBase64, startGcsServer } from "./support/gcs-server.js";
import type { GcsTestServer, ServiceAccountKey } from "./support/gcs-server.js";

const MIB = 1024 * 1024;
const BUCKET = "tenant-exports";
const meta = { tenantId: "tenant-1", runId: "run-1" };
/** The test server listens on loopback: the adapter as tests, the demo and the simulator run it. */
const gcsAdapter = createGcsAdapter({ allowInsecureEndpoints: true });

let gcs: GcsTestServer;
let writer: ServiceAccountKey;

beforeAll(async () => {
  gcs = await startGcsServer();
  gcs.createBucket(BUCKET);
  writer = gcs.serviceAccount("writer");
});
afterAll(() => gcs?.stop());
afterEach(() => {
  // The server answers only the calls it knows; anything else means the client changed under us.
  expect(gcs.unrecognised).toEqual([]);
});

function settings(overrides: Record<string, unknown> = {}, key: ServiceAccountKey = writer): { config: GcsConfig; credentials: GcsCredentials } {
  return {
    config: gcsConfigSchema.parse({ bucket: BUCKET, prefix: "daily", apiEndpoint: gcs.url, resumableThresholdBytes: 4 * MIB, chunkSizeBytes: 2 * MIB, ...overrides }),
    credentials: gcsCredentialsSchema.parse({ serviceAccountKey: JSON.stringify(key) }),
  };
}

/** Reads an object back through the JSON API with the official client (alt=media). */
async function download(name: string): Promise<Buffer> {
  const { config, credentials } = settings();
  const [data] = await gcsStorageClient(config, credentials).storage.bucket(BUCKET).file(name).download();
  return data;
}

function requestsFor(name: string) {
  return gcs.requests.filter((r) => r.query.name === name || r.path.endsWith(encodeURIComponent(name)));
}

const sha256 = (data: Buffer) => createHash("sha256").update(data).digest("hex");

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

async function verifyError(config: GcsConfig, credentials: GcsCredentials): Promise<DestinationError> {
  const result = await gcsAdapter.verify(config, credentials);
  if (result.ok) throw new Error("verification unexpectedly succeeded");
  expect(result.error).toBeInstanceOf(DestinationError);
  expect(result.error.message).not.toContain("PRIVATE KEY");
  return result.error;
}

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe("gcs verify", () => {
  it("writes, reads back and deletes a probe object, with a token from the key's token_uri", async () => {
    const { config, credentials } = settings();
    const result = await gcsAdapter.verify(config, credentials);
    expect(result).toMatchObject({ ok: true });
    expect([...gcs.objects(BUCKET).keys()].filter((n) => n.startsWith("daily/"))).toEqual([]);
    expect(gcs.requests.some((r) => r.kind === "token")).toBe(true);
  });

  it("reports a missing bucket as not_found", async () => {
    const { config, credentials } = settings({ bucket: "no-such-bucket" });
    const error = await verifyError(config, credentials);
    expect(error.code).toBe("not_found");
    expect(error.message).toContain("no-such-bucket");
  });

  it("reports a key the token endpoint refuses as auth", async () => {
    const stranger = gcs.serviceAccount("writer");
    const { privateKey } = await import("node:crypto").then((c) => c.generateKeyPairSync("rsa", { modulusLength: 2048 }));
    const forged = { ...stranger, private_key: privateKey.export({ type: "pkcs8", format: "pem" }).toString() };
    const { config, credentials } = settings({}, forged);
    const error = await verifyError(config, credentials);
    expect(error.code).toBe("auth");
    expect(error.permanent).toBe(true);
  });

  it("reports a read-only service account as permission", async () => {
    const { config, credentials } = settings({}, gcs.serviceAccount("reader"));
    const error = await verifyError(config, credentials);
    expect(error.code).toBe("permission");
    expect(error.permanent).toBe(true);
  });

  it("a service account that may write and delete but not read reports permission and leaves no probe behind", async () => {
    // A drop bucket: storage.objects.create and delete, no get. The probe is written, reading its
    // metadata is refused, and the probe is deleted all the same.
    const { config, credentials } = settings({ prefix: "drop-box" }, gcs.serviceAccount("writeOnly"));
    const seen = gcs.requests.length;
    const error = await verifyError(config, credentials);
    expect(error.code).toBe("permission");
    expect(error.permanent).toBe(true);
    expect(error.message).toContain("reading the probe object's metadata");
    const sent = gcs.requests.slice(seen).map((r) => r.kind);
    expect(sent).toEqual(expect.arrayContaining(["upload.multipart", "object.get", "object.delete"]));
    expect([...gcs.objects(BUCKET).keys()].filter((n) => n.startsWith("drop-box/"))).toEqual([]);
  });

  it("a probe whose upload reply is lost after the object was stored is deleted all the same", async () => {
    const { config, credentials } = settings({ prefix: "lost-reply" });
    gcs.loseUploadReplies(1);
    const seen = gcs.requests.length;
    const error = await verifyError(config, credentials);
    expect(error.code).toBe("connect");
    expect([...gcs.objects(BUCKET).keys()].filter((n) => n.startsWith("lost-reply/"))).toEqual([]);
    expect(gcs.requests.slice(seen).map((r) => r.kind)).toEqual(["token", "upload.multipart", "object.delete"]);
  });

  it("reports a closed port as connect and an unresolvable host as dns", async () => {
    const port = await closedPort();
    const refused = settings({ apiEndpoint: `http://127.0.0.1:${port}` }, { ...writer, token_uri: `http://127.0.0.1:${port}/token` });
    const connectError = await verifyError(refused.config, refused.credentials);
    expect(connectError.code).toBe("connect");
    expect(connectError.permanent).toBe(false);

    const unresolvable = settings({ apiEndpoint: "http://storage.transporter-test.invalid" }, { ...writer, token_uri: "http://oauth.transporter-test.invalid/token" });
    const dnsError = await verifyError(unresolvable.config, unresolvable.credentials);
    expect(dnsError.code).toBe("dns");
  });
});

describe("gcs deliver", () => {
  it("delivers a 50 MB file as a resumable upload in chunks, byte-identical, verified by MD5 and CRC32C", async () => {
    const { config, credentials } = settings({ chunkSizeBytes: 8 * MIB });
    const data = randomBytes(50 * MIB);
    const name = "daily/2026/11/22/big.csv.pgp";
    const result = await gcsAdapter.deliver(streamOf(data), "big.csv.pgp", { ...meta, subfolder: "2026/11/22", expectedBytes: data.length }, config, credentials);
    expect(result).toMatchObject({ path: name, bytes: data.length, checksum: sha256(data), notes: [] });

    const sent = requestsFor(name);
    expect(sent.filter((r) => r.kind === "upload.resumable.start")).toHaveLength(1);
    expect(sent.filter((r) => r.kind === "upload.resumable.chunk").length).toBe(7); // 50 MiB in 8 MiB chunks
    expect(sent.some((r) => r.kind === "upload.multipart")).toBe(false);
    expect(gcs.objects(BUCKET).get(name)?.data.equals(data)).toBe(true);
    expect((await download(name)).equals(data)).toBe(true);
    expect(gcs.openSessions()).toBe(0);
  });

  it("delivers a small file and an empty file in one multipart request each", async () => {
    const { config, credentials } = settings();
    const data = randomBytes(100_000);
    const small = await gcsAdapter.deliver(Readable.from([data]), "small.json.pgp", { ...meta, contentType: "application/pgp-encrypted" }, config, credentials);
    expect(small).toMatchObject({ path: "daily/small.json.pgp", bytes: data.length, checksum: sha256(data) });
    expect(requestsFor("daily/small.json.pgp").map((r) => r.kind)).toEqual(["upload.multipart", "object.get"]);
    expect(gcs.objects(BUCKET).get("daily/small.json.pgp")?.contentType).toBe("application/pgp-encrypted");
    expect((await download("daily/small.json.pgp")).equals(data)).toBe(true);

    const empty = await gcsAdapter.deliver(Readable.from([]), "empty.csv.pgp", meta, config, credentials);
    expect(empty).toMatchObject({ path: "daily/empty.csv.pgp", bytes: 0, checksum: sha256(Buffer.alloc(0)) });
    expect(gcs.objects(BUCKET).get("daily/empty.csv.pgp")?.data.length).toBe(0);
    expect((await download("daily/empty.csv.pgp")).length).toBe(0);
  });

  it("a connection cut mid-chunk is resumed from the server's offset: one complete object", async () => {
    const { config, credentials } = settings({ prefix: "resumed" });
    const data = randomBytes(9 * MIB);
    gcs.cutUploads({ afterBytes: 1 * MIB, times: 1 });
    const result = await gcsAdapter.deliver(streamOf(data), "report.csv.pgp", meta, config, credentials);
    const sent = requestsFor("resumed/report.csv.pgp");
    expect(sent.some((r) => r.kind === "upload.resumable.chunk" && !r.completed)).toBe(true);
    expect(sent.filter((r) => r.kind === "upload.resumable.start")).toHaveLength(1);
    expect(result.bytes).toBe(data.length);
    expect((await download(result.path)).equals(data)).toBe(true);
    expect([...gcs.objects(BUCKET).keys()].filter((n) => n.startsWith("resumed/"))).toEqual(["resumed/report.csv.pgp"]);
  });

  it("a source failing mid-upload leaves no visible object; the retry delivers one copy", async () => {
    const { config, credentials } = settings({ prefix: "cut-source" });
    const data = randomBytes(10 * MIB);
    await expect(gcsAdapter.deliver(streamOf(data, 6 * MIB), "report.csv.pgp", meta, config, credentials)).rejects.toThrow("staging read cut mid-stream");
    expect([...gcs.objects(BUCKET).keys()].filter((n) => n.startsWith("cut-source/"))).toEqual([]);

    const result = await gcsAdapter.deliver(streamOf(data), "report.csv.pgp", meta, config, credentials);
    expect([...gcs.objects(BUCKET).keys()].filter((n) => n.startsWith("cut-source/"))).toEqual(["cut-source/report.csv.pgp"]);
    expect((await download(result.path)).equals(data)).toBe(true);
  });

  it("a body that fails while the endpoint is checked: the delivery rejects with its error at once, nothing uncaught, nothing visible", async () => {
    const { config, credentials } = settings({ prefix: "early-source" });
    const body = new PassThrough();
    const delivery = gcsAdapter.deliver(body, "report.csv.pgp", meta, config, credentials);
    body.destroy(new Error("staging read failed at once"));
    await expect(delivery).rejects.toThrow("staging read failed at once");
    expect([...gcs.objects(BUCKET).keys()].filter((n) => n.startsWith("early-source/"))).toEqual([]);
  });

  it("connections cut on every attempt fail the delivery with nothing visible; the retry delivers one copy", async () => {
    const { config, credentials } = settings({ prefix: "cut-network" });
    const data = randomBytes(6 * MIB);
    gcs.cutUploads({ afterBytes: 512 * 1024, times: 100 });
    await expect(gcsAdapter.deliver(streamOf(data), "report.csv.pgp", meta, config, credentials)).rejects.toMatchObject({ name: "DestinationError", code: "connect", permanent: false });
    expect([...gcs.objects(BUCKET).keys()].filter((n) => n.startsWith("cut-network/"))).toEqual([]);

    gcs.cutUploads({ afterBytes: 0, times: 0 });
    const result = await gcsAdapter.deliver(streamOf(data), "report.csv.pgp", meta, config, credentials);
    expect([...gcs.objects(BUCKET).keys()].filter((n) => n.startsWith("cut-network/"))).toEqual(["cut-network/report.csv.pgp"]);
    expect((await download(result.path)).equals(data)).toBe(true);
  }, 120_000);
});

describe("gcs deliver checks", () => {
  it("refuses a file of another size than expected and removes it", async () => {
    const { config, credentials } = settings({ prefix: "size-check" });
    const attempt = gcsAdapter.deliver(Readable.from([randomBytes(1000)]), "short.csv.pgp", { ...meta, expectedBytes: 2000 }, config, credentials);
    await expect(attempt).rejects.toMatchObject({ code: "verification_failed" });
    expect([...gcs.objects(BUCKET).keys()].filter((n) => n.startsWith("size-check/"))).toEqual([]);
  });

  it.each([
    ["small (multipart)", 100_000, 60_000],
    ["large (resumable)", 5 * MIB, 4 * MIB],
    ["longer than expected", 100_000, 150_000],
  ])("a delivery of the wrong size (%s) fails before it is finalised, and the earlier object stays", async (_label, expected, sent) => {
    const prefix = `keep-old-${expected}-${sent}`;
    const { config, credentials } = settings({ prefix });
    const good = randomBytes(expected);
    await gcsAdapter.deliver(streamOf(good), "r.csv.pgp", { ...meta, expectedBytes: expected }, config, credentials);
    const attempt = gcsAdapter.deliver(streamOf(randomBytes(sent)), "r.csv.pgp", { ...meta, expectedBytes: expected }, config, credentials);
    await expect(attempt).rejects.toMatchObject({ code: "verification_failed", message: expect.stringContaining("nothing was written") });
    expect(gcs.objects(BUCKET).get(`${prefix}/r.csv.pgp`)?.data.equals(good)).toBe(true);
  }, 120_000);

  it("an upload session that expires mid-upload (404) is a retryable failure, not a missing bucket; the retry delivers", async () => {
    const { config, credentials } = settings({ prefix: "expired-session", resumableThresholdBytes: 1 * MIB, chunkSizeBytes: 1 * MIB });
    const data = randomBytes(5 * MIB);
    gcs.expireNextSession(1);
    const error = (await gcsAdapter.deliver(streamOf(data), "r.csv.pgp", meta, config, credentials).catch((e: unknown) => e)) as DestinationError;
    expect(error).toBeInstanceOf(DestinationError);
    expect(error.permanent).toBe(false);
    expect(error.message).not.toMatch(/does not exist/);
    const result = await gcsAdapter.deliver(streamOf(data), "r.csv.pgp", meta, config, credentials);
    expect(gcs.objects(BUCKET).get(result.path)?.data.equals(data)).toBe(true);
  }, 60_000);

  it.each([
    ["small (multipart)", 100_000],
    ["large (resumable)", 5 * MIB],
  ])("a %s object stored with other bytes than sent is reported and removed", async (_label, size) => {
    const { config, credentials } = settings({ prefix: `corrupt-${size}` });
    gcs.corruptNextObject();
    const attempt = gcsAdapter.deliver(streamOf(randomBytes(size)), "c.csv.pgp", meta, config, credentials);
    await expect(attempt).rejects.toMatchObject({ code: "verification_failed" });
    expect([...gcs.objects(BUCKET).keys()].filter((n) => n.startsWith(`corrupt-${size}/`))).toEqual([]);
  });
});

describe("gcs token refused with invalid_grant", () => {
  // Google's words for a JWT whose iat/exp fall outside its window: the worker's clock, not the key.
  const SKEWED = "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.";

  it("a token refused for its time claims fails verify and deliver as retryable, naming the clock, with nothing sent past the token", async () => {
    const { config, credentials } = settings({ prefix: "skewed-clock" });
    let seen = gcs.requests.length;
    gcs.refuseTokens({ error: "invalid_grant", description: SKEWED, times: 1 });
    const verifyFailure = await verifyError(config, credentials);
    expect(verifyFailure).toMatchObject({ code: "timeout", permanent: false });
    expect(verifyFailure.message).toMatch(/clock and Google's differ too much/);
    expect(verifyFailure.message).not.toMatch(/key was refused|iat|short-lived/);
    expect(gcs.requests.slice(seen).map((r) => r.kind)).toEqual(["token"]);

    seen = gcs.requests.length;
    gcs.refuseTokens({ error: "invalid_grant", description: SKEWED, times: 1 });
    const delivery = gcsAdapter.deliver(streamOf(randomBytes(1024)), "report.csv.pgp", meta, config, credentials);
    await expect(delivery).rejects.toMatchObject({ name: "DestinationError", code: "timeout", permanent: false, message: expect.stringMatching(/clock and Google's differ too much/) });
    expect(gcs.requests.slice(seen).map((r) => r.kind)).toEqual(["token"]);
    expect([...gcs.objects(BUCKET).keys()].filter((n) => n.startsWith("skewed-clock/"))).toEqual([]);

    // The clock put right: the same key delivers.
    await expect(gcsAdapter.deliver(streamOf(randomBytes(1024)), "report.csv.pgp", meta, config, credentials)).resolves.toBeDefined();
  });

  it("a token refused as an invalid signature is still a permanent auth error about the key", async () => {
    const { config, credentials } = settings({ prefix: "bad-signature" });
    gcs.refuseTokens({ error: "invalid_grant", description: "Invalid JWT Signature.", times: 1 });
    const verifyFailure = await verifyError(config, credentials);
    expect(verifyFailure).toMatchObject({ code: "auth", permanent: true });
    expect(verifyFailure.message).toContain("the service account key was refused");

    gcs.refuseTokens({ error: "invalid_grant", description: "Invalid JWT Signature.", times: 1 });
    await expect(gcsAdapter.deliver(streamOf(randomBytes(1024)), "report.csv.pgp", meta, config, credentials)).rejects.toMatchObject({
      name: "DestinationError",
      code: "auth",
      permanent: true,
      message: expect.stringContaining("the service account key was refused"),
    });
  });
});

describe("the test server", () => {
  it("computes crc32c as Google does (RFC 3720 test vector)", () => {
    // 32 bytes of zeros → 0x8A9136AA (iSCSI CRC32C check value).
    expect(Buffer.from(crc32cBase64(Buffer.alloc(32)), "base64").toString("hex")).toBe("8a9136aa");
  });
});

describe("gcs settings", () => {
  it("accepts the key as JSON text or object and refuses a key that is not a service account", () => {
    expect(gcsCredentialsSchema.safeParse({ serviceAccountKey: writer }).success).toBe(true);
    expect(gcsCredentialsSchema.safeParse({ serviceAccountKey: "{not json" }).success).toBe(false);
    expect(gcsCredentialsSchema.safeParse({ serviceAccountKey: { ...writer, type: "authorized_user" } }).success).toBe(false);
    expect(gcsConfigSchema.safeParse({ bucket: BUCKET, chunkSizeBytes: 1000 }).success).toBe(false);
    expect(gcsConfigSchema.parse({ bucket: BUCKET, prefix: "/a/b" }).prefix).toBe("a/b/");
  });
});

describe("gcs service account key fields", () => {
  const keyFile = () => ({
    ...writer,
    auth_uri: "https://accounts.google.com/o/oauth2/auth",
    token_uri: "https://oauth2.googleapis.com/token",
    auth_provider_x509_cert_url: "https://www.googleapis.com/oauth2/v1/certs",
    client_x509_cert_url: "https://www.googleapis.com/robot/v1/metadata/x509/w",
    universe_domain: "googleapis.com",
  });

  it("keeps the fields of a key file and drops any other, as an object or as JSON text", () => {
    const deep = JSON.parse(`${"[".repeat(20_000)}${"]".repeat(20_000)}`) as unknown;
    for (const serviceAccountKey of [{ ...keyFile(), note: deep, other: "x" }, JSON.stringify({ ...keyFile(), note: "x" }).replace('"x"', `${"[".repeat(20_000)}${"]".repeat(20_000)}`)]) {
      const parsed = gcsCredentialsSchema.parse({ serviceAccountKey });
      expect(parsed.serviceAccountKey).toEqual(keyFile());
      // What is kept can be sealed: it serialises without running out of stack.
      expect(() => JSON.stringify(parsed)).not.toThrow();
    }
  });

  it("refuses a key file field that is not text, naming it", () => {
    for (const field of ["client_id", "project_id", "universe_domain", "auth_uri"]) {
      const result = gcsCredentialsSchema.safeParse({ serviceAccountKey: { ...keyFile(), [field]: [[["x"]]] } });
      expect(result.success, field).toBe(false);
      expect(result.error?.issues[0]?.path, field).toEqual(["serviceAccountKey", field]);
    }
  });
});

describe("gcs apiEndpoint with credentials in it", () => {
  // Settings are not secret: viewer keys read them and audit events record them.
  it.each(["https://user:secret@storage.example.com/", "https://user@storage.example.com", "https://:secret@storage.example.com"])("refuses %s under either policy, saying where credentials go", (apiEndpoint) => {
    for (const schema of [gcsConfigSchema, gcsConfigSchemaFor({ allowInsecureEndpoints: false }), gcsConfigSchemaFor({ allowInsecureEndpoints: true })]) {
      const result = schema.safeParse({ bucket: BUCKET, apiEndpoint });
      expect(result.success).toBe(false);
      expect(result.error?.issues).toEqual([expect.objectContaining({ path: ["apiEndpoint"], message: expect.stringContaining("credentials belong in the credentials fields") })]);
    }
  });

  it("accepts an endpoint without them", () => {
    expect(gcsConfigSchemaFor({ allowInsecureEndpoints: false }).safeParse({ bucket: BUCKET, apiEndpoint: "https://storage.example.com/" }).success).toBe(true);
  });
});

describe("gcs memory bounds", () => {
  it("refuses a resumable threshold or chunk size that would hold too much in memory", () => {
    expect(gcsConfigSchema.safeParse({ bucket: BUCKET, resumableThresholdBytes: 32 * MIB }).success).toBe(true);
    const threshold = gcsConfigSchema.safeParse({ bucket: BUCKET, resumableThresholdBytes: 1e13 });
    expect(threshold.success).toBe(false);
    expect(threshold.error?.issues[0]).toMatchObject({ path: ["resumableThresholdBytes"], message: expect.stringContaining("at most 32 MiB") });
    expect(gcsConfigSchema.safeParse({ bucket: BUCKET, resumableThresholdBytes: 32 * MIB + 1 }).success).toBe(false);

    expect(gcsConfigSchema.safeParse({ bucket: BUCKET, chunkSizeBytes: 64 * MIB }).success).toBe(true);
    const chunk = gcsConfigSchema.safeParse({ bucket: BUCKET, chunkSizeBytes: 1024 * MIB });
    expect(chunk.success).toBe(false);
    expect(chunk.error?.issues[0]).toMatchObject({ path: ["chunkSizeBytes"], message: expect.stringContaining("at most 64 MiB") });
    expect(gcsConfigSchema.safeParse({ bucket: BUCKET, chunkSizeBytes: 64 * MIB + 256 * 1024 }).success).toBe(false);
  });
});

describe("gcs endpoints without ALLOW_INSECURE_ENDPOINTS", () => {
  const secureConfig = gcsConfigSchemaFor({ allowInsecureEndpoints: false });
  const secureCredentials = gcsCredentialsSchemaFor({ allowInsecureEndpoints: false });

  it("refuses plain http and internal hosts for apiEndpoint and token_uri when settings are saved", () => {
    for (const apiEndpoint of ["http://storage.example.com", "https://127.0.0.1:4443", "https://localhost", "https://169.254.169.254", "https://[fd00::1]"]) {
      const result = secureConfig.safeParse({ bucket: BUCKET, apiEndpoint });
      expect(result.success, apiEndpoint).toBe(false);
      expect(result.error?.issues[0]?.path, apiEndpoint).toEqual(["apiEndpoint"]);
    }
    expect(secureConfig.safeParse({ bucket: BUCKET, apiEndpoint: "https://storage.example.com" }).success).toBe(true);
    expect(secureConfig.safeParse({ bucket: BUCKET }).success).toBe(true);

    // The token endpoint receives a signed JWT: never in clear, never inside our network.
    for (const token_uri of ["http://oauth2.example.com/token", "https://127.0.0.1/token", "https://192.168.1.1/token"]) {
      const result = secureCredentials.safeParse({ serviceAccountKey: { ...writer, token_uri } });
      expect(result.success, token_uri).toBe(false);
      expect(result.error?.issues[0]?.path, token_uri).toEqual(["serviceAccountKey", "token_uri"]);
    }
    expect(secureCredentials.safeParse({ serviceAccountKey: { ...writer, token_uri: "https://oauth2.googleapis.com/token" } }).success).toBe(true);
  });

  it("verify and deliver refuse a loopback apiEndpoint or token_uri before sending anything", async () => {
    const { config, credentials } = settings();
    const seen = gcs.requests.length;
    const result = await productionAdapter.verify(config, credentials);
    expect(result.ok).toBe(false);
    const error = (result as { error: DestinationError }).error;
    expect(error).toBeInstanceOf(BlockedEndpointError);
    expect(error).toMatchObject({ code: "connect", permanent: true, field: "config.apiEndpoint" });

    const tokenOnly = settings({ apiEndpoint: undefined });
    expect(await productionAdapter.verify(tokenOnly.config, tokenOnly.credentials)).toMatchObject({
      ok: false,
      error: { code: "connect", permanent: true, field: "credentials.serviceAccountKey.token_uri" },
    });

    const body = Readable.from([randomBytes(100)]);
    await expect(productionAdapter.deliver(body, "x.csv.pgp", meta, config, credentials)).rejects.toMatchObject({ code: "connect", permanent: true });
    expect(body.destroyed).toBe(true);
    expect(gcs.requests.length).toBe(seen);
  });

  it("refuses a host name that resolves into this service's own network", async () => {
    const port = new URL(gcs.url).port;
    const { config, credentials } = settings({ apiEndpoint: `https://${hostname()}:${port}` }, { ...writer, token_uri: `https://${hostname()}:${port}/token` });
    const seen = gcs.requests.length;
    const result = await productionAdapter.verify(config, credentials);
    expect(result).toMatchObject({ ok: false, error: { code: "connect", permanent: true, field: "config.apiEndpoint" } });
    expect((result as { error: DestinationError }).error.message).toContain("own network");
    expect(gcs.requests.length).toBe(seen);
  });
});

describe("gcs: a body that fails while the endpoint's address is looked up", () => {
  it("rejects the delivery, with nothing uncaught", async () => {
    const port = new URL(gcs.url).port;
    // A real lookup (the production policy), so the body fails while it is under way.
    const { config, credentials } = settings({ apiEndpoint: `https://${hostname()}:${port}` }, { ...writer, token_uri: `https://${hostname()}:${port}/token` });
    const body = new PassThrough();
    const delivery = productionAdapter.deliver(body, "x.csv.pgp", meta, config, credentials);
    body.destroy(new Error("staging read failed during the lookup"));
    await expect(delivery).rejects.toBeDefined();
    expect(body.destroyed).toBe(true);
  });
});

describe("gcs timeouts", () => {
  /** Bodies of at most 256 KiB per request, so the per-request timeout's allowance for sending one is 1 s. */
  const small = { resumableThresholdBytes: 256 * 1024, chunkSizeBytes: 256 * 1024 };
  const uploads = [
    ["single-request", "upload.multipart", 100_000],
    ["resumable", "upload.resumable.chunk", 600 * 1024],
  ] as const;

  afterEach(() => {
    gcs.stall({ kinds: [], times: 0 });
    gcs.delay({ kinds: [], ms: 0, times: 0 });
  });

  it.each(uploads)(
    "a %s upload the endpoint accepts and never answers fails on the request timeout, retryable, nothing visible",
    async (label, kind, size) => {
      const prefix = `stalled-request-${label}`;
      const { config, credentials } = settings({ prefix, ...small });
      const adapter = createGcsAdapter({ allowInsecureEndpoints: true }, { requestTimeoutMs: 500, idleTimeoutMs: 60_000 });
      gcs.stall({ kinds: [kind], times: 1 });
      const started = Date.now();
      await expect(adapter.deliver(streamOf(randomBytes(size)), "x.csv.pgp", meta, config, credentials)).rejects.toMatchObject({
        name: "DestinationError",
        code: "timeout",
        permanent: false,
      });
      // 500 ms, plus 1 s for sending the body at the slowest rate allowed; not the idle backstop's minute.
      expect(Date.now() - started).toBeLessThan(10_000);
      expect(requestsFor(`${prefix}/x.csv.pgp`).filter((r) => r.kind === kind && r.stalled)).toHaveLength(1);
      expect([...gcs.objects(BUCKET).keys()].filter((n) => n.startsWith(`${prefix}/`))).toEqual([]);
    },
    30_000,
  );

  it.each([uploads[1]])(
    "a %s upload that stalls is abandoned by the idle backstop before the request timeout, retryable",
    async (label, kind, size) => {
      const prefix = `stalled-idle-${label}`;
      const { config, credentials } = settings({ prefix, ...small });
      const adapter = createGcsAdapter({ allowInsecureEndpoints: true }, { requestTimeoutMs: 8_000, idleTimeoutMs: 500 });
      gcs.stall({ kinds: [kind], times: 1 });
      const body = streamOf(randomBytes(size));
      const started = Date.now();
      await expect(adapter.deliver(body, "x.csv.pgp", meta, config, credentials)).rejects.toMatchObject({
        name: "DestinationError",
        code: "timeout",
        permanent: false,
        message: expect.stringContaining("nothing sent or received"),
      });
      expect(Date.now() - started).toBeLessThan(8_000);
      expect(body.destroyed).toBe(true);
      expect(requestsFor(`${prefix}/x.csv.pgp`).filter((r) => r.kind === kind && r.stalled)).toHaveLength(1);
      expect([...gcs.objects(BUCKET).keys()].filter((n) => n.startsWith(`${prefix}/`))).toEqual([]);
    },
    30_000,
  );

  it("a single-request upload answered after the idle timeout, within its request timeout, succeeds (its progress cannot be seen)", async () => {
    const { config, credentials } = settings({ prefix: "slow-single", ...small });
    const adapter = createGcsAdapter({ allowInsecureEndpoints: true }, { requestTimeoutMs: 5_000, idleTimeoutMs: 300 });
    gcs.delay({ kinds: ["upload.multipart"], ms: 1_200, times: 1 });
    const data = randomBytes(100_000);
    const result = await adapter.deliver(streamOf(data), "x.csv.pgp", meta, config, credentials);
    expect(result).toMatchObject({ path: "slow-single/x.csv.pgp", bytes: data.length, checksum: sha256(data) });
  }, 30_000);

  it("an upload abandoned while it waits for its token goes no further: nothing is sent or stored after the failure", async () => {
    const prefix = "abandoned-at-token";
    const { config, credentials } = settings({ prefix, ...small });
    const adapter = createGcsAdapter({ allowInsecureEndpoints: true }, { requestTimeoutMs: 1_500, idleTimeoutMs: 500 });
    gcs.stall({ kinds: ["token"], times: 1 });
    const sessionsBefore = gcs.openSessions();
    const body = streamOf(randomBytes(600 * 1024));
    await expect(adapter.deliver(body, "x.csv.pgp", meta, config, credentials)).rejects.toMatchObject({ code: "timeout", permanent: false });
    const seen = gcs.requests.length;
    // Long enough for the token request's own timeout to pass and a retried token to come back.
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    expect(gcs.requests.slice(seen).filter((r) => r.kind.startsWith("upload"))).toEqual([]);
    expect([...gcs.objects(BUCKET).keys()].filter((n) => n.startsWith(`${prefix}/`))).toEqual([]);
    expect(gcs.openSessions()).toBe(sessionsBefore);
  }, 30_000);

  it("a source slower than the idle timeout is not taken for a stalled endpoint", async () => {
    const { config, credentials } = settings({ prefix: "slow-source", ...small });
    const adapter = createGcsAdapter({ allowInsecureEndpoints: true }, { requestTimeoutMs: 5_000, idleTimeoutMs: 300 });
    const data = randomBytes(600 * 1024);
    async function* slowly() {
      for (let offset = 0; offset < data.length; offset += 200 * 1024) {
        await new Promise((resolve) => setTimeout(resolve, 400));
        yield data.subarray(offset, offset + 200 * 1024);
      }
    }
    const result = await adapter.deliver(Readable.from(slowly()), "x.csv.pgp", meta, config, credentials);
    expect(result).toMatchObject({ path: "slow-source/x.csv.pgp", bytes: data.length, checksum: sha256(data) });
  }, 30_000);

  it("a metadata read after the upload that is never answered times out and is retried", async () => {
    const { config, credentials } = settings({ prefix: "stalled-metadata", ...small });
    const adapter = createGcsAdapter({ allowInsecureEndpoints: true }, { requestTimeoutMs: 500, idleTimeoutMs: 60_000 });
    gcs.stall({ kinds: ["object.get"], times: 1 });
    const data = randomBytes(1000);
    const started = Date.now();
    const result = await adapter.deliver(Readable.from([data]), "x.csv.pgp", meta, config, credentials);
    expect(result).toMatchObject({ path: "stalled-metadata/x.csv.pgp", bytes: data.length, checksum: sha256(data) });
    expect(Date.now() - started).toBeLessThan(10_000);
    const reads = requestsFor("stalled-metadata/x.csv.pgp").filter((r) => r.kind === "object.get");
    expect(reads.map((r) => Boolean(r.stalled))).toEqual([true, false]);
  }, 30_000);

  it("verify reports a metadata read that is never answered as a timeout, and deletes the probe", async () => {
    const { config, credentials } = settings({ prefix: "stalled-probe" });
    const adapter = createGcsAdapter({ allowInsecureEndpoints: true }, { requestTimeoutMs: 500 });
    gcs.stall({ kinds: ["object.get"], times: 1 });
    const seen = gcs.requests.length;
    const started = Date.now();
    const result = await adapter.verify(config, credentials);
    expect(result).toMatchObject({ ok: false, error: { code: "timeout", permanent: false } });
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(gcs.requests.slice(seen).map((r) => `${r.kind}${r.stalled ? " (stalled)" : ""}`)).toEqual(["token", "upload.multipart", "object.get (stalled)", "object.delete"]);
    expect([...gcs.objects(BUCKET).keys()].filter((n) => n.startsWith("stalled-probe/"))).toEqual([]);
  }, 30_000);

  it("verify reports a token endpoint that never answers as a timeout", async () => {
    const { config, credentials } = settings({ prefix: "stalled-token" });
    const adapter = createGcsAdapter({ allowInsecureEndpoints: true }, { requestTimeoutMs: 500 });
    // The auth library retries token requests (three times): every attempt hangs.
    gcs.stall({ kinds: ["token"], times: 100 });
    const seen = gcs.requests.length;
    const started = Date.now();
    const result = await adapter.verify(config, credentials);
    expect(result).toMatchObject({ ok: false, error: { code: "timeout", permanent: false } });
    expect(Date.now() - started).toBeLessThan(10_000);
    const sent = gcs.requests.slice(seen);
    expect(sent.length).toBeGreaterThan(0);
    expect(sent.every((r) => r.kind === "token" && r.stalled)).toBe(true);
  }, 30_000);

  it("refuses timeouts that are not positive", () => {
    expect(() => createGcsAdapter({ allowInsecureEndpoints: true }, { requestTimeoutMs: 0 })).toThrow(RangeError);
    expect(() => createGcsAdapter({ allowInsecureEndpoints: true }, { idleTimeoutMs: -1 })).toThrow(RangeError);
  });
});
