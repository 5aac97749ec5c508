/**
 * The compiled build, as the image runs it: `npm run build` compiles every workspace's src/ to
 * dist/, and each service runs as `node --conditions=compiled services/<name>/dist/main.js`
 * (`npm run serve:<name>`), with no tsx and no TypeScript. Nothing here can fall back to a
 * source file: Node cannot load a `.ts` module without tsx, so an import the build missed, a
 * worker thread started from a `.ts` file or a path that only holds under src/ fails the test.
 */
import { execFile } from "node:child_process";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase } from "@transporter/db/testing";
import { createOperatorKey } from "@transporter/gateway";
import { createGnupgHome, type GnupgHome } from "../../libs/crypto/test/support/gnupg.js";
import { apiClient, createConversationsTask, pastWindows, provisionTenant, requestRun } from "./support/api.js";
import { csvConversationIds, gpgDecrypt, listManagedFiles, managedDeliveryProblems, simulatedConversationIds } from "./support/delivery.js";
import { startInfrastructure, type Infrastructure } from "./support/infrastructure.js";
import { ProcessGroup, REPO_ROOT, SERVICES } from "./support/processes.js";
import { QueueInspector } from "./support/queues.js";
import { waitUntilReady } from "./support/readiness.js";
import { waitForRunsToFinish } from "./support/runs.js";

const run = promisify(execFile);
const CONVERSATIONS_PER_HOUR = 40;

describe("the compiled build (what the image runs)", () => {
  let infra: Infrastructure | undefined;
  let group: ProcessGroup | undefined;
  let inspector: QueueInspector | undefined;
  let gnupg: GnupgHome | undefined;

  beforeAll(async () => {
    // turbo builds the workspaces in dependency order (and restores unchanged ones from its cache).
    await run("npm", ["run", "-s", "build"], { cwd: REPO_ROOT, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, TURBO_TELEMETRY_DISABLED: "1" } }).catch((error: Error & { stdout?: string; stderr?: string }) => {
      throw new Error(`npm run build failed: ${error.message}\n${error.stdout ?? ""}\n${error.stderr ?? ""}`);
    });
    infra = await startInfrastructure({ name: "compiled", env: { TRANSFORM_THREADS: "1" } });
    inspector = new QueueInspector(infra.redis, infra.redisPrefix);
    gnupg = await createGnupgHome();
  }, 300_000);

  afterAll(async () => {
    await group?.stopAll(5_000);
    await inspector?.close();
    await gnupg?.close();
    await infra?.stop();
  }, 60_000);

  it("`npm run serve:db:migrate` applies every migration to a fresh database", async () => {
    const db = await createTestDatabase({ migrate: false });
    try {
      const { stdout } = await run(process.execPath, ["--conditions=compiled", "libs/db/dist/cli/migrate.js"], {
        cwd: REPO_ROOT,
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin", NODE_ENV: "test", DATABASE_URL: db.url },
      });
      const migrations = (await readdir(join(REPO_ROOT, "prisma/migrations"), { withFileTypes: true })).filter((entry) => entry.isDirectory()).map((entry) => entry.name);
      const applied = await db.prisma.$queryRawUnsafe<Array<{ migration_name: string }>>(`SELECT migration_name FROM "_prisma_migrations" WHERE finished_at IS NOT NULL ORDER BY migration_name`);
      expect(applied.map((row) => row.migration_name)).toEqual([...migrations].sort());
      expect(stdout).toContain(`applied ${migrations.length} migration(s)`);
    } finally {
      await db.drop();
    }
  }, 60_000);

  it("every service runs from dist/ and a run is fetched, transformed (in a worker thread), encrypted and delivered", async () => {
    if (!infra || !inspector || !gnupg) throw new Error("the infrastructure did not start");
    group = new ProcessGroup(infra.env, { compiled: true });
    for (const service of SERVICES) group.start(service);
    await waitUntilReady(group, inspector, infra.gatewayUrl, 120_000);

    const call = apiClient(infra.gatewayUrl);
    const operator = await createOperatorKey(infra.db.prisma, "compiled build e2e operator");
    const tenant = await provisionTenant(call, operator.key, infra.simulator, { conversationsPerHour: CONVERSATIONS_PER_HOUR });
    const task = await createConversationsTask(call, tenant, { description: "Hourly conversations", everyMinutes: 60 });
    const [window] = pastWindows(1, 60, 60);
    const requested = await requestRun(call, tenant.adminKey, task.id, window!);
    const running = group;
    await waitForRunsToFinish(infra.db.prisma, [requested.id], { timeoutMs: 60_000, check: () => running.assertNoCrash(), context: () => running.describe() });

    const delivered = await call<Awaited<ReturnType<typeof requestRun>>>(tenant.adminKey, "GET", `/v1/runs/${requested.id}`);
    expect(delivered.status, delivered.error ?? "").toBe("SUCCEEDED");
    expect(await managedDeliveryProblems(delivered, await listManagedFiles(infra.managedDir, tenant.tenantId), infra.managedDir)).toEqual([]);
    await gnupg.gpg(["--import"], tenant.privateKey);
    const csv = await gpgDecrypt(gnupg, tenant.passphrase, join(infra.managedDir, delivered.destinationPath as string));
    const expected = simulatedConversationIds(tenant.accountId, delivered.windowStart, delivered.windowEnd, infra.simulator.seed, CONVERSATIONS_PER_HOUR);
    expect(expected.length).toBeGreaterThan(0);
    expect(csvConversationIds(csv).sort()).toEqual([...expected].sort());

    // Every service stops cleanly on SIGTERM, as under tini in a container.
    await group.stopAll(20_000);
    for (const service of group.all()) expect(service.exitStatus, `${service.label}\n${service.output()}`).toEqual({ code: 0, signal: null });
  }, 180_000);
});
