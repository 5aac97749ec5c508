import { PrismaPg } from "@prisma/adapter-pg";
import { PrismaClient } from "./generated/client.js";

export type Db = InstanceType<typeof PrismaClient>;

/**
 * A Prisma client over node-postgres. Prisma's native engines cannot be downloaded here, so
 * the client runs on the query compiler with the pg driver adapter (docs: PRISMA-OFFLINE).
 */
export function createPrisma(databaseUrl: string, options: { poolSize?: number } = {}): Db {
  const adapter = new PrismaPg({ connectionString: databaseUrl, max: options.poolSize ?? 10 });
  return new PrismaClient({ adapter });
}

/** True when a Prisma error is a unique-constraint violation (P2002). */
export function isUniqueViolation(error: unknown): boolean {
  return typeof error === "object" && error !== null && (error as { code?: string }).code === "P2002";
}
