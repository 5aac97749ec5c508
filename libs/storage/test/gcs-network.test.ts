import { execFileSync } from "node:child_process";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import dns from "node:dns";
import type { LookupAddress, LookupOptions } from "node:dns";
import dnsPromises from "node:dns/promises";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer, globalAgent } from "node:https";
import { syncBuiltinESMExports } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { JWT } from "google-auth-library";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { BlockedEndpointError, createGcsAdapter, gcsConfigSchema, gcsConfigSchemaFor, gcsCredentialsSchema, gcsCredentialsSchemaFor } from "../src/index.js";
import { startGcsServer } from "./support/gcs-server.js";
import type { GcsTestServer } from "./support/gcs-server.js";

/**
 * The Cloud Storage client's connections, checked as they are made. A tenant's host name that
 * resolves publicly when its settings are checked and to loopback when the client connects
 * (DNS rebinding) must not take any request into this service's network, nor may a redirect.
 */

const BUCKET = "tenant-exports";
const meta = { tenantId: "tenant-1", runId: "run-1" };
const REBIND_HOST = "storage.rebind.test";
/** What the rebinding name resolves to when checked: a public (TEST-NET-3) address. */
const PUBLIC_ANSWER = "203.0.113.10";

const secure = { allowInsecureEndpoints: false };
const secureAdapter = createGcsAdapter(secure, { requestTimeoutMs: 5_000, idleTimeoutMs: 5_000 });
const loopbackAdapter = createGcsAdapter({ allowInsecureEndpoints: true }, { requestTimeoutMs: 5_000, idleTimeoutMs: 5_000 });

interface Seen {
  method: string;
  url: string;
  body: string;
}

/** A loopback server that records every TCP connection and request it gets. */
interface Listener {
  port: number;
  connections: number;
  requests: Seen[];
  close(): Promise<void>;
}

async function listen(server: Server, handle: (req: IncomingMessage, res: ServerResponse, seen: Seen) => void): Promise<Listener> {
  const state: Listener = {
    port: 0,
    connections: 0,
    requests: [],
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
  server.on("connection", () => (state.connections += 1));
  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const seen = { method: req.method ?? "", url: req.url ?? "", body: Buffer.concat(chunks).toString() };
      state.requests.push(seen);
      handle(req, res, seen);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  state.port = (server.address() as { port: number }).port;
  return state;
}

/** An internal service: answers 200 to anything (the cloud's metadata service, an admin port). */
const internalAdmin = () => listen(createHttpServer(), (_req, res) => res.writeHead(200, { "content-type": "application/json" }).end("{}"));

/** Answers every request with a 307 to the internal service, keeping method and body. */
const redirectingTo = (server: Server, target: Listener) =>
  listen(server, (req, res) => res.writeHead(307, { location: `http://127.0.0.1:${target.port}/internal-admin${req.url ?? "/"}`, "content-length": "0" }).end());

function serviceAccountKey(tokenUri: string) {
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  return {
    type: "service_account",
    project_id: "test-project",
    private_key_id: randomBytes(8).toString("hex"),
    private_key: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    client_email: "transporter@test-project.iam.gserviceaccount.com",
    token_uri: tokenUri,
  };
}

describe("gcs connections under the secure policy, when the endpoint's name rebinds to loopback", () => {
  let certDir: string;
  let admin: Listener;
  let rebound: Listener;
  let caBefore: unknown;

  beforeAll(async () => {
    // A certificate for the rebinding name, trusted by Node's global agent: without the fix the
    // library's token request would complete its TLS handshake and follow the redirect.
    certDir = mkdtempSync(join(tmpdir(), "gcs-rebind-"));
    execFileSync(
      "openssl",
      ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", `/CN=${REBIND_HOST}`, "-addext", `subjectAltName=DNS:${REBIND_HOST}`, "-keyout", join(certDir, "key.pem"), "-out", join(certDir, "cert.pem")],
      { stdio: "ignore" },
    );
    const cert = readFileSync(join(certDir, "cert.pem"));
    caBefore = globalAgent.options.ca;
    globalAgent.options.ca = cert;
    admin = await internalAdmin();
    rebound = await redirectingTo(createHttpsServer({ cert, key: readFileSync(join(certDir, "key.pem")) }), admin);

    // Checked (dns/promises): public. Connected (dns.lookup, also what Node's sockets use): loopback.
    const realLookup = dns.lookup;
    vi.spyOn(dns, "lookup").mockImplementation(((...args: Parameters<typeof dns.lookup>) => {
      const [hostname, options, callback] = args as unknown as [string, LookupOptions | ((...a: unknown[]) => void), ((...a: unknown[]) => void) | undefined];
      if (!hostname.endsWith(".rebind.test")) return Reflect.apply(realLookup, dns, args);
      const done = (typeof options === "function" ? options : callback)!;
      const all = typeof options === "object" && options.all === true;
      process.nextTick(() => (all ? done(null, [{ address: "127.0.0.1", family: 4 }]) : done(null, "127.0.0.1", 4)));
    }) as typeof dns.lookup);
    const realLookupAsync = dnsPromises.lookup;
    vi.spyOn(dnsPromises, "lookup").mockImplementation((async (hostname: string, options?: LookupOptions) => {
      if (!hostname.endsWith(".rebind.test")) return realLookupAsync(hostname, options ?? {});
      const answer: LookupAddress = { address: PUBLIC_ANSWER, family: 4 };
      return options?.all ? [answer] : answer;
    }) as typeof dnsPromises.lookup);
    syncBuiltinESMExports();
  });

  afterAll(async () => {
    vi.restoreAllMocks();
    syncBuiltinESMExports();
    globalAgent.options.ca = caBefore as typeof globalAgent.options.ca;
    await rebound?.close();
    await admin?.close();
    if (certDir) rmSync(certDir, { recursive: true, force: true });
  });

  afterEach(() => {
    // Nothing may reach the loopback servers: not a connection, let alone the signed assertion.
    const reached = { connections: rebound.connections + admin.connections, internalRequests: admin.requests.splice(0) };
    rebound.connections = 0;
    admin.connections = 0;
    expect(reached).toEqual({ connections: 0, internalRequests: [] });
  });

  function settings(overrides: Record<string, unknown> = {}) {
    const endpoint = `https://${REBIND_HOST}:${rebound.port}`;
    return {
      // The secure schemas accept the settings: the name is no IP literal and resolves publicly.
      config: gcsConfigSchemaFor(secure).parse({ bucket: BUCKET, apiEndpoint: endpoint, ...overrides }),
      credentials: gcsCredentialsSchemaFor(secure).parse({ serviceAccountKey: serviceAccountKey(`${endpoint}/token`) }),
    };
  }

  it("the name passes the check made before connecting", async () => {
    const { config, credentials } = settings();
    expect(config.apiEndpoint).toContain(REBIND_HOST);
    expect(credentials.serviceAccountKey.token_uri).toContain(REBIND_HOST);
    await expect(dnsPromises.lookup(REBIND_HOST, { all: true })).resolves.toEqual([{ address: PUBLIC_ANSWER, family: 4 }]);
  });

  it("refuses the token request as it connects: verify and deliver fail, naming token_uri", async () => {
    const { config, credentials } = settings();
    const result = await secureAdapter.verify(config, credentials);
    expect(result.ok).toBe(false);
    const error = (result as { error: Error }).error;
    expect(error).toBeInstanceOf(BlockedEndpointError);
    expect(error).toMatchObject({ code: "connect", permanent: true, field: "credentials.serviceAccountKey.token_uri" });
    expect(error.message).toContain("own network");

    const body = Readable.from([randomBytes(100)]);
    await expect(secureAdapter.deliver(body, "x.csv.pgp", meta, config, credentials)).rejects.toMatchObject({
      code: "connect",
      permanent: true,
      field: "credentials.serviceAccountKey.token_uri",
    });
  });

  describe("with a token already held (only the storage requests connect)", () => {
    beforeAll(() => {
      // As if the token came from Google's own endpoint: the storage requests are what is tested here.
      vi.spyOn(JWT.prototype as unknown as { refreshTokenNoCache: () => Promise<unknown> }, "refreshTokenNoCache").mockResolvedValue({
        tokens: { access_token: "ya29.test", token_type: "Bearer", expiry_date: Date.now() + 3_600_000 },
        res: null,
      });
    });

    it("refuses the probe upload and its deletion (single requests) as they connect", async () => {
      const { config, credentials } = settings();
      const result = await secureAdapter.verify(config, credentials);
      expect(result).toMatchObject({ ok: false, error: { code: "connect", permanent: true, field: "config.apiEndpoint" } });
      expect((result as { error: Error }).error).toBeInstanceOf(BlockedEndpointError);
    });

    it.each([
      ["a single-request upload", 8 * 1024 * 1024],
      ["a resumable upload", 0],
    ])("refuses %s as it connects", async (_label, resumableThresholdBytes) => {
      const { config, credentials } = settings({ resumableThresholdBytes, chunkSizeBytes: 256 * 1024 });
      const body = Readable.from([randomBytes(1000)]);
      await expect(secureAdapter.deliver(body, "x.csv.pgp", meta, config, credentials)).rejects.toMatchObject({
        code: "connect",
        permanent: true,
        field: "config.apiEndpoint",
      });
    });
  });
});

describe("gcs redirects", () => {
  let admin: Listener;
  let redirector: Listener;
  let gcs: GcsTestServer;

  beforeAll(async () => {
    admin = await internalAdmin();
    redirector = await redirectingTo(createHttpServer(), admin);
    gcs = await startGcsServer();
    gcs.createBucket(BUCKET);
  });
  beforeEach(() => {
    admin.requests.splice(0);
  });
  afterAll(async () => {
    await redirector?.close();
    await admin?.close();
    await gcs?.stop();
  });

  // On loopback (the insecure policy lets the first request through): what is tested is that
  // the answer's redirect is not followed, whatever the address it names.
  it("a token request answered with a redirect is not re-sent, with its signed assertion, where it points", async () => {
    const config = gcsConfigSchema.parse({ bucket: BUCKET, apiEndpoint: gcs.url });
    const credentials = gcsCredentialsSchema.parse({ serviceAccountKey: serviceAccountKey(`http://127.0.0.1:${redirector.port}/token`) });
    const result = await loopbackAdapter.verify(config, credentials);
    expect(redirector.requests.map((r) => `${r.method} ${r.url}`)).toContain("POST /token");
    expect(admin.requests).toEqual([]);
    expect(result).toMatchObject({ ok: false, error: { code: "protocol", message: expect.stringContaining("redirect") } });
  });

  it("a resumable upload answered with a redirect is not re-sent where it points", async () => {
    const config = gcsConfigSchema.parse({ bucket: BUCKET, apiEndpoint: `http://127.0.0.1:${redirector.port}`, resumableThresholdBytes: 0, chunkSizeBytes: 256 * 1024 });
    const credentials = gcsCredentialsSchema.parse({ serviceAccountKey: gcs.serviceAccount("writer") });
    const seen = redirector.requests.length;
    const failure = await loopbackAdapter.deliver(Readable.from([randomBytes(1000)]), "x.csv.pgp", meta, config, credentials).then(
      () => new Error("the delivery unexpectedly succeeded"),
      (error: unknown) => error,
    );
    expect(redirector.requests.slice(seen).some((r) => r.method === "POST" && r.url.startsWith("/upload/storage/v1/b/"))).toBe(true);
    expect(admin.requests).toEqual([]);
    expect(failure).toMatchObject({ code: "protocol", message: expect.stringContaining("redirect") });
  });
});
