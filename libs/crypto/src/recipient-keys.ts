import { readKey, type Key } from "openpgp";
import { GNUPG22_CONFIG } from "./gnupg-compat.js";
import { inspectPublicKey } from "./inspect-public-key.js";

interface CheckedKey {
  key: Key;
  /** From the inspection: when the key (or its encryption subkey) stops being usable. */
  expiresAt: Date | undefined;
}

/**
 * Recipient public keys, parsed and checked once per process rather than once per file.
 * Checking a key means verifying its self-signatures and subkey bindings, which cost more than
 * encrypting a small file; a tenant's active key is the same armored text run after run.
 *
 * The cache key is the armored text itself, so any change to the key (a new subkey, a
 * revocation, a refreshed expiry) is a different entry. What depends on the clock is checked
 * again on every use: once the recorded expiry has passed, the key is inspected afresh and
 * rejected with the usual `KeyRejectedError`.
 */
export class RecipientKeyCache {
  private readonly entries = new Map<string, CheckedKey>();

  constructor(private readonly maxEntries = 256) {}

  /** The parsed key, or a `KeyRejectedError` saying why it cannot be encrypted to at `now`. */
  async get(armored: string, now: Date = new Date()): Promise<Key> {
    const hit = this.entries.get(armored);
    if (hit && (hit.expiresAt === undefined || hit.expiresAt.getTime() > now.getTime())) {
      // Least recently used goes first: re-inserting moves this entry to the end.
      this.entries.delete(armored);
      this.entries.set(armored, hit);
      return hit.key;
    }
    this.entries.delete(armored);
    const info = await inspectPublicKey(armored, now);
    const key = await readKey({ armoredKey: armored, config: GNUPG22_CONFIG });
    this.entries.set(armored, { key, expiresAt: info.expiresAt });
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
    return key;
  }

  get size(): number {
    return this.entries.size;
  }
}
