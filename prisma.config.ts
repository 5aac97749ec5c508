// Prisma CLI configuration. `engine: "js"` keeps the CLI off Prisma's native engines,
// which cannot be downloaded on our machines (see docs: PRISMA-OFFLINE).
import { defineConfig } from "prisma/config";
import { PrismaPg } from "@prisma/adapter-pg";

process.env.DATABASE_URL ??= "postgresql://postgres@127.0.0.1:5432/transporter";

export default defineConfig({
  experimental: { adapter: true },
  engine: "js",
  adapter: async () => new PrismaPg({ connectionString: process.env.DATABASE_URL! }),
  schema: "prisma/schema.prisma",
});
