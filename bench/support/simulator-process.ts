import { readFile } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import type { AccountRegistration } from "@transporter/simulator";
import { freePort, ProcessGroup } from "../../test/e2e/support/processes.js";
import type { SimulatorAccounts } from "../../test/e2e/support/api.js";

export interface SimulatorProcess extends SimulatorAccounts {
  url: string;
  /** CPU seconds (user + system) the simulator process has used so far. */
  cpuSeconds(): Promise<number>;
  stop(): Promise<void>;
}

const CLOCK_TICKS_PER_SECOND = 100;

/**
 * The platform simulator as its own OS process (`npm run start:simulator`), driven over its
 * control API. A benchmark of our pipeline runs it apart so that the platform's work (building
 * and serialising the records) is not counted as ours: in production the platform is remote.
 */
export async function startSimulatorProcess(): Promise<SimulatorProcess> {
  const port = await freePort();
  const group = new ProcessGroup({ ...(process.env as Record<string, string>), SIMULATOR_HOST: "127.0.0.1", SIMULATOR_PORT: String(port), LOG_LEVEL: "silent" });
  const child = group.start("simulator");
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (!child.running) throw new Error(`the simulator exited on start:\n${child.output()}`);
    const healthy = await fetch(`${url}/_simulator/health`).then((r) => r.ok, () => false);
    if (healthy) break;
    if (Date.now() > deadline) {
      await group.stopAll();
      throw new Error(`the simulator did not answer on ${url} within 30 s:\n${child.output()}`);
    }
    await sleep(100);
  }
  return {
    url,
    control: {
      async registerAccount(accountId: string, registration: AccountRegistration) {
        const response = await fetch(`${url}/_simulator/accounts/${encodeURIComponent(accountId)}`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(registration),
        });
        if (!response.ok) throw new Error(`simulator refused account ${accountId}: ${response.status} ${await response.text()}`);
      },
    },
    async cpuSeconds() {
      // /proc/<pid>/stat: fields 14 and 15 (utime, stime) in clock ticks, after the "(comm)" field.
      const stat = await readFile(`/proc/${child.pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
    },
    stop: () => group.stopAll(),
  };
}
