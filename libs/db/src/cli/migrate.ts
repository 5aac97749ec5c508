// `npm run db:migrate`: create the database if it does not exist, then apply migrations.
import { loadConfig } from "@transporter/config";
import { ensureDatabase } from "../ensure-database.js";
import { migrate } from "../migrate.js";

const config = loadConfig();
await ensureDatabase(config.DATABASE_URL);
const { applied } = await migrate(config.DATABASE_URL, { log: (m) => console.log(m) });
console.log(applied.length === 0 ? "database is up to date" : `applied ${applied.length} migration(s)`);
