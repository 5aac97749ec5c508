import { execFile, spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmod, chown, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

/**
 * A real OpenSSH sshd (Debian `openssh-server`) on a loopback port for tests: throwaway host key,
 * client keys and system user, all made at run time and removed by stop(). Needs root.
 * The user logs in to `home` (a temp dir) and gets SFTP only (internal-sftp unless `sftpServer` says otherwise).
 */
export interface SshdServer {
  host: string;
  port: number;
  username: string;
  password: string;
  /** OpenSSH-format private keys accepted for the user: one plain, one encrypted with `passphrase`. */
  privateKey: string;
  encryptedPrivateKey: string;
  passphrase: string;
  /** The user's login directory ("." over SFTP); the same path on this machine. */
  home: string;
  /** Fingerprint of the current host key (the first offered type's) as `ssh-keygen -l -E sha256` prints it. */
  hostKeyFingerprint: string;
  /** Fingerprints of the host keys offered now, by type. */
  hostKeyFingerprints: Partial<Record<SshdHostKeyType, string>>;
  uid: number;
  gid: number;
  /** Restarts sshd on the same port with a new host key of `type` (default: the first offered type), a "changed server". */
  replaceHostKey(type?: SshdHostKeyType): Promise<void>;
  /** Restarts sshd on the same port offering host keys of these types: a type offered before keeps its key, another gets a new one. */
  offerHostKeys(types: SshdHostKeyType[]): Promise<void>;
  /** SIGKILLs this sshd's per-connection processes: every open session drops at once. */
  killSessions(): Promise<number>;
  /**
   * Sends `signal` to every stand-alone sftp-server serving a session now (`sftpServer: "process"`)
   * and returns their PIDs. Only that SFTP channel is affected: sshd and the SSH connection stay up.
   * Processes signalled here are SIGKILLed by stop() if still alive (a SIGSTOPped one would outlive its session).
   */
  signalSftpServers(signal: NodeJS.Signals): Promise<number[]>;
  stop(): Promise<void>;
}

export type SshdHostKeyType = "ed25519" | "rsa" | "ecdsa";

export interface SshdOptions {
  /** The host keys sshd offers, one of each type (default: one ed25519 key). */
  hostKeyTypes?: SshdHostKeyType[];
  /** internal-sftp denies rename and posix-rename requests (`-P rename,posix-rename`). */
  denyRename?: boolean;
  /**
   * What serves SFTP: "internal" (default) is internal-sftp inside sshd's session process;
   * "process" is OpenSSH's stand-alone sftp-server, one child process per session, which a test can
   * freeze or kill with signalSftpServers; "mute" accepts the SFTP channel but never answers on it
   * (it reads and discards until the client goes away), like a hung server.
   */
  sftpServer?: "internal" | "process" | "mute";
  /**
   * OpenSSH's stand-alone sftp-server behind a relay that holds the answer to each rename request
   * this long (a server on object storage, which renames by copying the whole file).
   */
  slowRenameMs?: number;
  /**
   * OpenSSH's stand-alone sftp-server behind a relay that hides its posix-rename extension: a
   * server with SFTPv3's rename alone, which refuses an existing target and has nothing that
   * replaces a file. `failRetriedRename`: the relay also fails every rename of a `.part` file after
   * the session's first (answering SSH_FX_FAILURE itself), as a server that errors between the
   * steps of replacing a file would.
   */
  plainRenameOnly?: { failRetriedRename?: boolean };
}

/**
 * The relay of `slowRenameMs`: passes SFTP packets both ways (uint32 length, type byte, uint32
 * request id), noting the ids of rename and posix-rename requests, and holds their answers.
 */
const SLOW_RENAME_RELAY = String.raw`
import struct, subprocess, sys, threading, time
delay = int(sys.argv[1]) / 1000
server = subprocess.Popen([sys.argv[2]], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
slow = set()
def packets(stream):
    while True:
        head = stream.read(4)
        if len(head) < 4: return
        body = stream.read(struct.unpack(">I", head)[0])
        yield head + body
def requests():
    for packet in packets(sys.stdin.buffer):
        kind = packet[4]
        if kind == 18 or (kind == 200 and b"posix-rename@openssh.com" in packet[9:40]):
            slow.add(struct.unpack(">I", packet[5:9])[0])
        server.stdin.write(packet)
        server.stdin.flush()
    server.stdin.close()
threading.Thread(target=requests, daemon=True).start()
for packet in packets(server.stdout):
    if packet[4] != 2 and struct.unpack(">I", packet[5:9])[0] in slow: time.sleep(delay)
    sys.stdout.buffer.write(packet)
    sys.stdout.buffer.flush()
`;

/**
 * The relay of `plainRenameOnly`: passes SFTP packets both ways, drops posix-rename@openssh.com
 * from the server's SSH_FXP_VERSION, and (argv[1] == "fail") answers the second and later
 * SSH_FXP_RENAME of a path ending in ".part" with SSH_FX_FAILURE instead of passing it on.
 */
const PLAIN_RENAME_RELAY = String.raw`
import struct, subprocess, sys, threading
fail = sys.argv[1] == "fail"
server = subprocess.Popen([sys.argv[2]], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
out = threading.Lock()
def send(packet):
    with out:
        sys.stdout.buffer.write(packet)
        sys.stdout.buffer.flush()
def packets(stream):
    while True:
        head = stream.read(4)
        if len(head) < 4: return
        body = stream.read(struct.unpack(">I", head)[0])
        yield head + body
def string_at(data, at):
    n = struct.unpack(">I", data[at:at + 4])[0]
    return data[at + 4:at + 4 + n], at + 4 + n
def requests():
    part_renames = 0
    for packet in packets(sys.stdin.buffer):
        if packet[4] == 18:
            old, _ = string_at(packet, 9)
            if old.endswith(b".part"):
                part_renames += 1
                if fail and part_renames > 1:
                    message = b"injected failure"
                    body = bytes([101]) + packet[5:9] + struct.pack(">I", 4) + struct.pack(">I", len(message)) + message + struct.pack(">I", 0)
                    send(struct.pack(">I", len(body)) + body)
                    continue
        server.stdin.write(packet)
        server.stdin.flush()
    server.stdin.close()
threading.Thread(target=requests, daemon=True).start()
for packet in packets(server.stdout):
    if packet[4] == 2:
        kept, at = packet[5:9], 9
        while at < len(packet):
            name, at = string_at(packet, at)
            data, at = string_at(packet, at)
            if name != b"posix-rename@openssh.com":
                kept += struct.pack(">I", len(name)) + name + struct.pack(">I", len(data)) + data
        body = bytes([2]) + kept
        packet = struct.pack(">I", len(body)) + body
    send(packet)
`;

const run = promisify(execFile);
const USER_LOCK = "/tmp/transporter-test-useradd.lock";
const USER_PREFIX = "tpsftp";
/** Debian's openssh-server path of the stand-alone SFTP server. */
const SFTP_SERVER = "/usr/lib/openssh/sftp-server";

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

async function keygen(path: string, type: SshdHostKeyType, passphrase = ""): Promise<void> {
  await run("ssh-keygen", ["-q", "-t", type, ...(type === "rsa" ? ["-b", "2048"] : []), "-N", passphrase, "-C", "transporter-test", "-f", path]);
}

async function fingerprintOf(publicKeyPath: string): Promise<string> {
  const { stdout } = await run("ssh-keygen", ["-l", "-E", "sha256", "-f", publicKeyPath]);
  const match = /SHA256:[A-Za-z0-9+/]+/.exec(stdout);
  if (!match) throw new Error(`unexpected ssh-keygen output: ${stdout}`);
  return match[0];
}

function descendantsOf(rootPid: number, table: Map<number, number[]>): number[] {
  const found: number[] = [];
  const visit = (pid: number) => {
    for (const child of table.get(pid) ?? []) {
      found.push(child);
      visit(child);
    }
  };
  visit(rootPid);
  return found;
}

async function processTree(): Promise<Map<number, number[]>> {
  const children = new Map<number, number[]>();
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, "utf8").catch(() => "");
    // Fields after the parenthesised command: state ppid …
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    if (!Number.isFinite(ppid)) continue;
    const list = children.get(ppid) ?? [];
    list.push(Number(entry));
    children.set(ppid, list);
  }
  return children;
}

/** The command name of a live process (undefined for one gone, or a zombie waiting to be reaped). */
async function commandOf(pid: number): Promise<string | undefined> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => "");
  const open = stat.indexOf("(");
  const close = stat.lastIndexOf(")");
  if (open < 0 || close < open || stat.slice(close + 2).startsWith("Z")) return undefined;
  return stat.slice(open + 1, close);
}

/** Deletes test users left by an interrupted run: ours by name, and their temp home is gone. */
async function removeStaleUsers(): Promise<void> {
  const passwd = await readFile("/etc/passwd", "utf8");
  for (const line of passwd.split("\n")) {
    const [name, , , , , home] = line.split(":");
    if (!name?.startsWith(USER_PREFIX) || !home) continue;
    if (await stat(home).then(() => true, () => false)) continue;
    await run("flock", [USER_LOCK, "userdel", name]).catch(() => undefined);
  }
}

export async function startSshd(options: SshdOptions = {}): Promise<SshdServer> {
  if (options.hostKeyTypes?.length === 0) throw new Error("sshd needs a host key");
  const root = await mkdtemp(join(tmpdir(), "tp-sshd-"));
  // The user must traverse to its home and read authorized_keys inside this root-owned dir.
  await chmod(root, 0o755);
  const home = join(root, "home");
  const username = `${USER_PREFIX}${randomBytes(5).toString("hex")}`;
  const password = randomBytes(12).toString("base64url");
  const passphrase = randomBytes(9).toString("base64url");
  const port = await freePort();

  let hostKeyTypes = [...(options.hostKeyTypes ?? ["ed25519"])];
  // The ed25519 key keeps its historical name.
  const hostKeyPath = (type: SshdHostKeyType) => join(root, type === "ed25519" ? "host_key" : `host_key_${type}`);
  const hostKeyFingerprints = async () => {
    const found: Partial<Record<SshdHostKeyType, string>> = {};
    for (const type of hostKeyTypes) found[type] = await fingerprintOf(`${hostKeyPath(type)}.pub`);
    return found;
  };
  for (const type of hostKeyTypes) await keygen(hostKeyPath(type), type);
  await keygen(join(root, "client_key"), "ed25519");
  await keygen(join(root, "client_key_encrypted"), "rsa", passphrase);
  const authorizedKeys =
    (await readFile(join(root, "client_key.pub"), "utf8")) + (await readFile(join(root, "client_key_encrypted.pub"), "utf8"));
  await writeFile(join(root, "authorized_keys"), authorizedKeys, { mode: 0o644 });

  await removeStaleUsers();
  // The home exists before the user does: a test user without a home is a leftover (see removeStaleUsers).
  await mkdir(home, { mode: 0o755 });
  await run("flock", [USER_LOCK, "useradd", "--no-create-home", "--home-dir", home, "--shell", "/bin/sh", username]);
  await run("sh", ["-c", `printf '%s:%s\\n' "$1" "$2" | flock ${USER_LOCK} chpasswd`, "sh", username, password]);
  const uid = Number((await run("id", ["-u", username])).stdout.trim());
  const gid = Number((await run("id", ["-g", username])).stdout.trim());
  await chown(home, uid, gid);

  await mkdir("/run/sshd", { recursive: true, mode: 0o755 });
  const configPath = join(root, "sshd_config");
  let sftpCommand = (options.sftpServer === "process" ? SFTP_SERVER : "internal-sftp") + (options.denyRename ? " -P rename,posix-rename" : "");
  if (options.slowRenameMs !== undefined) {
    const relay = join(root, "slow-rename-relay.py");
    await writeFile(relay, SLOW_RENAME_RELAY, { mode: 0o644 });
    sftpCommand = `/usr/bin/python3 ${relay} ${Math.round(options.slowRenameMs)} ${SFTP_SERVER}`;
  }
  if (options.plainRenameOnly !== undefined) {
    const relay = join(root, "plain-rename-relay.py");
    await writeFile(relay, PLAIN_RENAME_RELAY, { mode: 0o644 });
    sftpCommand = `/usr/bin/python3 ${relay} ${options.plainRenameOnly.failRetriedRename ? "fail" : "pass"} ${SFTP_SERVER}`;
  }
  const writeConfig = () =>
    writeFile(
      configPath,
      [
        `Port ${port}`,
        "ListenAddress 127.0.0.1",
        ...hostKeyTypes.map((type) => `HostKey ${hostKeyPath(type)}`),
        `PidFile ${join(root, "sshd.pid")}`,
        `AuthorizedKeysFile ${join(root, "authorized_keys")}`,
        "StrictModes no",
        "UsePAM no",
        "PasswordAuthentication yes",
        "PermitEmptyPasswords no",
        "KbdInteractiveAuthentication no",
        "PubkeyAuthentication yes",
        "PermitRootLogin no",
        `AllowUsers ${username}`,
        "AllowTcpForwarding no",
        "X11Forwarding no",
        "PrintMotd no",
        "MaxStartups 100",
        "LogLevel VERBOSE",
        `Subsystem sftp ${sftpCommand}`,
        `ForceCommand ${options.sftpServer === "mute" ? "cat >/dev/null" : sftpCommand}`,
        "",
      ].join("\n"),
    );
  await writeConfig();

  let sshd: ChildProcess | undefined;
  const signalled = new Set<number>();
  const sftpServers = async (): Promise<number[]> => {
    const pid = sshd?.pid;
    if (pid === undefined) return [];
    const found: number[] = [];
    for (const candidate of descendantsOf(pid, await processTree())) {
      if ((await commandOf(candidate)) === "sftp-server") found.push(candidate);
    }
    return found;
  };
  const launch = async () => {
    const child = spawn("/usr/sbin/sshd", ["-D", "-e", "-f", configPath], { stdio: ["ignore", "ignore", "pipe"] });
    sshd = child;
    let log = "";
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`sshd did not start:\n${log}`)), 15_000);
      child.stderr?.on("data", (data: Buffer) => {
        log += data.toString();
        if (log.includes("Server listening")) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`sshd exited with ${code}:\n${log}`));
      });
    });
    // Keep draining its log so sshd never blocks on a full pipe.
    child.stderr?.resume();
  };
  const halt = async () => {
    const child = sshd;
    if (!child || child.exitCode !== null || child.pid === undefined) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    // The listener first, then its sessions, so no new session appears meanwhile.
    child.kill("SIGTERM");
    await exited;
  };

  try {
    await launch();
  } catch (error) {
    await run("flock", [USER_LOCK, "userdel", username]).catch(() => undefined);
    await rm(root, { recursive: true, force: true });
    throw error;
  }

  const server: SshdServer = {
    host: "127.0.0.1",
    port,
    username,
    password,
    privateKey: await readFile(join(root, "client_key"), "utf8"),
    encryptedPrivateKey: await readFile(join(root, "client_key_encrypted"), "utf8"),
    passphrase,
    home,
    hostKeyFingerprint: await fingerprintOf(`${hostKeyPath(hostKeyTypes[0]!)}.pub`),
    hostKeyFingerprints: await hostKeyFingerprints(),
    uid,
    gid,
    async replaceHostKey(type = hostKeyTypes[0]!) {
      await halt();
      await rm(hostKeyPath(type), { force: true });
      await rm(`${hostKeyPath(type)}.pub`, { force: true });
      await keygen(hostKeyPath(type), type);
      server.hostKeyFingerprint = await fingerprintOf(`${hostKeyPath(hostKeyTypes[0]!)}.pub`);
      server.hostKeyFingerprints = await hostKeyFingerprints();
      await launch();
    },
    async offerHostKeys(types) {
      if (types.length === 0) throw new Error("sshd needs a host key");
      await halt();
      hostKeyTypes = [...types];
      for (const type of hostKeyTypes) {
        if (!(await stat(hostKeyPath(type)).then(() => true, () => false))) await keygen(hostKeyPath(type), type);
      }
      await writeConfig();
      server.hostKeyFingerprint = await fingerprintOf(`${hostKeyPath(hostKeyTypes[0]!)}.pub`);
      server.hostKeyFingerprints = await hostKeyFingerprints();
      await launch();
    },
    async killSessions() {
      const pid = sshd?.pid;
      if (pid === undefined) return 0;
      const victims = descendantsOf(pid, await processTree());
      for (const victim of victims) {
        try {
          process.kill(victim, "SIGKILL");
        } catch {
          // Already gone.
        }
      }
      return victims.length;
    },
    async signalSftpServers(signal) {
      const pids = await sftpServers();
      for (const pid of pids) {
        signalled.add(pid);
        try {
          process.kill(pid, signal);
        } catch {
          // Already gone.
        }
      }
      return pids;
    },
    async stop() {
      const pid = sshd?.pid;
      const sessions = pid === undefined ? [] : descendantsOf(pid, await processTree());
      await halt();
      for (const pid of signalled) {
        // Still ours only while it is an sftp-server: a PID freed meanwhile may have been reused.
        if ((await commandOf(pid)) === "sftp-server") sessions.push(pid);
      }
      for (const session of sessions) {
        try {
          process.kill(session, "SIGKILL");
        } catch {
          // Already gone.
        }
      }
      await run("flock", [USER_LOCK, "userdel", username]).catch(() => undefined);
      await rm(root, { recursive: true, force: true });
    },
  };
  return server;
}
