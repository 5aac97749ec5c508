import { createHash, randomBytes } from "node:crypto";
import { posix } from "node:path";
import type { Readable } from "node:stream";
import SftpClient from "ssh2-sftp-client";
import type { Client, ServerHostKeyAlgorithm, SFTPWrapper, Stats } from "ssh2";
import { z } from "zod";
import { DestinationError } from "../errors.js";
import type { DestinationErrorCode } from "../errors.js";
import { InternalAddressError, resolvePublicAddresses } from "../network/public-address.js";
import { BlockedEndpointError, hostSettingProblem, refusingBlockedEndpoints, SECURE_ENDPOINTS } from "./endpoint-policy.js";
import type { EndpointPolicy } from "./endpoint-policy.js";
import type { DeliveryMeta, DeliveryResult, DestinationAdapter, VerifyResult } from "./types.js";

/**
 * SFTP destination (ssh2-sftp-client over ssh2).
 *
 * Safety rules:
 * - the server's host key is pinned at the first verification (OpenSSH "SHA256:…" form, with the
 *   key's type) and any other key is refused afterwards, so a changed or spoofed server never
 *   receives a file; connections ask for a key of the pinned type only, so a server that adds a
 *   key of another type (which ssh2 might prefer) still shows the pinned one;
 * - a file is written under a hidden temporary name in the target folder and renamed into place
 *   (posix-rename, which replaces an existing file, so a retry never leaves two copies);
 * - when the server forbids rename the file is written directly to its final name and the run
 *   says so in its notes;
 * - nothing waits forever: the SSH handshake, opening the SFTP channel and every SFTP request have a
 *   time limit (a server that stops answering fails the delivery as a retryable "timeout"), and a
 *   closed SFTP channel fails every request at once, including the clean-up after a failure.
 */

const FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{43}$/;

/**
 * The host key types ssh2 negotiates (the name at the start of the key blob), each with the host
 * key algorithms that authenticate the server with a key of that type (RSA keys sign with several).
 */
const HOST_KEY_ALGORITHMS = {
  "ssh-ed25519": ["ssh-ed25519"],
  "ecdsa-sha2-nistp256": ["ecdsa-sha2-nistp256"],
  "ecdsa-sha2-nistp384": ["ecdsa-sha2-nistp384"],
  "ecdsa-sha2-nistp521": ["ecdsa-sha2-nistp521"],
  "ssh-rsa": ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"],
} as const satisfies Record<string, readonly ServerHostKeyAlgorithm[]>;
export type SshHostKeyType = keyof typeof HOST_KEY_ALGORITHMS;
const HOST_KEY_TYPES = Object.keys(HOST_KEY_ALGORITHMS) as [SshHostKeyType, ...SshHostKeyType[]];

export const sftpConfigSchema = z.object({
  host: z
    .string()
    .trim()
    .min(1)
    .max(255)
    .regex(/^[^\s/@]+$/, "a host name or IP address, without user, scheme or path"),
  port: z.number().int().min(1).max(65535).default(22),
  username: z.string().min(1).max(128),
  /** Remote folder, absolute or relative to the login directory. */
  folder: z.string().min(1).max(1024).default("."),
  /** Pinned at verification; a server presenting another key is refused. */
  hostKeyFingerprint: z.string().regex(FINGERPRINT, 'an OpenSSH SHA-256 fingerprint, "SHA256:" + 43 base64 characters').optional(),
  /**
   * The type of the pinned key ("ssh-rsa", "ssh-ed25519", "ecdsa-sha2-nistp256"…), recorded with
   * the fingerprint: connections ask the server for a key of this type only, so a key of another
   * type added to the server later does not hide the pinned one. Ignored without a fingerprint;
   * a pin made before it was recorded has none and is checked against the key the server prefers.
   */
  hostKeyType: z.enum(HOST_KEY_TYPES).optional(),
  /** Learned at verification: false when the server refuses to rename files (direct upload then). */
  renameAllowed: z.boolean().optional(),
});
export type SftpConfig = z.output<typeof sftpConfigSchema>;

/** The settings schema under an endpoint policy: without ALLOW_INSECURE_ENDPOINTS the host may not be in this service's own network. */
export function sftpConfigSchemaFor(policy: EndpointPolicy): z.ZodType<SftpConfig> {
  return refusingBlockedEndpoints(sftpConfigSchema, policy, ["host"], (config) => hostSettingProblem(config.host, policy));
}

export const sftpCredentialsSchema = z
  .object({
    password: z.string().min(1).max(1024).optional(),
    privateKey: z.string().min(1).max(32_768).optional(),
    passphrase: z.string().min(1).max(1024).optional(),
  })
  .refine((c) => (c.password === undefined) !== (c.privateKey === undefined), {
    message: "give either a password or a private key",
  })
  .refine((c) => c.passphrase === undefined || c.privateKey !== undefined, {
    message: "a passphrase goes with a private key",
    path: ["passphrase"],
  });
export type SftpCredentials = z.output<typeof sftpCredentialsSchema>;

/** The type named at the start of an SSH public key blob (a uint32 length, then the name), if it is one ssh2 negotiates. */
function sshKeyType(keyBlob: Buffer): SshHostKeyType | undefined {
  if (keyBlob.length < 4) return undefined;
  const length = keyBlob.readUInt32BE(0);
  if (length > keyBlob.length - 4) return undefined;
  const name = keyBlob.toString("latin1", 4, 4 + length);
  return Object.hasOwn(HOST_KEY_ALGORITHMS, name) ? (name as SshHostKeyType) : undefined;
}

/** OpenSSH's form of a host key fingerprint: "SHA256:" + unpadded base64 of the key blob's sha256. */
export function sshFingerprint(keyBlob: Buffer): string {
  return `SHA256:${createHash("sha256").update(keyBlob).digest("base64").replace(/=+$/, "")}`;
}

// SFTP status codes (draft-ietf-secsh-filexfer-02).
const SFTP_NO_SUCH_FILE = 2;
const SFTP_PERMISSION_DENIED = 3;
const SFTP_FAILURE = 4;
const SFTP_OP_UNSUPPORTED = 8;

/** Writes in flight per upload; with 64 KiB slices this keeps a fast link busy without much memory. */
const WRITES_IN_FLIGHT = 32;
const WRITE_SLICE = 64 * 1024;
/** Reads in flight when copying a remote file (rename fallback). */
const READS_AHEAD = 8;
const READY_TIMEOUT_MS = 20_000;
/** Default for SftpAdapterOptions.requestTimeoutMs. */
const REQUEST_TIMEOUT_MS = 60_000;
/** Default for SftpAdapterOptions.wholeFileBytesPerSecond: 4 MiB/s, a slow object-store copy. */
const WHOLE_FILE_BYTES_PER_SECOND = 4 * 1024 * 1024;
/** How long an ending connection may take to close before its socket is destroyed. */
const END_GRACE_MS = 2_000;

export interface SftpAdapterOptions {
  /**
   * How long SFTP requests may wait while the server answers none of them (default 60 s), and how
   * long opening the SFTP channel may take after the SSH handshake. Past it the connection is
   * dropped and the delivery or verification fails as a retryable "timeout". Measured from the
   * server's last answer, so a slow link that keeps answering is never cut off.
   */
  requestTimeoutMs?: number;
  /**
   * The requests that make a server handle the whole file (closing it after the writes, renaming
   * it) may wait requestTimeoutMs plus the file's size at this rate (default 4 MiB/s): servers
   * backed by object storage (AWS Transfer Family, Azure Blob) upload or copy the whole file
   * then, and answer nothing meanwhile, however long it is.
   */
  wholeFileBytesPerSecond?: number;
}

interface SftpLimits {
  requestTimeoutMs: number;
  wholeFileBytesPerSecond: number;
}

interface SftpSession {
  sftp: SFTPWrapper;
  fingerprint: string;
  /** The type of the key the server presented (undefined for one ssh2 does not name). */
  keyType: SshHostKeyType | undefined;
  /**
   * Set when the connection or the SFTP channel is gone, or the server stopped answering: requests
   * sent after that would never be answered (ssh2 silently drops them on a closed channel).
   */
  lost: Error | undefined;
  /**
   * Rejecters of the requests awaiting an answer (failed at once when the session is lost), each
   * with how long it may wait for an answer.
   */
  pending: Map<(error: Error) => void, number>;
  /** How long a request that makes the server handle a whole file of `bytes` may wait (see wholeFileBytesPerSecond). */
  wholeFileWait(bytes: number): number;
  /** (Re)starts the stall timer while requests are pending: on each answer, and when a request is sent with none pending. */
  watch(): void;
  /** Closes the connection; settles within END_GRACE_MS whatever the server does. */
  end(): Promise<void>;
}

interface SftpStatusError extends Error {
  code?: number | string;
  level?: string;
}

function where(config: SftpConfig): string {
  return `${config.host}:${config.port}`;
}

/**
 * The address to connect to: under the secure policy the host is resolved here, every address
 * checked, and the connection made to a checked one (a name that resolves elsewhere a moment
 * later cannot redirect it into our network).
 */
async function addressOf(config: SftpConfig, policy: EndpointPolicy): Promise<string> {
  if (policy.allowInsecureEndpoints) return config.host;
  const problem = hostSettingProblem(config.host, policy);
  if (problem) throw new BlockedEndpointError("config.host", `config.host ${problem}`);
  try {
    const [first] = await resolvePublicAddresses(config.host);
    return first!.address;
  } catch (error) {
    if (error instanceof InternalAddressError) {
      throw new BlockedEndpointError("config.host", `config.host: ${error.message}; destinations must be reachable on the public internet`);
    }
    throw connectError(config, error as SftpStatusError);
  }
}

function seconds(ms: number): string {
  return `${Math.round(ms / 100) / 10} s`;
}

/** Resolves true when `promise` settles within `ms`, false otherwise (the timer never holds the process open). */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
    timer.unref();
  });
  try {
    return await Promise.race([promise.then(() => true, () => true), expired]);
  } finally {
    clearTimeout(timer);
  }
}

async function connect(config: SftpConfig, credentials: SftpCredentials, policy: EndpointPolicy, limits: SftpLimits): Promise<SftpSession> {
  const address = await addressOf(config, policy);
  const client = new SftpClient("transporter", { error: () => {}, end: () => {}, close: () => {} });
  // The ssh2 connection itself: ssh2-sftp-client's end() leaves it open while no SFTP channel is up.
  const ssh = (client as unknown as { client: Client }).client;
  const closed = new Promise<void>((resolve) => ssh.once("close", () => resolve()));
  let presented: string | undefined;
  let presentedType: SshHostKeyType | undefined;
  // With a pin of a known type, only that type's algorithms are offered: the server shows the pinned
  // key even when it also holds keys of types ssh2 prefers.
  const pinnedType = config.hostKeyFingerprint !== undefined ? config.hostKeyType : undefined;
  let rawError: SftpStatusError | undefined;
  let stallTimer: NodeJS.Timeout | undefined;
  const state: Pick<SftpSession, "lost" | "pending"> = { lost: undefined, pending: new Map() };

  let ending: Promise<void> | undefined;
  /** Ends the connection politely, and destroys its socket if it is not closed within END_GRACE_MS. */
  const end = (): Promise<void> =>
    (ending ??= (async () => {
      clearTimeout(stallTimer);
      try {
        ssh.end();
      } catch {
        // Never connected.
      }
      if (!(await settlesWithin(closed, END_GRACE_MS))) ssh.destroy();
    })());
  const markLost = (error: Error) => {
    state.lost ??= error;
    clearTimeout(stallTimer);
    stallTimer = undefined;
    for (const abort of state.pending.keys()) abort(state.lost);
    state.pending.clear();
  };
  const onStall = (waitedMs: number) => {
    markLost(new DestinationError("timeout", `${where(config)} stopped answering SFTP requests (nothing for ${seconds(waitedMs)}); the connection was dropped`));
    void end();
  };
  const watch = () => {
    clearTimeout(stallTimer);
    stallTimer = undefined;
    if (state.pending.size === 0 || state.lost !== undefined) return;
    // As long as the most patient request pending may wait: a server busy with a whole file answers nothing else meanwhile.
    const waitMs = Math.max(...state.pending.values());
    stallTimer = setTimeout(() => onStall(waitMs), waitMs);
  };
  const wholeFileWait = (bytes: number) => limits.requestTimeoutMs + Math.ceil((bytes * 1000) / limits.wholeFileBytesPerSecond);
  // ssh2-sftp-client rewraps errors and drops `level`; keep the original to classify precisely.
  client.on("error", (error: SftpStatusError) => {
    rawError ??= error;
    markLost(error);
  });
  client.on("end", () => markLost(new Error("connection ended")));
  client.on("close", () => markLost(new Error("connection closed")));

  // readyTimeout covers the connection and SSH handshake only; opening the SFTP channel gets its own limit.
  let openTimer: NodeJS.Timeout | undefined;
  const openTimedOut = new Promise<never>((_resolve, reject) => {
    ssh.once("ready", () => {
      openTimer = setTimeout(
        () => reject(new DestinationError("timeout", `${where(config)} did not open the SFTP session within ${seconds(limits.requestTimeoutMs)}`)),
        limits.requestTimeoutMs,
      );
    });
  });
  openTimedOut.catch(() => undefined);

  try {
    const connecting = client.connect({
      host: address,
      port: config.port,
      username: config.username,
      ...(credentials.password !== undefined ? { password: credentials.password } : {}),
      ...(credentials.privateKey !== undefined ? { privateKey: credentials.privateKey } : {}),
      ...(credentials.passphrase !== undefined ? { passphrase: credentials.passphrase } : {}),
      tryKeyboard: false,
      readyTimeout: READY_TIMEOUT_MS,
      keepaliveInterval: 10_000,
      keepaliveCountMax: 3,
      retries: 0,
      ...(pinnedType !== undefined ? { algorithms: { serverHostKey: [...HOST_KEY_ALGORITHMS[pinnedType]] } } : {}),
      hostVerifier: (key: Buffer) => {
        presented = sshFingerprint(key);
        presentedType = sshKeyType(key);
        return config.hostKeyFingerprint === undefined || config.hostKeyFingerprint === presented;
      },
    });
    // Settles later when the channel-open limit wins the race below.
    connecting.catch(() => undefined);
    const sftp = await Promise.race([connecting, openTimedOut]);
    clearTimeout(openTimer);
    if (presented === undefined) throw new DestinationError("protocol", `${where(config)} did not present a host key`);
    // The channel can close (the server's sftp process died) while the connection stays up: the
    // requests in flight are answered with an error, later ones would be dropped unanswered.
    sftp.on("error", (error: Error) => markLost(error));
    sftp.on("end", () => markLost(new Error("SFTP session ended")));
    sftp.on("close", () => markLost(new Error("SFTP session closed")));
    if (state.lost) throw state.lost;
    return Object.assign(state, { sftp, fingerprint: presented, keyType: presentedType, watch, wholeFileWait, end });
  } catch (error) {
    clearTimeout(openTimer);
    markLost(error instanceof Error ? error : new Error(String(error)));
    void end();
    if (error instanceof DestinationError) throw error;
    const replacedOnPurpose =
      "Nothing was sent. If the server's key was replaced on purpose, update the destination with the new fingerprint (or clear it to pin again).";
    if (presented !== undefined && config.hostKeyFingerprint !== undefined && presented !== config.hostKeyFingerprint) {
      throw new DestinationError(
        "host_key_changed",
        `the host key of ${where(config)} changed: pinned ${config.hostKeyFingerprint}, the server now presents ${presented}. ${replacedOnPurpose}`,
      );
    }
    if (presented === undefined && pinnedType !== undefined && rawError?.level === "handshake" && /no matching host key/i.test(rawError.message)) {
      throw new DestinationError(
        "host_key_changed",
        `the host key of ${where(config)} changed: pinned ${config.hostKeyFingerprint} (a ${pinnedType} key), the server no longer offers a key of that type. ${replacedOnPurpose}`,
      );
    }
    throw connectError(config, rawError ?? (error as SftpStatusError));
  }
}

function connectError(config: SftpConfig, error: SftpStatusError): DestinationError {
  const code = typeof error.code === "string" ? error.code : undefined;
  const message = error.message ?? "";
  const fail = (kind: DestinationErrorCode, text: string) => new DestinationError(kind, text, { cause: error.code });
  if (code === "ENOTFOUND" || code === "EAI_NONAME" || code === "EAI_AGAIN" || code === "EAI_FAIL") {
    return fail("dns", `cannot resolve the host name "${config.host}" (${code})`);
  }
  if (code === "ECONNREFUSED") return fail("connect", `${where(config)} refused the connection: is the port right and the SFTP server running?`);
  if (code === "EHOSTUNREACH" || code === "ENETUNREACH" || code === "ECONNRESET" || code === "EPIPE") {
    return fail("connect", `cannot connect to ${where(config)} (${code})`);
  }
  if (code === "ETIMEDOUT" || error.level === "client-timeout") {
    return fail("timeout", `${where(config)} did not complete the SSH handshake in time`);
  }
  if (error.level === "client-authentication") {
    return fail("auth", `${where(config)} rejected the credentials of user "${config.username}"`);
  }
  // ssh2 throws "Cannot parse privateKey: …" before connecting; its text never holds key material.
  if (message.includes("privateKey") || message.includes("passphrase")) {
    return fail("auth", "the private key could not be read: wrong passphrase, or not an OpenSSH/PEM private key");
  }
  return fail("protocol", `SSH connection to ${where(config)} failed${code ? ` (${code})` : ""}`);
}

/**
 * Runs one callback-style SFTP request. It fails at once when the session is lost meanwhile (or
 * already was: a request on a closed channel would never be answered), and with a "timeout" when
 * the server answers nothing for `waitMs` (default requestTimeoutMs) while it waits.
 */
function call<T>(session: SftpSession, run: (done: (error: Error | undefined | null, value?: T) => void) => void, waitMs?: number): Promise<T> {
  if (session.lost) return Promise.reject(session.lost);
  return new Promise<T>((resolve, reject) => {
    const idle = session.pending.size === 0;
    session.pending.set(reject, waitMs ?? session.wholeFileWait(0));
    if (idle || waitMs !== undefined) session.watch();
    try {
      run((error, value) => {
        // Already failed with the lost session's error.
        if (!session.pending.delete(reject)) return;
        session.watch();
        if (error) reject(error);
        else resolve(value as T);
      });
    } catch (error) {
      session.pending.delete(reject);
      session.watch();
      reject(error);
    }
  });
}

function statusOf(error: unknown): number | undefined {
  const code = (error as SftpStatusError | undefined)?.code;
  return typeof code === "number" ? code : undefined;
}

async function statOrNull(session: SftpSession, path: string): Promise<Stats | null> {
  try {
    return await call<Stats>(session, (done) => session.sftp.stat(path, done));
  } catch (error) {
    if (statusOf(error) === SFTP_NO_SUCH_FILE) return null;
    throw error;
  }
}

async function removeQuietly(session: SftpSession, path: string): Promise<boolean> {
  try {
    await call<void>(session, (done) => session.sftp.unlink(path, done));
    return true;
  } catch {
    return false;
  }
}

/** Maps an SFTP request failure to what the tenant can do about it. */
function operationError(config: SftpConfig, what: string, path: string, error: unknown): DestinationError {
  if (error instanceof DestinationError) return error;
  const status = statusOf(error);
  const at = `${where(config)}:${path}`;
  if (status === SFTP_PERMISSION_DENIED) return new DestinationError("permission", `permission denied to ${what} ${at} for user "${config.username}"`);
  if (status === SFTP_NO_SUCH_FILE) return new DestinationError("not_found", `cannot ${what} ${at}: no such file or folder`);
  if (status === undefined) return new DestinationError("connect", `the connection to ${where(config)} was lost while trying to ${what} ${path}`);
  return new DestinationError("protocol", `the server refused to ${what} ${at} (SFTP status ${status})`);
}

/** Creates each missing folder of `dir`, one level at a time (folders that exist are left alone). */
async function ensureFolder(session: SftpSession, config: SftpConfig, dir: string): Promise<void> {
  const existing = await statOrNull(session, dir).catch(failedTo(config, "look up folder", dir));
  if (existing) {
    if (!existing.isDirectory()) throw new DestinationError("not_found", `${where(config)}:${dir} is a file, not a folder`);
    return;
  }
  const parent = posix.dirname(dir);
  if (parent !== dir) await ensureFolder(session, config, parent);
  try {
    await call<void>(session, (done) => session.sftp.mkdir(dir, done));
  } catch (error) {
    // Another delivery may have created it meanwhile.
    if ((await statOrNull(session, dir).catch(() => null))?.isDirectory()) return;
    throw operationError(config, "create folder", dir, error);
  }
}

/** The body being delivered failed to read (a staging problem, not the destination's). */
class SourceReadError extends Error {
  constructor(readonly original: unknown) {
    super("reading the file to deliver failed");
  }
}

async function* readSource(body: AsyncIterable<Buffer | string> | Iterable<Buffer>): AsyncGenerator<Buffer> {
  try {
    for await (const chunk of body) yield typeof chunk === "string" ? Buffer.from(chunk) : chunk;
  } catch (error) {
    throw new SourceReadError(error);
  }
}

/** A `.catch` handler: source failures pass through untouched, remote ones become DestinationErrors. */
function failedTo(config: SftpConfig, what: string, path: string) {
  return (error: unknown): never => {
    throw error instanceof SourceReadError ? error : operationError(config, what, path, error);
  };
}

interface Written {
  bytes: number;
  checksum: string;
}

/**
 * Streams `body` into `path` with several writes in flight (one at a time is bound by the
 * round trip and is several times slower than OpenSSH's own client), hashing on the way.
 */
async function upload(session: SftpSession, body: AsyncIterable<Buffer | string> | Iterable<Buffer>, path: string): Promise<Written> {
  const { sftp } = session;
  const handle = await call<Buffer>(session, (done) => sftp.open(path, "w", done));
  const hash = createHash("sha256");
  const inFlight = new Set<Promise<void>>();
  let failure: unknown;
  let position = 0;
  let closed = false;
  const send = (slice: Buffer, at: number) => {
    const write = call<void>(session, (done) => sftp.write(handle, slice, 0, slice.length, at, done)).then(
      () => {
        inFlight.delete(write);
      },
      (error: unknown) => {
        inFlight.delete(write);
        failure ??= error;
      },
    );
    inFlight.add(write);
  };
  try {
    for await (const buffer of readSource(body)) {
      hash.update(buffer);
      for (let offset = 0; offset < buffer.length; offset += WRITE_SLICE) {
        while (inFlight.size >= WRITES_IN_FLIGHT) await Promise.race(inFlight);
        if (failure !== undefined) throw failure;
        const slice = buffer.subarray(offset, Math.min(offset + WRITE_SLICE, buffer.length));
        send(slice, position);
        position += slice.length;
      }
    }
    await Promise.all(inFlight);
    if (failure !== undefined) throw failure;
    closed = true;
    // Closing is when a server on object storage uploads the file it buffered: the whole file's time.
    await call<void>(session, (done) => sftp.close(handle, done), session.wholeFileWait(position));
    return { bytes: position, checksum: hash.digest("hex") };
  } finally {
    if (!closed) {
      await Promise.allSettled(inFlight);
      await call<void>(session, (done) => sftp.close(handle, done)).catch(() => undefined);
    }
  }
}

/**
 * Reads a remote file in slices, a few reads ahead of the consumer (like a read stream's buffer,
 * so reading does not wait behind each write of the copy), each read a request under the
 * session's time limit. A file that changes meanwhile yields other bytes: callers compare checksums.
 */
async function* readRemote(session: SftpSession, path: string): AsyncGenerator<Buffer> {
  const { sftp } = session;
  const handle = await call<Buffer>(session, (done) => sftp.open(path, "r", done));
  const ahead: Promise<Buffer>[] = [];
  try {
    const { size } = await call<Stats>(session, (done) => sftp.fstat(handle, done));
    const readAt = async (at: number, length: number): Promise<Buffer> => {
      const buffer = Buffer.allocUnsafe(length);
      let filled = 0;
      while (filled < length) {
        const offset = filled;
        const bytes = await call<number>(session, (done) => sftp.read(handle, buffer, offset, length - offset, at + offset, (error, read) => done(error, read)));
        if (bytes === 0) break;
        filled += bytes;
      }
      return buffer.subarray(0, filled);
    };
    let next = 0;
    const refill = () => {
      while (ahead.length < READS_AHEAD && next < size) {
        const length = Math.min(WRITE_SLICE, size - next);
        const read = readAt(next, length);
        // Awaited in order below, or settled in `finally`.
        read.catch(() => undefined);
        ahead.push(read);
        next += length;
      }
    };
    refill();
    for (let read = ahead.shift(); read !== undefined; read = ahead.shift()) {
      const chunk = await read;
      refill();
      yield chunk;
    }
  } finally {
    await Promise.allSettled(ahead);
    await call<void>(session, (done) => sftp.close(handle, done)).catch(() => undefined);
  }
}

/** Copies one remote file to another over the same connection (rename fallback). */
async function copyRemote(session: SftpSession, from: string, to: string): Promise<Written> {
  try {
    return await upload(session, readRemote(session, from), to);
  } catch (error) {
    // Here the source is remote too: report its failure like any other remote one.
    throw error instanceof SourceReadError ? error.original : error;
  }
}

/**
 * Moves `from` (a file of `bytes`) onto `to`, replacing `to`. Returns false when the server
 * forbids renaming. A server on object storage renames by copying: each rename may take the whole
 * file's time.
 */
async function renameInto(session: SftpSession, from: string, to: string, bytes: number): Promise<boolean> {
  const { sftp } = session;
  const waitMs = session.wholeFileWait(bytes);
  try {
    // posix-rename replaces the target atomically; plain SFTP rename refuses an existing target.
    await call<void>(session, (done) => sftp.ext_openssh_rename(from, to, done), waitMs);
    return true;
  } catch (error) {
    const status = statusOf(error);
    if (status === SFTP_PERMISSION_DENIED) return false;
    if (status !== undefined && status !== SFTP_OP_UNSUPPORTED && status !== SFTP_FAILURE) throw error;
    if (status === undefined && !(error instanceof Error && /not support/i.test(error.message))) throw error;
  }
  const aside = posix.join(posix.dirname(from), posix.basename(from).replace(/\.part$/, "") + ".old");
  try {
    await call<void>(session, (done) => sftp.rename(from, to, done), waitMs);
    // An earlier attempt cut off while replacing (see below) may have left the old file aside.
    await removeQuietly(session, aside);
    return true;
  } catch (error) {
    const status = statusOf(error);
    if (status === SFTP_PERMISSION_DENIED || status === SFTP_OP_UNSUPPORTED) return false;
    // Only a file is replaced: a folder of the file's name stays as it is, and the delivery fails.
    if (status !== SFTP_FAILURE || !(await statOrNull(session, to))?.isFile()) throw error;
  }
  // Plain rename failed because the target exists (a previous delivery of this file), and the
  // server has nothing that replaces a file. Deleting it first would leave the name without any
  // file if the rename then failed (the attempt's clean-up removes the new copy too): the old
  // file is moved aside instead, put back if the new one cannot take its place, and removed once
  // it has. A copy aside from an earlier attempt is stale (the name holds a file), so it goes first.
  await removeQuietly(session, aside);
  await call<void>(session, (done) => sftp.rename(to, aside, done), waitMs);
  try {
    await call<void>(session, (done) => sftp.rename(from, to, done), waitMs);
  } catch (error) {
    await call<void>(session, (done) => sftp.rename(aside, to, done), waitMs).catch(() => undefined);
    throw error;
  }
  await removeQuietly(session, aside);
  return true;
}

function folderOf(config: SftpConfig, subfolder: string | undefined): string {
  return posix.normalize(subfolder ? posix.join(config.folder, subfolder) : config.folder);
}

/**
 * The hidden temporary name of a run's upload: short whatever the file's name (a name near the
 * 255-byte limit must still fit), and the same on every retry of the run, so a retry overwrites
 * the temporary file a dropped connection left behind.
 */
function tempNameFor(runId: string): string {
  const id = /^[A-Za-z0-9_-]{1,64}$/.test(runId) ? runId : createHash("sha256").update(runId).digest("hex").slice(0, 32);
  return `.tp-${id}.part`;
}

async function checkSize(session: SftpSession, config: SftpConfig, path: string, expected: number): Promise<void> {
  const stats = await statOrNull(session, path);
  if (!stats || stats.size !== expected) {
    throw new DestinationError(
      "verification_failed",
      `${where(config)}:${path} holds ${stats ? stats.size : "no"} bytes after upload, expected ${expected}`,
    );
  }
}

async function deliver(
  body: Readable,
  fileName: string,
  meta: DeliveryMeta,
  config: SftpConfig,
  credentials: SftpCredentials,
  policy: EndpointPolicy,
  limits: SftpLimits,
): Promise<DeliveryResult> {
  if (!fileName || fileName.includes("/") || fileName === "." || fileName === "..") {
    throw new DestinationError("protocol", `invalid file name ${JSON.stringify(fileName)}`);
  }
  const notes: string[] = [];
  // The body may fail while the connection is made, before anything reads it: heard now, its
  // error is not uncaught; the upload's read of the errored stream throws it.
  body.on("error", () => undefined);
  let session: SftpSession;
  try {
    session = await connect(config, credentials, policy, limits);
  } catch (error) {
    body.destroy();
    throw error;
  }
  if (config.hostKeyFingerprint === undefined) {
    notes.push(`host key of ${where(config)} was not pinned; accepted ${session.fingerprint} for this delivery`);
  }
  const folder = folderOf(config, meta.subfolder);
  // Remote files that must not outlive a failure: the temp file, or a final file not yet verified.
  let unfinished: string[] = [];
  try {
    await ensureFolder(session, config, folder);
    const absoluteFolder = await call<string>(session, (done) => session.sftp.realpath(folder, done)).catch(() => folder);
    const finalPath = posix.join(absoluteFolder, fileName);

    let written: Written;
    if (config.renameAllowed === false) {
      unfinished = [finalPath];
      written = await upload(session, body, finalPath).catch(failedTo(config, "write", finalPath));
      notes.push("server forbids rename: uploaded directly to the final name");
    } else {
      const tempPath = posix.join(absoluteFolder, tempNameFor(meta.runId));
      unfinished = [tempPath];
      written = await upload(session, body, tempPath).catch(failedTo(config, "write", tempPath));
      checkExpected(meta, written);
      await checkSize(session, config, tempPath, written.bytes);
      const renamed = await renameInto(session, tempPath, finalPath, written.bytes).catch(failedTo(config, "rename into place", finalPath));
      unfinished = [finalPath];
      if (!renamed) {
        // The body stream is spent: send the uploaded copy again, this time under the final name.
        unfinished = [tempPath, finalPath];
        const copied = await copyRemote(session, tempPath, finalPath).catch(failedTo(config, "write", finalPath));
        if (copied.checksum !== written.checksum) {
          throw new DestinationError("verification_failed", `${where(config)}:${finalPath} does not match the uploaded file`);
        }
        unfinished = [finalPath];
        const removed = await removeQuietly(session, tempPath);
        notes.push(
          "server forbids rename: uploaded directly to the final name" +
            (removed ? "" : `; could not remove the temporary copy ${tempPath}`),
        );
      }
    }
    checkExpected(meta, written);
    await checkSize(session, config, finalPath, written.bytes);
    unfinished = [];
    return { path: finalPath, bytes: written.bytes, checksum: written.checksum, notes };
  } catch (error) {
    body.destroy();
    // Best effort: after a dropped connection the hidden temp file stays; the retry overwrites and renames it.
    for (const path of unfinished) await removeQuietly(session, path);
    if (error instanceof SourceReadError) throw error.original;
    throw error instanceof DestinationError ? error : operationError(config, "write", folder, error);
  } finally {
    await session.end();
  }
}

function checkExpected(meta: DeliveryMeta, written: Written): void {
  if (meta.expectedBytes !== undefined && meta.expectedBytes !== written.bytes) {
    throw new DestinationError("verification_failed", `read ${written.bytes} bytes from staging, expected ${meta.expectedBytes}`);
  }
}

async function verify(config: SftpConfig, credentials: SftpCredentials, policy: EndpointPolicy, limits: SftpLimits): Promise<VerifyResult<SftpConfig>> {
  let session: SftpSession;
  try {
    session = await connect(config, credentials, policy, limits);
  } catch (error) {
    return { ok: false, error: error instanceof DestinationError ? error : connectError(config, error as SftpStatusError) };
  }
  const folder = posix.normalize(config.folder);
  const probeName = `.transporter-probe-${randomBytes(6).toString("hex")}`;
  const probe = posix.join(folder, probeName);
  const renamed = `${probe}.renamed`;
  let leftOver: string | undefined;
  try {
    const stats = await statOrNull(session, folder).catch(failedTo(config, "open folder", folder));
    if (!stats) return { ok: false, error: new DestinationError("not_found", `folder ${where(config)}:${folder} does not exist`) };
    if (!stats.isDirectory()) return { ok: false, error: new DestinationError("not_found", `${where(config)}:${folder} is not a folder`) };

    leftOver = probe;
    const content = Buffer.from(`transporter probe ${new Date().toISOString()}\n`);
    await upload(session, [content], probe).catch(failedTo(config, "write a file in", folder));
    await checkSize(session, config, probe, content.length);
    const renameAllowed = await renameInto(session, probe, renamed, content.length).catch(failedTo(config, "rename a file in", folder));
    if (renameAllowed) leftOver = renamed;
    if (leftOver === renamed) await checkSize(session, config, renamed, content.length);
    await call<void>(session, (done) => session.sftp.unlink(leftOver as string, done)).catch(failedTo(config, "delete a file in", folder));
    leftOver = undefined;
    return {
      ok: true,
      details:
        `wrote, renamed and deleted a probe file in ${where(config)}:${folder} as "${config.username}"; host key ${session.fingerprint}` +
        (renameAllowed ? "" : "; the server forbids rename, so files will be uploaded directly to their final name"),
      // The key type with its fingerprint: a pin made without one (or the server's key at a first pin) learns it here.
      configUpdates: { hostKeyFingerprint: session.fingerprint, ...(session.keyType !== undefined ? { hostKeyType: session.keyType } : {}), renameAllowed },
    };
  } catch (error) {
    if (leftOver !== undefined) await removeQuietly(session, leftOver);
    return { ok: false, error: error instanceof DestinationError ? error : operationError(config, "write a file in", folder, error) };
  } finally {
    await session.end();
  }
}

/**
 * The SFTP adapter under an endpoint policy (services pass ALLOW_INSECURE_ENDPOINTS through the
 * registry). Its configSchema refuses an internal host when settings are saved; verify and
 * deliver resolve the host, check every address and connect to a checked one.
 */
export function createSftpAdapter(policy: EndpointPolicy, options: SftpAdapterOptions = {}): DestinationAdapter<SftpConfig, SftpCredentials> {
  const limits: SftpLimits = { requestTimeoutMs: options.requestTimeoutMs ?? REQUEST_TIMEOUT_MS, wholeFileBytesPerSecond: options.wholeFileBytesPerSecond ?? WHOLE_FILE_BYTES_PER_SECOND };
  if (!Number.isFinite(limits.requestTimeoutMs) || limits.requestTimeoutMs <= 0) throw new RangeError("requestTimeoutMs must be a positive number of milliseconds");
  if (!Number.isFinite(limits.wholeFileBytesPerSecond) || limits.wholeFileBytesPerSecond <= 0) throw new RangeError("wholeFileBytesPerSecond must be a positive number of bytes per second");
  return {
    kind: "sftp",
    configSchema: sftpConfigSchemaFor(policy),
    credentialsSchema: sftpCredentialsSchema,
    verify: (config, credentials) => verify(config, credentials, policy, limits),
    deliver: (body, fileName, meta, config, credentials) => deliver(body, fileName, meta, config, credentials, policy, limits),
  };
}

/** The adapter with production's policy: hosts outside this service's own network only. */
export const sftpAdapter = createSftpAdapter(SECURE_ENDPOINTS);
