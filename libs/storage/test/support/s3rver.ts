import { createHash, createHmac, randomBytes } from "node:crypto";
import { mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import { S3Client } from "@aws-sdk/client-s3";

const require = createRequire(import.meta.url);

interface S3rverApp {
  run(): Promise<{ port: number }>;
  close(): Promise<void>;
  callback(): (req: IncomingMessage, res: ServerResponse) => void;
  httpServer: Server;
}
type S3rverConstructor = new (options: Record<string, unknown>) => S3rverApp;
interface AccountModule {
  DUMMY_ACCOUNT: { createKeyPair(id: string, secret: string): void; revokeAccessKey(id: string): void };
}

const S3rver = require("s3rver") as S3rverConstructor;
const accounts = require("s3rver/lib/models/account.js") as AccountModule;

export interface S3rverHandle {
  /** http://127.0.0.1:<port> */
  endpoint: string;
  port: number;
  region: string;
  /** Generated per server: full access. */
  accessKeyId: string;
  secretAccessKey: string;
  /** Generated per server: every write or delete gets 403 AccessDenied (s3rver has no policies of its own). */
  readOnlyAccessKeyId: string;
  readOnlySecretAccessKey: string;
  /** Every request seen, in order: method and path with query (for checks like "it went multipart"). */
  requests: Array<{ method: string; url: string }>;
  /** A client with the full-access key. */
  client(): S3Client;
  stop(): Promise<void>;
}

function xmlEscape(value: string): string {
  return value.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

function sendXml(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { "content-type": "application/xml" });
  res.end(`<?xml version="1.0" encoding="UTF-8"?>\n${body}`);
}

function s3ErrorXml(code: string, message: string): string {
  return `<Error><Code>${code}</Code><Message>${xmlEscape(message)}</Message><RequestId>${randomBytes(8).toString("hex")}</RequestId></Error>`;
}

function accessKeyIdOf(req: IncomingMessage): string | undefined {
  return /Credential=([^/]+)\//.exec(req.headers.authorization ?? "")?.[1];
}

const rfc3986 = (value: string) => encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/**
 * Checks an AWS Signature Version 4 Authorization header against the secret of its key id
 * (s3rver 3 accepts any V4 signature; real S3 answers a wrong secret with SignatureDoesNotMatch).
 */
export function signatureV4Matches(req: IncomingMessage, secretOf: (accessKeyId: string) => string | undefined): boolean {
  const match = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]+)$/.exec(req.headers.authorization ?? "");
  if (!match) return false;
  const [, keyId = "", date = "", region = "", service = "", signedHeaders = "", signature = ""] = match;
  const secret = secretOf(keyId);
  if (secret === undefined) return false;
  const rawUrl = req.url ?? "/";
  const queryStart = rawUrl.indexOf("?");
  const canonicalUri = queryStart < 0 ? rawUrl : rawUrl.slice(0, queryStart);
  const canonicalQuery = (queryStart < 0 ? "" : rawUrl.slice(queryStart + 1))
    .split("&")
    .filter(Boolean)
    .map((pair) => {
      const eq = pair.indexOf("=");
      const key = decodeURIComponent(eq < 0 ? pair : pair.slice(0, eq));
      const value = eq < 0 ? "" : decodeURIComponent(pair.slice(eq + 1).replace(/\+/g, " "));
      return [rfc3986(key), rfc3986(value)] as const;
    })
    .sort(([ak, av], [bk, bv]) => (ak === bk ? (av < bv ? -1 : av > bv ? 1 : 0) : ak < bk ? -1 : 1))
    .map(([k, v]) => `${k}=${v}`)
    .join("&");
  const canonicalHeaders = signedHeaders
    .split(";")
    .map((name) => {
      const value = req.headers[name];
      return `${name}:${(Array.isArray(value) ? value.join(",") : (value ?? "")).trim().replace(/\s+/g, " ")}\n`;
    })
    .join("");
  const payloadHash = String(req.headers["x-amz-content-sha256"] ?? "UNSIGNED-PAYLOAD");
  const canonicalRequest = [req.method, canonicalUri, canonicalQuery, canonicalHeaders, signedHeaders, payloadHash].join("\n");
  const scope = `${date}/${region}/${service}/aws4_request`;
  const stringToSign = ["AWS4-HMAC-SHA256", String(req.headers["x-amz-date"] ?? ""), scope, createHash("sha256").update(canonicalRequest).digest("hex")].join("\n");
  let key: Buffer = createHmac("sha256", `AWS4${secret}`).update(date).digest();
  for (const part of [region, service, "aws4_request"]) key = createHmac("sha256", key).update(part).digest();
  return createHmac("sha256", key).update(stringToSign).digest("hex") === signature;
}

/**
 * s3rver (the npm package) on a loopback port with a temp directory, spoken to through the real
 * AWS SDK. s3rver 3 does not implement ListMultipartUploads and AbortMultipartUpload; this wrapper
 * answers those two calls from s3rver's own upload folders (its file layout: <bucket>/._S3rver_uploads/<id>/{key,<part>})
 * so tests can prove that a failed upload leaves no parts behind. It also checks V4 signatures
 * (s3rver only checks V2 ones) and records every request it sees. Everything else is s3rver's.
 */
export async function startS3rver(options: { buckets?: string[] } = {}): Promise<S3rverHandle> {
  const directory = await mkdtemp(path.join(tmpdir(), "s3rver-"));
  const accessKeyId = `AK${randomBytes(8).toString("hex").toUpperCase()}`;
  const secretAccessKey = randomBytes(24).toString("base64url");
  const readOnlyAccessKeyId = `RO${randomBytes(8).toString("hex").toUpperCase()}`;
  const readOnlySecretAccessKey = randomBytes(24).toString("base64url");
  accounts.DUMMY_ACCOUNT.createKeyPair(accessKeyId, secretAccessKey);
  accounts.DUMMY_ACCOUNT.createKeyPair(readOnlyAccessKeyId, readOnlySecretAccessKey);

  const app = new S3rver({
    address: "127.0.0.1",
    port: 0,
    silent: true,
    directory,
    vhostBuckets: false,
    configureBuckets: (options.buckets ?? []).map((name) => ({ name })),
  });
  const { port } = await app.run();
  const server = app.httpServer;
  const s3rverHandler = app.callback();
  server.removeAllListeners("request");

  const uploadsDir = (bucket: string) => path.join(directory, bucket, "._S3rver_uploads");

  const listUploads = async (res: ServerResponse, bucket: string, prefix: string) => {
    const ids = await readdir(uploadsDir(bucket)).catch(() => [] as string[]);
    const uploads: string[] = [];
    for (const id of ids) {
      const key = await readFile(path.join(uploadsDir(bucket), id, "key"), "utf8").catch(() => undefined);
      if (key === undefined || !key.startsWith(prefix)) continue;
      const initiated = (await stat(path.join(uploadsDir(bucket), id))).birthtime.toISOString();
      uploads.push(`<Upload><Key>${xmlEscape(key)}</Key><UploadId>${id}</UploadId><Initiated>${initiated}</Initiated><StorageClass>STANDARD</StorageClass></Upload>`);
    }
    sendXml(
      res,
      200,
      `<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>${xmlEscape(bucket)}</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker><Prefix>${xmlEscape(prefix)}</Prefix><MaxUploads>1000</MaxUploads><IsTruncated>false</IsTruncated>${uploads.join("")}</ListMultipartUploadsResult>`,
    );
  };

  const abortUpload = async (res: ServerResponse, bucket: string, uploadId: string) => {
    const dir = path.join(uploadsDir(bucket), path.basename(uploadId));
    const exists = await stat(dir).then(
      () => true,
      () => false,
    );
    if (!exists) return sendXml(res, 404, s3ErrorXml("NoSuchUpload", "The specified upload does not exist."));
    await rm(dir, { recursive: true, force: true });
    res.writeHead(204).end();
  };

  const requests: Array<{ method: string; url: string }> = [];
  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    requests.push({ method: req.method ?? "", url: req.url ?? "" });
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    const [bucket = "", ...keyParts] = url.pathname.slice(1).split("/");
    const hasKey = keyParts.join("/") !== "";
    const keyId = accessKeyIdOf(req);
    const secrets = new Map([
      [accessKeyId, secretAccessKey],
      [readOnlyAccessKeyId, readOnlySecretAccessKey],
    ]);
    if (keyId !== undefined && secrets.has(keyId) && !signatureV4Matches(req, (id) => secrets.get(id))) {
      req.resume();
      return sendXml(res, 403, s3ErrorXml("SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your key and signing method."));
    }
    if (keyId === readOnlyAccessKeyId && req.method !== "GET" && req.method !== "HEAD") {
      req.resume();
      return sendXml(res, 403, s3ErrorXml("AccessDenied", "Access Denied"));
    }
    const listing = req.method === "GET" && !hasKey && url.searchParams.has("uploads");
    const aborting = req.method === "DELETE" && hasKey && url.searchParams.has("uploadId");
    if (listing || aborting) {
      // s3rver checks signatures on everything else; these two check at least the key id.
      if (keyId !== accessKeyId) return sendXml(res, 403, s3ErrorXml("InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records."));
      const done = listing ? listUploads(res, decodeURIComponent(bucket), url.searchParams.get("prefix") ?? "") : abortUpload(res, decodeURIComponent(bucket), url.searchParams.get("uploadId") ?? "");
      done.catch((error: unknown) => {
        if (!res.headersSent) sendXml(res, 500, s3ErrorXml("InternalError", String(error)));
      });
      return;
    }
    s3rverHandler(req, res);
  });

  const endpoint = `http://127.0.0.1:${port}`;
  const region = "us-east-1";
  return {
    endpoint,
    port,
    region,
    accessKeyId,
    secretAccessKey,
    readOnlyAccessKeyId,
    readOnlySecretAccessKey,
    requests,
    client: () =>
      new S3Client({
        region,
        endpoint,
        forcePathStyle: true,
        credentials: { accessKeyId, secretAccessKey },
        requestChecksumCalculation: "WHEN_REQUIRED",
        responseChecksumValidation: "WHEN_REQUIRED",
      }),
    async stop() {
      server.closeAllConnections();
      await app.close();
      accounts.DUMMY_ACCOUNT.revokeAccessKey(accessKeyId);
      accounts.DUMMY_ACCOUNT.revokeAccessKey(readOnlyAccessKeyId);
      await rm(directory, { recursive: true, force: true });
    },
  };
}
