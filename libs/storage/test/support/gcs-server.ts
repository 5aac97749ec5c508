import { createHash, createPublicKey, generateKeyPairSync, randomBytes, verify as verifySignature } from "node:crypto";
import type { KeyObject } from "node:crypto";
import { createServer } from "node:http";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { Socket } from "node:net";

/**
 * A loopback server that follows Google Cloud Storage's JSON API for exactly the calls
 * @google-cloud/storage 7 makes for our adapter, plus the OAuth 2.0 token endpoint a service
 * account key points at (token_uri). Anything else is answered 400 and recorded in
 * `unrecognised`; tests assert that list stays empty, so a client change fails loudly.
 *
 * Behaviour that matters for the adapter, as Google documents it:
 * - bearer tokens come from POST /token with a JWT signed by the service account's key;
 * - multipart upload (uploadType=multipart) and resumable upload (uploadType=resumable →
 *   Location session URI → PUT with Content-Range, 308 Resume Incomplete with Range, final 200);
 * - an object is visible only once its upload is complete;
 * - object metadata carries size, md5Hash and crc32c (base64 of the big-endian CRC32C).
 */

export interface ServiceAccountKey {
  type: "service_account";
  project_id: string;
  private_key_id: string;
  private_key: string;
  client_email: string;
  client_id: string;
  token_uri: string;
}

export type RequestKind =
  | "token"
  | "bucket.get"
  | "upload.multipart"
  | "upload.resumable.start"
  | "upload.resumable.chunk"
  | "upload.resumable.status"
  | "upload.resumable.cancel"
  | "object.get"
  | "object.media"
  | "object.delete";

export interface RecordedRequest {
  kind: RequestKind | "unrecognised";
  method: string;
  path: string;
  query: Record<string, string>;
  contentRange?: string;
  bodyBytes: number;
  /** False when the server cut the connection while the body was arriving (fault injection). */
  completed: boolean;
  /** True when the server read the request and never answered it (fault injection, see `stall`). */
  stalled?: boolean;
}

interface StoredObject {
  name: string;
  data: Buffer;
  contentType: string;
  generation: number;
  created: Date;
  md5Hash: string;
  crc32c: string;
}

interface UploadSession {
  bucket: string;
  name: string;
  contentType: string;
  chunks: Buffer[];
  received: number;
  finished?: StoredObject;
}

/**
 * writer: storage.objects.create, get and delete; reader: get only; writeOnly: create and
 * delete but not get (a drop bucket: the tenant's key may put files and tidy up, never read).
 */
type Role = "writer" | "reader" | "writeOnly";
type Permission = "create" | "get" | "delete";
const PERMISSIONS: Record<Role, ReadonlySet<Permission>> = {
  writer: new Set(["create", "get", "delete"]),
  reader: new Set(["get"]),
  writeOnly: new Set(["create", "delete"]),
};

/** CRC32C (Castagnoli), written out here so the test does not trust the client's implementation. */
const CRC32C_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

export function crc32c(data: Buffer): number {
  let crc = 0xffffffff;
  for (let i = 0; i < data.length; i++) crc = CRC32C_TABLE[(crc ^ data[i]!) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** GCS's crc32c field: base64 of the 4 big-endian bytes. */
export function crc32cBase64(data: Buffer): string {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(crc32c(data));
  return out.toString("base64");
}

function googleError(res: ServerResponse, code: number, message: string, reason: string): void {
  sendJson(res, code, { error: { code, message, errors: [{ message, domain: "global", reason }] } });
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { "content-type": "application/json; charset=UTF-8", ...headers });
  res.end(JSON.stringify(body));
}

function base64url(value: string): Buffer {
  return Buffer.from(value.replace(/-/g, "+").replace(/_/g, "/"), "base64");
}

export interface GcsTestServer {
  /** http://127.0.0.1:<port>: the apiEndpoint for the client. */
  url: string;
  tokenUri: string;
  requests: RecordedRequest[];
  unrecognised: RecordedRequest[];
  createBucket(name: string): void;
  /** A fresh service account (RSA key generated now) with the given role on every bucket. */
  serviceAccount(role?: Role): ServiceAccountKey;
  /** Complete objects of a bucket, by name. */
  objects(bucket: string): Map<string, { data: Buffer; contentType: string; generation: number }>;
  /** Upload sessions started and not finished. */
  openSessions(): number;
  /** Cuts the connection of the next `times` upload requests after `afterBytes` body bytes. */
  cutUploads(options: { afterBytes: number; times: number }): void;
  /** Flips one byte of the next object stored, as a faulty backend would. */
  corruptNextObject(): void;
  /** The next upload session expires once it has taken `chunks` chunks: its next request gets 404. */
  expireNextSession(chunks: number): void;
  /**
   * The next `times` single-request uploads store their object, then have their connection cut
   * instead of answered, as when the reply is lost on its way back.
   */
  loseUploadReplies(times: number): void;
  /**
   * The next `times` requests of these kinds have their body read and are then never answered
   * (the connection stays open until `stop`), as an endpoint that accepts and hangs would.
   */
  stall(options: { kinds: RequestKind[]; times: number }): void;
  /** The next `times` requests of these kinds wait `ms` before they are read and answered, as a slow endpoint would. */
  delay(options: { kinds: RequestKind[]; ms: number; times: number }): void;
  /**
   * The next `times` token requests are answered 400 with this OAuth error and error_description
   * whatever the JWT, as Google's token endpoint answers one it refuses (e.g. iat/exp outside its window).
   */
  refuseTokens(options: { error: string; description: string; times: number }): void;
  stop(): Promise<void>;
}

export async function startGcsServer(): Promise<GcsTestServer> {
  const buckets = new Map<string, Map<string, StoredObject>>();
  const publicKeys = new Map<string, { key: KeyObject; role: Role }>();
  const tokens = new Map<string, { email: string; role: Role; expires: number }>();
  const sessions = new Map<string, UploadSession>();
  const requests: RecordedRequest[] = [];
  const unrecognised: RecordedRequest[] = [];
  const sockets = new Set<Socket>();
  const fault = { afterBytes: 0, times: 0, corruptNext: false, lostReplies: 0, stallKinds: new Set<RequestKind>(), stallTimes: 0, delayKinds: new Set<RequestKind>(), delayMs: 0, delayTimes: 0, tokenRefusal: { error: "", description: "" }, tokenRefusals: 0, expireSessionsAfterChunks: 0 };
  let generation = 1_700_000_000_000_000;
  let baseUrl = "";

  const objectResource = (bucket: string, object: StoredObject) => {
    const encoded = encodeURIComponent(object.name);
    return {
      kind: "storage#object",
      id: `${bucket}/${object.name}/${object.generation}`,
      selfLink: `${baseUrl}/storage/v1/b/${bucket}/o/${encoded}`,
      mediaLink: `${baseUrl}/download/storage/v1/b/${bucket}/o/${encoded}?generation=${object.generation}&alt=media`,
      name: object.name,
      bucket,
      generation: String(object.generation),
      metageneration: "1",
      contentType: object.contentType,
      storageClass: "STANDARD",
      size: String(object.data.length),
      md5Hash: object.md5Hash,
      crc32c: object.crc32c,
      etag: createHash("md5").update(String(object.generation)).digest("base64").slice(0, 12),
      timeCreated: object.created.toISOString(),
      updated: object.created.toISOString(),
    };
  };

  const store = (bucket: string, name: string, data: Buffer, contentType: string): StoredObject => {
    if (fault.corruptNext && data.length > 0) {
      fault.corruptNext = false;
      data = Buffer.from(data);
      data[data.length - 1] = data[data.length - 1]! ^ 0xff;
    }
    const object = { name, data, contentType, generation: ++generation, created: new Date(), md5Hash: createHash("md5").update(data).digest("base64"), crc32c: crc32cBase64(data) };
    buckets.get(bucket)!.set(name, object);
    return object;
  };

  /** Reads the body, or cuts the connection mid-body when a fault is armed; null = cut. */
  const readBody = async (req: IncomingMessage, record: RecordedRequest, cuttable: boolean): Promise<Buffer | null> => {
    const cutAt = cuttable && fault.times > 0 ? fault.afterBytes : Infinity;
    if (cutAt !== Infinity) fault.times -= 1;
    const chunks: Buffer[] = [];
    let length = 0;
    for await (const chunk of req) {
      chunks.push(chunk as Buffer);
      length += (chunk as Buffer).length;
      record.bodyBytes = length;
      if (length > cutAt) {
        record.completed = false;
        req.socket.destroy();
        return null;
      }
    }
    return Buffer.concat(chunks);
  };

  /** When a stall is armed for this request's kind: reads the body and never answers (true). */
  const stalled = async (req: IncomingMessage, record: RecordedRequest): Promise<boolean> => {
    if (fault.delayTimes > 0 && record.kind !== "unrecognised" && fault.delayKinds.has(record.kind)) {
      fault.delayTimes -= 1;
      await new Promise((resolve) => setTimeout(resolve, fault.delayMs));
    }
    if (fault.stallTimes <= 0 || record.kind === "unrecognised" || !fault.stallKinds.has(record.kind)) return false;
    fault.stallTimes -= 1;
    record.stalled = true;
    await readBody(req, record, false);
    return true;
  };

  const authorise = (req: IncomingMessage, res: ServerResponse, needs: Permission): boolean => {
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1];
    const grant = token ? tokens.get(token) : undefined;
    if (!grant || grant.expires < Date.now()) {
      googleError(res, 401, "Invalid Credentials", "authError");
      return false;
    }
    if (!PERMISSIONS[grant.role].has(needs)) {
      googleError(res, 403, `${grant.email} does not have storage.objects.${needs} access to the Google Cloud Storage object.`, "forbidden");
      return false;
    }
    return true;
  };

  const bucketOr404 = (res: ServerResponse, name: string): Map<string, StoredObject> | undefined => {
    const bucket = buckets.get(name);
    if (!bucket) googleError(res, 404, "The specified bucket does not exist.", "notFound");
    return bucket;
  };

  const handleToken = async (req: IncomingMessage, res: ServerResponse, record: RecordedRequest) => {
    const body = new URLSearchParams((await readBody(req, record, false))!.toString());
    if (fault.tokenRefusals > 0) {
      fault.tokenRefusals -= 1;
      return sendJson(res, 400, { error: fault.tokenRefusal.error, error_description: fault.tokenRefusal.description });
    }
    const assertion = body.get("assertion") ?? "";
    const [header = "", payload = "", signature = ""] = assertion.split(".");
    const claims = JSON.parse(base64url(payload).toString() || "{}") as { iss?: string; exp?: number; scope?: string };
    const account = claims.iss ? publicKeys.get(claims.iss) : undefined;
    const valid =
      body.get("grant_type") === "urn:ietf:params:oauth:grant-type:jwt-bearer" &&
      account !== undefined &&
      JSON.parse(base64url(header).toString()).alg === "RS256" &&
      verifySignature("RSA-SHA256", Buffer.from(`${header}.${payload}`), account.key, base64url(signature)) &&
      (claims.exp ?? 0) * 1000 > Date.now();
    if (!valid || !account) return sendJson(res, 400, { error: "invalid_grant", error_description: "Invalid JWT Signature." });
    const token = `ya29.${randomBytes(24).toString("base64url")}`;
    tokens.set(token, { email: claims.iss!, role: account.role, expires: Date.now() + 3_600_000 });
    sendJson(res, 200, { access_token: token, expires_in: 3599, token_type: "Bearer" });
  };

  /** Parses a multipart/related body: JSON metadata part, then the media part. */
  const parseMultipart = (body: Buffer, contentType: string): { metadata: Record<string, unknown>; media: Buffer; mediaType: string } | null => {
    const boundary = /boundary="?([^";]+)"?/.exec(contentType)?.[1];
    if (!boundary) return null;
    const delimiter = Buffer.from(`--${boundary}`);
    const parts: Buffer[] = [];
    let start = body.indexOf(delimiter);
    while (start >= 0) {
      const next = body.indexOf(delimiter, start + delimiter.length);
      if (next < 0) break;
      parts.push(body.subarray(start + delimiter.length, next));
      start = next;
    }
    if (parts.length !== 2) return null;
    const split = (part: Buffer) => {
      const headerEnd = part.indexOf("\r\n\r\n");
      const headers = part.subarray(0, headerEnd).toString();
      let content = part.subarray(headerEnd + 4);
      if (content.subarray(-2).toString() === "\r\n") content = content.subarray(0, -2);
      return { type: /content-type:\s*([^\r\n]+)/i.exec(headers)?.[1] ?? "application/octet-stream", content };
    };
    const meta = split(parts[0]!);
    const media = split(parts[1]!);
    return { metadata: JSON.parse(meta.content.toString()) as Record<string, unknown>, media: media.content, mediaType: media.type };
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    const query = Object.fromEntries(url.searchParams);
    const record: RecordedRequest = { kind: "unrecognised", method: req.method ?? "", path: url.pathname, query, bodyBytes: 0, completed: true };
    if (req.headers["content-range"]) record.contentRange = String(req.headers["content-range"]);
    requests.push(record);
    const uploadPath = /^\/upload\/storage\/v1\/b\/([^/]+)\/o$/.exec(url.pathname);
    const objectPath = /^\/storage\/v1\/b\/([^/]+)\/o\/(.+)$/.exec(url.pathname);
    const bucketPath = /^\/storage\/v1\/b\/([^/]+)$/.exec(url.pathname);

    if (req.method === "POST" && url.pathname === "/token") {
      record.kind = "token";
      if (await stalled(req, record)) return;
      return handleToken(req, res, record);
    }
    if (req.method === "GET" && bucketPath) {
      record.kind = "bucket.get";
      if (!authorise(req, res, "get")) return;
      const name = decodeURIComponent(bucketPath[1]!);
      if (!bucketOr404(res, name)) return;
      return sendJson(res, 200, { kind: "storage#bucket", id: name, name, location: "US", storageClass: "STANDARD", metageneration: "1" });
    }
    if (req.method === "POST" && uploadPath && query.uploadType === "multipart") {
      record.kind = "upload.multipart";
      if (!authorise(req, res, "create")) return void req.resume();
      if (await stalled(req, record)) return;
      const bucket = decodeURIComponent(uploadPath[1]!);
      const body = await readBody(req, record, true);
      if (!body) return;
      if (!bucketOr404(res, bucket)) return;
      const parsed = parseMultipart(body, req.headers["content-type"] ?? "");
      const name = query.name ?? (parsed?.metadata.name as string | undefined);
      if (!parsed || !name) return googleError(res, 400, "Malformed multipart body.", "invalid");
      const object = store(bucket, name, parsed.media, (parsed.metadata.contentType as string | undefined) ?? parsed.mediaType);
      if (fault.lostReplies > 0) {
        fault.lostReplies -= 1;
        return void req.socket.destroy();
      }
      return sendJson(res, 200, objectResource(bucket, object));
    }
    if (req.method === "POST" && uploadPath && query.uploadType === "resumable" && !query.upload_id) {
      record.kind = "upload.resumable.start";
      if (!authorise(req, res, "create")) return void req.resume();
      if (await stalled(req, record)) return;
      const bucket = decodeURIComponent(uploadPath[1]!);
      const body = await readBody(req, record, false);
      if (!bucketOr404(res, bucket)) return;
      const metadata = body && body.length > 0 ? (JSON.parse(body.toString()) as Record<string, unknown>) : {};
      const name = query.name ?? (metadata.name as string | undefined);
      if (!name) return googleError(res, 400, "Required parameter: name", "required");
      const id = randomBytes(16).toString("hex");
      const contentType = (metadata.contentType as string | undefined) ?? String(req.headers["x-upload-content-type"] ?? "application/octet-stream");
      sessions.set(id, { bucket, name, contentType, chunks: [], received: 0 });
      const location = `${baseUrl}/upload/storage/v1/b/${uploadPath[1]}/o?uploadType=resumable&name=${encodeURIComponent(name)}&upload_id=${id}`;
      res.writeHead(200, { location, "content-length": "0" });
      return res.end();
    }
    if ((req.method === "PUT" || req.method === "DELETE") && uploadPath && query.uploadType === "resumable" && query.upload_id) {
      const session = sessions.get(query.upload_id);
      if (!session) {
        req.resume();
        return googleError(res, 404, "No such upload session.", "notFound");
      }
      if (req.method === "DELETE") {
        record.kind = "upload.resumable.cancel";
        sessions.delete(query.upload_id);
        res.writeHead(499).end();
        return;
      }
      const range = String(req.headers["content-range"] ?? "");
      const status = /^bytes \*\/(\*|\d+)$/.exec(range);
      const chunk = /^bytes (\d+)-(\d+|\*)\/(\*|\d+)$/.exec(range);
      if (status) {
        record.kind = "upload.resumable.status";
        await readBody(req, record, false);
        if (session.finished) return sendJson(res, 200, objectResource(session.bucket, session.finished));
        // An empty object: "bytes */0" finishes the upload with nothing sent.
        if (status[1] === "0" && session.received === 0) return finish(res, query.upload_id, session);
        return incomplete(res, session);
      }
      if (!chunk) return void (req.resume(), googleError(res, 400, `Bad Content-Range: ${range}`, "invalid"));
      record.kind = "upload.resumable.chunk";
      if (await stalled(req, record)) return;
      const first = Number(chunk[1]);
      const body = await readBody(req, record, true);
      if (!body) return; // cut: nothing of this request is kept, like a chunk that never arrived
      if (session.finished) return sendJson(res, 200, objectResource(session.bucket, session.finished));
      if (first > session.received) return googleError(res, 400, `Chunk starts at ${first}, ${session.received} bytes received so far.`, "invalid");
      const fresh = body.subarray(session.received - first);
      session.chunks.push(fresh);
      session.received += fresh.length;
      // Expired after this chunk: the next request of the session finds it gone (404), as Google's do.
      if (fault.expireSessionsAfterChunks > 0 && session.chunks.length >= fault.expireSessionsAfterChunks) {
        fault.expireSessionsAfterChunks = 0;
        sessions.delete(query.upload_id);
      }
      const total = chunk[3] === "*" ? (chunk[2] === "*" ? session.received : undefined) : Number(chunk[3]);
      if (total !== undefined && session.received >= total) return finish(res, query.upload_id, session);
      return incomplete(res, session);
    }
    if (objectPath && (req.method === "GET" || req.method === "DELETE")) {
      const bucketName = decodeURIComponent(objectPath[1]!);
      const name = decodeURIComponent(objectPath[2]!);
      const media = req.method === "GET" && query.alt === "media";
      record.kind = req.method === "DELETE" ? "object.delete" : media ? "object.media" : "object.get";
      if (await stalled(req, record)) return;
      if (!authorise(req, res, req.method === "DELETE" ? "delete" : "get")) return;
      const bucket = bucketOr404(res, bucketName);
      if (!bucket) return;
      const object = bucket.get(name);
      if (!object) return googleError(res, 404, `No such object: ${bucketName}/${name}`, "notFound");
      if (req.method === "DELETE") {
        bucket.delete(name);
        res.writeHead(204).end();
        return;
      }
      if (!media) return sendJson(res, 200, objectResource(bucketName, object));
      const resource = objectResource(bucketName, object);
      res.writeHead(200, {
        "content-type": object.contentType,
        "content-length": String(object.data.length),
        "x-goog-hash": `crc32c=${resource.crc32c},md5=${resource.md5Hash}`,
        "x-goog-generation": resource.generation,
        "x-goog-stored-content-length": String(object.data.length),
        "x-goog-stored-content-encoding": "identity",
      });
      res.end(object.data);
      return;
    }
    req.resume();
    unrecognised.push(record);
    googleError(res, 400, `gcs-server does not recognise ${req.method} ${url.pathname}${url.search}`, "unrecognised");
  };

  const incomplete = (res: ServerResponse, session: UploadSession) => {
    const headers: Record<string, string> = { "content-length": "0" };
    if (session.received > 0) headers.range = `bytes=0-${session.received - 1}`;
    res.writeHead(308, headers).end();
  };

  const finish = (res: ServerResponse, id: string, session: UploadSession) => {
    if (!buckets.has(session.bucket)) return googleError(res, 404, "The specified bucket does not exist.", "notFound");
    session.finished = store(session.bucket, session.name, Buffer.concat(session.chunks), session.contentType);
    sessions.delete(id);
    sendJson(res, 200, objectResource(session.bucket, session.finished));
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) googleError(res, 500, `gcs-server failed: ${String(error)}`, "backendError");
    });
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as { port: number }).port}`;

  return {
    url: baseUrl,
    tokenUri: `${baseUrl}/token`,
    requests,
    unrecognised,
    createBucket(name) {
      if (!buckets.has(name)) buckets.set(name, new Map());
    },
    serviceAccount(role = "writer") {
      const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
      const id = randomBytes(6).toString("hex");
      const email = `transporter-${id}@test-project.iam.gserviceaccount.com`;
      publicKeys.set(email, { key: createPublicKey(publicKey.export({ type: "spki", format: "pem" })), role });
      return {
        type: "service_account",
        project_id: "test-project",
        private_key_id: randomBytes(20).toString("hex"),
        private_key: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
        client_email: email,
        client_id: String(BigInt(`0x${randomBytes(8).toString("hex")}`)),
        token_uri: `${baseUrl}/token`,
      };
    },
    objects(bucket) {
      const result = new Map<string, { data: Buffer; contentType: string; generation: number }>();
      for (const [name, object] of buckets.get(bucket) ?? []) result.set(name, { data: object.data, contentType: object.contentType, generation: object.generation });
      return result;
    },
    openSessions: () => sessions.size,
    corruptNextObject() {
      fault.corruptNext = true;
    },
    expireNextSession(chunks) {
      fault.expireSessionsAfterChunks = chunks;
    },
    loseUploadReplies(times) {
      fault.lostReplies = times;
    },
    cutUploads(options) {
      fault.afterBytes = options.afterBytes;
      fault.times = options.times;
    },
    stall(options) {
      fault.stallKinds = new Set(options.kinds);
      fault.stallTimes = options.times;
    },
    delay(options) {
      fault.delayKinds = new Set(options.kinds);
      fault.delayMs = options.ms;
      fault.delayTimes = options.times;
    },
    refuseTokens(options) {
      fault.tokenRefusal = { error: options.error, description: options.description };
      fault.tokenRefusals = options.times;
    },
    async stop() {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
