import { execFile, spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/** Decrypt with GnuPG, the tool customers use, from a throwaway keyring. */
export async function gpgDecrypt(encrypted: Buffer, privateKey: string, passphrase: string): Promise<Buffer> {
  const home = await mkdtemp(join(tmpdir(), "e2e-gpg-"));
  try {
    await writeFile(join(home, "key.asc"), privateKey, { mode: 0o600 });
    await writeFile(join(home, "pass"), passphrase, { mode: 0o600 });
    const common = ["--homedir", home, "--batch", "--pinentry-mode", "loopback", "--passphrase-file", join(home, "pass")];
    await run("gpg", [...common, "--import", join(home, "key.asc")]);
    return await new Promise<Buffer>((resolve, reject) => {
      const child = spawn("gpg", [...common, "--decrypt"], { stdio: ["pipe", "pipe", "pipe"] });
      const out: Buffer[] = [];
      let err = "";
      child.stdout.on("data", (c: Buffer) => out.push(c));
      child.stderr.on("data", (c: Buffer) => (err += c));
      child.on("error", reject);
      child.on("close", (code) => (code === 0 ? resolve(Buffer.concat(out)) : reject(new Error(`gpg exited ${code}: ${err}`))));
      child.stdin.end(encrypted);
    });
  } finally {
    await rm(home, { recursive: true, force: true });
  }
}
