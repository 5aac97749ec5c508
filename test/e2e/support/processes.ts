import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";

/** The repository root: services are started from here, like `npm run start:<service>`. */
export const REPO_ROOT = fileURLToPath(new URL("../../../", import.meta.url));

export const SERVICES = ["gateway", "scheduler", "fetcher", "transformer", "encryptor", "deliverer"] as const;
export type ServiceName = (typeof SERVICES)[number];
/** What a group can start: our services, and the platform simulator standing in for the platform. */
export type ProcessName = ServiceName | "simulator";
/** A repository script run as its own process (`npm run demo`: scripts/demo.ts). */
export type ScriptName = "demo";

const OUTPUT_LINES = 200;

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/**
 * One service running as its own OS process: `node --import tsx services/<name>/src/main.ts`
 * (`npm run start:<name>`), or from the compiled build, `node --conditions=compiled
 * services/<name>/dist/main.js` (`npm run serve:<name>`, as the image runs it).
 */
export class ServiceProcess {
  readonly pid: number;
  /** Resolves when the process has exited (never rejects). */
  readonly exited: Promise<Exit>;
  private exit: Exit | undefined;
  private expectedExit = false;
  private readonly lines: string[] = [];

  constructor(
    readonly service: ProcessName | ScriptName,
    /** Unique within its group, e.g. "fetcher-2". */
    readonly label: string,
    private readonly child: ChildProcess,
  ) {
    if (child.pid === undefined) throw new Error(`${label}: the process did not start`);
    this.pid = child.pid;
    const collect = (stream: NodeJS.ReadableStream | null) => {
      let partial = "";
      stream?.setEncoding("utf8");
      stream?.on("data", (chunk: string) => {
        const parts = (partial + chunk).split("\n");
        partial = parts.pop() ?? "";
        for (const line of parts) this.remember(line);
      });
      stream?.on("end", () => partial && this.remember(partial));
    };
    collect(child.stdout);
    collect(child.stderr);
    this.exited = new Promise<Exit>((resolve) => {
      child.once("exit", (code, signal) => {
        this.exit = { code, signal };
        resolve(this.exit);
      });
    });
  }

  private remember(line: string): void {
    if (!line.trim()) return;
    this.lines.push(line);
    if (this.lines.length > OUTPUT_LINES) this.lines.shift();
  }

  get running(): boolean {
    return this.exit === undefined;
  }

  /** Exited without being told to (crash, bad configuration). */
  get crashed(): boolean {
    return this.exit !== undefined && !this.expectedExit;
  }

  get exitStatus(): Exit | undefined {
    return this.exit;
  }

  /** The last lines the process wrote (stdout and stderr interleaved). */
  output(): string {
    return this.lines.join("\n");
  }

  /** Sends a signal (SIGKILL by default) and marks the exit as intended. */
  kill(signal: NodeJS.Signals = "SIGKILL"): void {
    this.expectedExit = true;
    if (this.running) this.child.kill(signal);
  }

  /** SIGTERM (graceful: jobs under way finish), then SIGKILL after `graceMs`. */
  async stop(graceMs = 10_000): Promise<Exit> {
    if (!this.running) return this.exit as Exit;
    this.kill("SIGTERM");
    const timer = setTimeout(() => this.kill("SIGKILL"), graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}

/**
 * The service processes of one test, all with the same environment. Every process it starts is
 * SIGKILLed if the test process exits without stopping them (a crash, a vitest timeout), so no
 * worker outlives its test and keeps consuming another run's queues.
 */
export class ProcessGroup {
  private readonly processes: ServiceProcess[] = [];
  private readonly counters = new Map<ProcessName | ScriptName, number>();
  private readonly killOnExit = () => this.killAll();

  constructor(
    private readonly env: Record<string, string>,
    /** Services run from the compiled build (`npm run build` first) instead of their sources. */
    private readonly options: { compiled?: boolean } = {},
  ) {
    process.once("exit", this.killOnExit);
  }

  /** Starts one service process; `extraEnv` overrides the group's environment for it alone. */
  start(service: ProcessName, extraEnv: Record<string, string> = {}): ServiceProcess {
    const entry = this.options.compiled ? ["--conditions=compiled", `services/${service}/dist/main.js`] : ["--import", "tsx", `services/${service}/src/main.ts`];
    return this.spawn(service, entry, extraEnv);
  }

  /** Starts a script as `npm run <name>` does (`node --import tsx scripts/<name>.ts`). */
  script(name: ScriptName, args: string[] = [], extraEnv: Record<string, string> = {}): ServiceProcess {
    return this.spawn(name, ["--import", "tsx", `scripts/${name}.ts`, ...args], extraEnv);
  }

  private spawn(name: ProcessName | ScriptName, nodeArgs: string[], extraEnv: Record<string, string>): ServiceProcess {
    const n = (this.counters.get(name) ?? 0) + 1;
    this.counters.set(name, n);
    const child = spawn(process.execPath, nodeArgs, {
      cwd: REPO_ROOT,
      env: { ...this.env, ...extraEnv },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const started = new ServiceProcess(name, `${name}-${n}`, child);
    this.processes.push(started);
    return started;
  }

  /** The processes of a service that are still running. */
  live(service: ProcessName): ServiceProcess[] {
    return this.processes.filter((p) => p.service === service && p.running);
  }

  all(): readonly ServiceProcess[] {
    return this.processes;
  }

  /** Throws (with its output) if a process exited that nobody stopped or killed. */
  assertNoCrash(): void {
    const crashed = this.processes.find((p) => p.crashed);
    if (crashed) {
      const status = crashed.exitStatus;
      throw new Error(`${crashed.label} (pid ${crashed.pid}) exited on its own (code ${status?.code}, signal ${status?.signal}):\n${crashed.output()}`);
    }
  }

  /** The tail of every process's output, for failure messages. */
  describe(linesPerProcess = 15): string {
    return this.processes
      .map((p) => {
        const state = p.running ? "running" : `exited ${JSON.stringify(p.exitStatus)}`;
        const tail = p.output().split("\n").slice(-linesPerProcess).join("\n");
        return `--- ${p.label} (pid ${p.pid}, ${state})${tail ? `\n${tail}` : ""}`;
      })
      .join("\n");
  }

  /** Graceful stop of everything still running (SIGTERM, SIGKILL after `graceMs`). */
  async stopAll(graceMs = 10_000): Promise<void> {
    await Promise.all(this.processes.map((p) => p.stop(graceMs)));
    process.off("exit", this.killOnExit);
  }

  /** SIGKILL everything still running, synchronously (safe in an exit handler). */
  killAll(): void {
    for (const p of this.processes) p.kill("SIGKILL");
  }
}

/** A free TCP port on the loopback interface (for a service that must be told its port). */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === "string") throw new Error("no TCP address");
  return address.port;
}
