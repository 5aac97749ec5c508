import { execFile } from "node:child_process";
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * A throw-away GnuPG home for one test file: real `gpg` 2.2, its own keyring and agent, so tests
 * run in parallel without touching each other (or the user's ~/.gnupg).
 */
export interface GnupgHome {
  dir: string;
  /** Runs gpg with `--batch` in this home; `stdin` is written to its standard input. */
  gpg(args: string[], stdin?: string | Buffer): Promise<{ stdout: Buffer; stderr: string }>;
  /** Runs a command that needs a passphrase: `--pinentry-mode loopback --passphrase-fd 0`. */
  gpgWithPassphrase(passphrase: string, args: string[]): Promise<{ stdout: Buffer; stderr: string }>;
  close(): Promise<void>;
}

export class GnupgFailure extends Error {
  constructor(
    message: string,
    readonly stderr: string,
  ) {
    super(message);
  }
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv, stdin?: string | Buffer): Promise<{ stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = execFile(command, args, { env, encoding: "buffer", maxBuffer: 256 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) reject(new GnupgFailure(`${command} ${args.join(" ")} failed: ${stderr.toString("utf8")}`, stderr.toString("utf8")));
      else resolve({ stdout, stderr: stderr.toString("utf8") });
    });
    // gpg may exit without reading its input (EPIPE): its exit status already tells what happened.
    child.stdin?.on("error", () => undefined);
    child.stdin?.end(stdin ?? "");
  });
}

export async function createGnupgHome(): Promise<GnupgHome> {
  const dir = await mkdtemp(join(tmpdir(), "gpg-"));
  await chmod(dir, 0o700);
  const env = { ...process.env, GNUPGHOME: dir, LC_ALL: "C" };
  const gpg = (args: string[], stdin?: string | Buffer) => run("gpg", ["--batch", "--no-tty", ...args], env, stdin);
  return {
    dir,
    gpg,
    gpgWithPassphrase: (passphrase, args) => gpg(["--pinentry-mode", "loopback", "--passphrase-fd", "0", ...args], `${passphrase}\n`),
    async close() {
      await run("gpgconf", ["--kill", "all"], env).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The fingerprint of the only key in a `gpg --with-colons --list-keys` listing. */
export function fingerprintFromColons(listing: string): string {
  const line = listing.split("\n").find((l) => l.startsWith("fpr:"));
  if (!line) throw new Error(`no fingerprint in gpg listing:\n${listing}`);
  return line.split(":")[9] as string;
}
