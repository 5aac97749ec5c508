import { createHmac } from "node:crypto";
import OAuth from "oauth-1.0a";
import { startSimulator, type Simulator } from "@transporter/simulator";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CsdsClient, jsonDocuments, ndjsonChunks, oauthHeader, parseJson, parseRetryAfter, rawJsonOf, RecentIds, splitWindow, topLevelArrayElements } from "../src/index.js";
import { newAccount } from "./helpers.js";

describe("OAuth 1.0a signing", () => {
  const credentials = { consumerKey: "key", consumerSecret: "s3cr€t&=", token: "tok", tokenSecret: "t0k secret" };
  const reference = (method: string, url: string, nonce: string, timestamp: number) => {
    const oauth = new OAuth({
      consumer: { key: credentials.consumerKey, secret: credentials.consumerSecret },
      signature_method: "HMAC-SHA1",
      hash_function: (base, key) => createHmac("sha1", key).update(base).digest("base64"),
    });
    return oauth.getSignature({ url, method }, credentials.tokenSecret, {
      oauth_consumer_key: "key", oauth_nonce: nonce, oauth_signature_method: "HMAC-SHA1", oauth_timestamp: timestamp, oauth_token: "tok", oauth_version: "1.0",
    } as unknown as OAuth.Data);
  };

  it.each([
    ["POST", "https://va.msghist.example/messaging_history/api/account/123/conversations/search?offset=0&limit=100&sort=start%3Aasc"],
    ["GET", "https://va.example/operations/api/account/1/msgqueuehealth?timeframe=60&skillIds=1%2C2&interval=15&v=1"],
    ["GET", "http://127.0.0.1:8090/api/account/1/configuration/le-users/users?v=4.0"],
  ])("signs %s %s exactly as the reference implementation", (method, url) => {
    const header = oauthHeader(method, url, credentials, { nonce: "abc123", timestamp: 1_700_000_000 });
    const signature = decodeURIComponent(/oauth_signature="([^"]+)"/.exec(header)![1]!);
    expect(signature).toBe(reference(method, url, "abc123", 1_700_000_000));
    expect(header).not.toContain(credentials.consumerSecret);
    expect(header).not.toContain(encodeURIComponent(credentials.tokenSecret));
  });
});

describe("helpers", () => {
  it("reads Retry-After as seconds or an HTTP date", () => {
    expect(parseRetryAfter("7")).toBe(7000);
    expect(parseRetryAfter(new Date(Date.now() + 5000).toUTCString())).toBeGreaterThan(3000);
    expect(parseRetryAfter("soon")).toBeNull();
    expect(parseRetryAfter(null)).toBeNull();
  });

  it("reports the byte offset of broken JSON", () => {
    const body = Buffer.from('{"a":"日本","b":}');
    // `}` is character 14 but byte 18 (日本 take three bytes each).
    expect(() => parseJson(body)).toThrowError(/invalid JSON at byte 18/);
    expect(() => parseJson(Buffer.from('[1,2] x'))).toThrowError(/at byte 6/);
    const truncated = Buffer.from('{"a":[1,2');
    try {
      parseJson(truncated);
      throw new Error("no error");
    } catch (error) {
      expect(error).toMatchObject({ code: "malformed_response", permanent: false, details: { byteOffset: truncated.length }, message: expect.stringMatching(/ends early/) });
    }
  });

  it("splits concatenated JSON documents and flags a truncated one", () => {
    expect([...jsonDocuments('{"a":1}\n{"b":"}{"}  {"c":[1]}')]).toEqual([{ a: 1 }, { b: "}{" }, { c: [1] }]);
    expect(() => [...jsonDocuments('{"a":1}\n{"b":')]).toThrowError(/truncated/);
  });

  it("splits windows into touching ranges and remembers recent ids only", () => {
    expect(splitWindow({ from: 0, to: 25 }, 10)).toEqual([{ from: 0, to: 10 }, { from: 10, to: 20 }, { from: 20, to: 25 }]);
    const recent = new RecentIds(2);
    expect(recent.seen("a")).toBe(false);
    recent.rotate();
    expect(recent.seen("a")).toBe(true);
    recent.rotate();
    recent.rotate();
    expect(recent.seen("a")).toBe(false);
  });
});

describe("raw record text", () => {
  it("finds each element of a top-level array, whatever its strings hold", () => {
    const records = [{ a: 'say "hi" [x] {y}', b: "back\\slash\\" }, { c: ["]", "\\\"", { d: "日本 👩‍💻\n=SUM(A1)" }] }, {}];
    const text = JSON.stringify({ _metadata: { count: 3, note: '"conversationHistoryRecords":[' }, conversationHistoryRecords: records, after: [1] });
    const slices = topLevelArrayElements(text, "conversationHistoryRecords")!;
    expect(slices.map(([s, e]) => JSON.parse(text.slice(s, e)))).toEqual(records);
    expect(slices.map(([s, e]) => text.slice(s, e))).toEqual(records.map((r) => JSON.stringify(r)));
    expect(topLevelArrayElements(text, "missing")).toBeNull();
    expect(topLevelArrayElements('{"x":{"conversationHistoryRecords":[{}]}}', "conversationHistoryRecords")).toBeNull();
  });

  it("writes records as received when they are one line, and serialises them otherwise", async () => {
    const docs = [...jsonDocuments('{"a": 1}\n{\n  "b": 2\n}')] as object[];
    expect(rawJsonOf(docs[0]!)).toBe('{"a": 1}');
    expect(rawJsonOf(docs[1]!)).toBeNull();
    async function* source() {
      yield* docs as Array<Record<string, unknown>>;
    }
    let out = "";
    for await (const chunk of ndjsonChunks(source())) out += chunk;
    expect(out).toBe('{"a": 1}\n{"b":2}\n');
  });
});

describe("CSDS discovery", () => {
  let sim: Simulator;
  beforeAll(async () => {
    sim = await startSimulator({ seed: "csds" });
  });
  afterAll(async () => {
    await sim?.stop();
  });

  it("caches an account's domains for the TTL, then asks again", async () => {
    const { accountId } = newAccount(sim);
    let now = 1_000_000;
    const csds = new CsdsClient({ csdsUrl: sim.url, ttlMs: 60_000, now: () => now });
    const [a, b] = await Promise.all([csds.baseUrl(accountId, "msgHist"), csds.baseUrl(accountId, "leDataReporting")]);
    expect(a).toBe(sim.url);
    expect(b).toBe(sim.url);
    await csds.baseUrl(accountId, "accountConfigReadOnly");
    expect(csds.requests).toBe(1);
    now += 61_000;
    await csds.baseUrl(accountId, "msgHist");
    expect(csds.requests).toBe(2);
    await expect(csds.baseUrl("no-such-account", "msgHist")).rejects.toMatchObject({ code: "unknown_account", permanent: true });
  });
});
