import { randomBytes } from "node:crypto";

/** A Redis key prefix of its own for one test file, so test files never see each other's queues. */
export function testRedisPrefix(name = "t"): string {
  return `test-${name}-${Date.now().toString(36)}-${randomBytes(3).toString("hex")}`;
}
