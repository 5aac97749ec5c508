import { describe, expect, it } from "vitest";
import { checkPassphrase } from "../src/index.js";

describe("checkPassphrase", () => {
  it.each(["correct horse battery", "Tr0ub4dor&3xyz", "ABCDEFGHIJK1", "päßwörter-über-alles", "abcdefghijk!"])("accepts %j", (passphrase) => {
    expect(checkPassphrase(passphrase)).toBeNull();
  });

  it.each([
    { passphrase: "", reason: /at least 12 characters \(got 0\)/ },
    { passphrase: "Short1!", reason: /at least 12 characters \(got 7\)/ },
    // 11 code points, although more than 12 UTF-16 units.
    { passphrase: "🔑🔑🔑🔑🔑🔑aaaaa", reason: /at least 12 characters \(got 11\)/ },
    { passphrase: "abcdefghijklmnop", reason: /only lower-case letters/ },
    { passphrase: "ABCDEFGHIJKLMNOP", reason: /only upper-case letters/ },
    { passphrase: "123456789012345", reason: /only digits/ },
    { passphrase: "!!!!!!!!!!!!!!!!", reason: /only symbols or spaces/ },
    { passphrase: "x".repeat(1025) + "A", reason: /at most 1024/ },
  ])("rejects $passphrase.length-character passphrase: $reason", ({ passphrase, reason }) => {
    const verdict = checkPassphrase(passphrase);
    expect(verdict).toMatch(reason);
    if (passphrase.length > 0) expect(verdict).not.toContain(passphrase);
  });
});
