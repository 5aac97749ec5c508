import { z } from "zod";
import type { Platform, SourceCredentials, VerifyResult } from "@transporter/sources";
import type { AnyDestinationAdapter, DestinationRegistry } from "@transporter/storage";

/** A verification that can be held open: `hold()` arms the next call; `started` resolves once it began. */
export function gate() {
  let armed: { entered: () => void; wait: Promise<void> } | null = null;
  return {
    hold() {
      let release!: () => void;
      let entered!: () => void;
      const wait = new Promise<void>((resolve) => (release = resolve));
      const started = new Promise<void>((resolve) => (entered = resolve));
      armed = { entered, wait };
      return { release, started };
    },
    /** Called by the fake at the start of a verification. */
    async pass() {
      const held = armed;
      armed = null;
      if (held) {
        held.entered();
        await held.wait;
      }
    },
  };
}

/** Held by `destinationGate`: an SFTP-like destination kind whose verification always succeeds (once let through). */
export const destinationGate = gate();
const fakeAdapter = {
  kind: "sftp",
  configSchema: z.object({ host: z.string(), port: z.number().optional(), folder: z.string().optional() }),
  credentialsSchema: z.object({ password: z.string() }),
  async verify() {
    await destinationGate.pass();
    return { ok: true as const, details: "fake: probe written and removed" };
  },
  async deliver() {
    throw new Error("not used");
  },
} as unknown as AnyDestinationAdapter;
export const fakeDestinations: DestinationRegistry = { adapterFor: () => fakeAdapter };

/** Held by `sourceGate`: a platform that accepts every source key (once let through). */
export const sourceGate = gate();
export const fakePlatform = {
  async verifySource(_credentials: SourceCredentials, accountId: string): Promise<VerifyResult> {
    await sourceGate.pass();
    return { verified: true, accountId, allowed: ["messaging-interactions"], apis: { "messaging-interactions": { ok: true } }, sourceCalls: 1 } as VerifyResult;
  },
} as unknown as Platform;

export const credentialsOf = (n: number): SourceCredentials => ({ consumerKey: `ck${n}`, consumerSecret: `cs${n}`, token: `tk${n}`, tokenSecret: `ts${n}` });
