// `npm run bench <name>`: runs bench/<name>.ts (scheduler, fetch, transform, encrypt, deliver, pipeline, startup).
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";

const dir = fileURLToPath(new URL(".", import.meta.url));
const available = readdirSync(dir).filter((f) => f.endsWith(".ts") && f !== "run.ts").map((f) => f.replace(/\.ts$/, ""));
const [name, ...args] = process.argv.slice(2);
if (!name || !existsSync(`${dir}/${name}.ts`)) {
  console.error(`usage: npm run bench <name> [-- args]\navailable: ${available.join(", ")}`);
  process.exit(2);
}
const result = spawnSync(process.execPath, ["--import", "tsx", `${dir}/${name}.ts`, ...args], { stdio: "inherit" });
process.exit(result.status ?? 1);
