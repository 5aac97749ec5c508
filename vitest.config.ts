import { defineConfig } from "vitest/config";

// One test run for the whole monorepo: `npm test`. Each test file creates its own
// PostgreSQL database and Redis key prefix, so files run in parallel and can run twice.
export default defineConfig({
  test: {
    include: ["libs/*/test/**/*.test.ts", "services/*/test/**/*.test.ts", "test/**/*.test.ts"],
    pool: "forks",
    maxWorkers: Number(process.env.TEST_WORKERS ?? 3),
    testTimeout: 60_000,
    hookTimeout: 120_000,
    reporters: process.env.CI ? ["default", "json"] : ["default"],
    outputFile: { json: ".data/test-results.json" },
  },
});
