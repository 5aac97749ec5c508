// `npm run operator:create-key [-- name]`: prints a new operator API key once.
import { loadConfig } from "@transporter/config";
import { createPrisma, ensureDatabase, migrate } from "@transporter/db";
import { createOperatorKey } from "../operator-key.js";

const config = loadConfig();
await ensureDatabase(config.DATABASE_URL);
// Progress on stderr: stdout carries only the key (scripts capture it).
await migrate(config.DATABASE_URL, { log: (message) => console.error(message) });
const prisma = createPrisma(config.DATABASE_URL, { poolSize: 1 });
const { key } = await createOperatorKey(prisma, process.argv[2] ?? "operator");
await prisma.$disconnect();
console.log(key);
console.error("This key is shown once. Store it in your secret manager.");
