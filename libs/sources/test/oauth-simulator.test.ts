/**
 * The simulator verifies signatures independently of the connector (RFC 5849 from its own code):
 * it must accept the connector's signatures for any query, those whose names or values need
 * decoding included, and refuse one sent twice.
 */
import { verifyOAuth, type Simulator } from "@transporter/simulator";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { oauthHeader, type SourceCredentials } from "../src/index.js";
import { newAccount, SEED, startSimulator } from "./helpers.js";

/** Queries whose form decoding differs from a naive one: `+` for a space, encoded names, repeats, the RFC §3.4.1 example. */
const QUERIES = [
  "skillIds=a+b",
  "k%5B%5D=1&k%5B%5D=2",
  "b5=%3D%253D&a3=a&c%40=&a2=r%20b&a3=2+q",
  "q=%2B+%20~*!'()&empty&%E6%97%A5=%F0%9F%98%80",
];

let sim: Simulator;
beforeAll(async () => {
  sim = await startSimulator({ seed: SEED });
});
afterAll(async () => {
  await sim?.stop();
});

describe("the simulator's verification of the connector's signatures", () => {
  const credentials: SourceCredentials = { consumerKey: "key", consumerSecret: "s3cr€t&=", token: "tok", tokenSecret: "t0k secret" };

  it.each(QUERIES)("accepts ?%s", (query) => {
    const url = `https://va.msghist.example/messaging_history/api/account/123/conversations/search?${query}`;
    expect(verifyOAuth("POST", url, oauthHeader("POST", url, credentials), credentials)).toMatchObject({ ok: true });
  });

  it("accepts the connector's signature of the RFC's example request (§1.2)", () => {
    const rfc = { consumerKey: "dpf43f3p2l4k3l03", consumerSecret: "kd94hf93k423kf44", token: "nnch734d00sl2jdk", tokenSecret: "pfkkdhi9sl3r4s00" };
    const url = "http://photos.example.net/photos?file=vacation.jpg&size=original";
    const header = oauthHeader("GET", url, rfc, { nonce: "chapoH", timestamp: 137131202 });
    expect(verifyOAuth("GET", url, header, rfc, 137131202_000)).toMatchObject({ ok: true });
    expect(verifyOAuth("GET", url.replace("original", "small"), header, rfc, 137131202_000)).toMatchObject({ ok: false });
  });

  it.each(QUERIES)("accepts ?%s over HTTP, once", async (query) => {
    const { accountId, credentials } = newAccount(sim);
    const url = `${sim.url}/api/account/${accountId}/configuration/le-users/skills?v=2.0&${query}`;
    const headers = { authorization: oauthHeader("GET", url, credentials) };
    expect((await fetch(url, { headers })).status).toBe(200);
    // The same signed request again is a replay.
    expect((await fetch(url, { headers })).status).toBe(401);
  });
});
