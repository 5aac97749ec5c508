// `npm run demo`: the whole product on one machine with the platform simulator as the source.
// Migrates, starts every service, creates a demo tenant with a key pair, a source, a managed
// destination and a task, runs it, waits for the delivery, and prints where the encrypted file
// is and the exact gpg command that decrypts it. `npm run demo -- --keep` leaves it running.
import { randomBytes } from "node:crypto";
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { loadConfig } from "@transporter/config";
import { createOperatorKey } from "@transporter/gateway";
import { startSimulator } from "@transporter/simulator";
import { startSystem, type System } from "./system.js";

const keep = process.argv.includes("--keep");

// Ctrl-C (or SIGTERM) at any moment ends the demo through its finally: the operator key revoked,
// the system and the simulator stopped. A second signal gets Node's default: exit at once.
const SIGNALS = ["SIGINT", "SIGTERM"] as const;
const interrupted = new AbortController();
const onSignal = (name: NodeJS.Signals) => {
  for (const each of SIGNALS) process.removeListener(each, onSignal);
  console.log(`\n${name}: stopping the demo (again to exit at once)…`);
  interrupted.abort(new Error(`stopped by ${name}`));
};
for (const each of SIGNALS) process.on(each, onSignal);
const { signal } = interrupted;

const simulator = await startSimulator({ port: 0, host: "127.0.0.1" });
const config = loadConfig({
  LOG_LEVEL: "warn",
  GATEWAY_PORT: "0",
  ...process.env,
  PLATFORM_CSDS_URL: simulator.url,
  PLATFORM_DATA_ACCESS_URL: simulator.url,
  ALLOW_INSECURE_ENDPOINTS: "true",
});
let system: System | undefined;
let api = "";

async function call<T = any>(key: string, method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`${api}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body ? { "content-type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
    signal,
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path} → ${res.status}: ${text}`);
  return (text ? JSON.parse(text) : undefined) as T;
}

let operator: { id: string; key: string } | undefined;
try {
  system = await startSystem(config);
  api = system.gateway.url;
  signal.throwIfAborted();
  operator = await createOperatorKey(system.prisma, "demo operator");
  const accountId = `demo${randomBytes(3).toString("hex")}`;
  const { tenant, adminApiKey } = await call(operator.key, "POST", "/v1/tenants", { name: "Demo Brand", accountId, timezone: "Europe/London" });
  const admin = adminApiKey.key as string;

  const out = resolve("demo-output", accountId);
  mkdirSync(out, { recursive: true, mode: 0o700 });
  const passphrase = randomBytes(18).toString("base64url");
  const keyPair = await call(admin, "POST", "/v1/encryption-keys/generate", { passphrase });
  const privateKeyFile = resolve(out, "private-key.asc");
  const passphraseFile = resolve(out, "passphrase.txt");
  writeFileSync(privateKeyFile, keyPair.privateKey, { mode: 0o600 });
  writeFileSync(passphraseFile, `${passphrase}\n`, { mode: 0o600 });
  chmodSync(privateKeyFile, 0o600);
  chmodSync(passphraseFile, 0o600);

  const credentials = { consumerKey: randomBytes(8).toString("hex"), consumerSecret: randomBytes(12).toString("hex"), token: randomBytes(8).toString("hex"), tokenSecret: randomBytes(12).toString("hex") };
  simulator.control.registerAccount(accountId, credentials);
  const source = await call(admin, "POST", "/v1/sources", { name: "Platform (simulator)", kind: "liveperson", accountId, credentials });
  const destination = await call(admin, "POST", "/v1/destinations", { name: "Managed storage", kind: "managed", config: {} });
  const task = await call(admin, "POST", "/v1/tasks", {
    description: "Daily conversations", reportId: "messaging-conversations", reportVersion: "latest", format: "csv",
    // Disabled: the demo runs it now (a disabled task still runs on request). Enabled, it would be
    // due every day in this database, against an account only this run's simulator knew.
    schedule: { frequency: "daily", time: "00:00", delayMinutes: 0 }, sourceId: source.id, destinationId: destination.id, enabled: false,
  });
  let run = await call(admin, "POST", `/v1/tasks/${task.id}/runs`, {});
  console.log(`Running task "${task.description}" for ${run.windowStart} – ${run.windowEnd} …`);
  const deadline = Date.now() + 180_000;
  while (!["SUCCEEDED", "FAILED"].includes(run.status) && Date.now() < deadline) {
    await sleep(500, undefined, { signal });
    run = await call(admin, "GET", `/v1/runs/${run.id}`);
  }
  if (run.status !== "SUCCEEDED") throw new Error(`the run ended ${run.status}: ${run.error ?? "timed out"}`);

  const file = resolve(config.MANAGED_DIR, run.destinationPath);
  const plain = resolve(out, run.fileName.replace(/\.pgp$/, ""));
  console.log(`
Delivered ${run.rows} rows (${run.records} conversations), ${run.bytes} encrypted bytes.
  tenant:           ${tenant.name} (${tenant.id})
  admin API key:    ${admin}
  encrypted file:   ${file}
  key fingerprint:  ${run.keyFingerprint}
  private key:      ${privateKeyFile}  (written with 0600 permissions; the platform never stored it)
  passphrase:       ${passphraseFile}  (0600)

Decrypt it with GnuPG:
  export GNUPGHOME=$(mktemp -d)
  gpg --batch --pinentry-mode loopback --passphrase-file ${passphraseFile} --import ${privateKeyFile}
  gpg --batch --pinentry-mode loopback --passphrase-file ${passphraseFile} --output ${plain} --decrypt ${file}
`);
  if (keep) {
    console.log(`API: ${api} (docs ${api}/docs). Ctrl-C to stop.`);
    if (!signal.aborted) await new Promise((resolveStop) => signal.addEventListener("abort", resolveStop, { once: true }));
  }
} catch (error) {
  // Interrupted: the finally below cleans up; 130, as a shell reports a Ctrl-C.
  if (!signal.aborted) throw error;
  process.exitCode = 130;
} finally {
  // The operator key was only for setting up this demo (it is never shown): revoked, not left behind.
  if (operator) await system?.prisma.apiKey.update({ where: { id: operator.id }, data: { revokedAt: new Date() } }).catch(() => undefined);
  await system?.stop();
  await simulator.stop();
}
