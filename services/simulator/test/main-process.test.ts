/**
 * The simulator as its own process (`npm run start:simulator`): its production guard, and its
 * stop on signals, including a second signal while a slow request holds the first stop.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { request } from "node:http";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";

const MAIN = fileURLToPath(new URL("../src/main.ts", import.meta.url));

interface Started {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

function startMain(env: Record<string, string>): Started {
  const child = spawn(process.execPath, ["--import", "tsx", MAIN], {
    // Only what the test sets: no master keys, whatever the developer's shell has.
    env: { PATH: process.env.PATH ?? "", SIMULATOR_PORT: "0", LOG_LEVEL: "silent", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return { child, output: () => output, exited };
}

async function listeningUrl(started: Started): Promise<string> {
  await expect.poll(() => /listening on (http:\/\/\S+)/.exec(started.output())?.[1], { timeout: 20_000 }).toBeTruthy();
  return /listening on (http:\/\/\S+)/.exec(started.output())![1]!;
}

const running: Started[] = [];
afterEach(() => {
  for (const started of running.splice(0)) started.child.kill("SIGKILL");
});

describe("simulator main", () => {
  it("refuses production unless asked, with its own message rather than a configuration error", async () => {
    const started = startMain({ NODE_ENV: "production" });
    running.push(started);
    expect(await started.exited).toBe(1);
    expect(started.output()).toContain("does not start with NODE_ENV=production");
    expect(started.output()).not.toMatch(/SECRETS_MASTER_KEYS|ConfigError/);
  });

  it("starts in production when asked, with no master keys (it keeps no secrets), and stops on SIGTERM", async () => {
    const started = startMain({ NODE_ENV: "production", SIMULATOR_ALLOW_PRODUCTION: "true" });
    running.push(started);
    await listeningUrl(started);
    started.child.kill("SIGTERM");
    expect(await started.exited).toBe(0);
  });

  it("names a malformed variable and exits 1", async () => {
    const started = startMain({ SIMULATOR_PORT: "not-a-port" });
    running.push(started);
    expect(await started.exited).toBe(1);
    expect(started.output()).toMatch(/SIMULATOR_PORT/);
  });

  it("exits at a second signal while a slow request holds the first stop", async () => {
    const started = startMain({});
    running.push(started);
    const url = await listeningUrl(started);
    const faults = await fetch(`${url}/_simulator/accounts/slow1/faults`, { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify({ slowMs: 60_000 }) });
    expect(faults.ok).toBe(true);
    // A request the simulator holds for a minute (its answer does not matter).
    const held = request(`${url}/data_access_le/account/slow1/le`);
    held.on("error", () => undefined);
    held.end();
    await new Promise((resolve) => setTimeout(resolve, 300));
    const began = Date.now();
    started.child.kill("SIGTERM");
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(started.child.exitCode).toBeNull();
    started.child.kill("SIGTERM");
    await started.exited;
    expect(Date.now() - began).toBeLessThan(5_000);
  });
});
