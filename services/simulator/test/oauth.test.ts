/**
 * The simulator's OAuth 1.0a verification follows RFC 5849 to the letter (its own examples), so
 * it checks the connector's signatures rather than agreeing with one library's reading of them,
 * and refuses a request replayed with the same nonce.
 */
import { createHmac, randomBytes } from "node:crypto";
import OAuth from "oauth-1.0a";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NonceLog, verifyOAuth } from "../src/oauth.js";
import { startSimulator, type Simulator } from "../src/index.js";

describe("RFC 5849 signatures", () => {
  it("accepts the RFC's own example request (§1.2), and nothing changed from it", () => {
    const credentials = { consumerKey: "dpf43f3p2l4k3l03", consumerSecret: "kd94hf93k423kf44", token: "nnch734d00sl2jdk", tokenSecret: "pfkkdhi9sl3r4s00" };
    const header =
      'OAuth realm="Photos", oauth_consumer_key="dpf43f3p2l4k3l03", oauth_token="nnch734d00sl2jdk", oauth_signature_method="HMAC-SHA1", oauth_timestamp="137131202", oauth_nonce="chapoH", oauth_signature="MdpQcU8iPSUjWoN%2FUDMsK2sui9I%3D"';
    const url = "http://photos.example.net/photos?file=vacation.jpg&size=original";
    const at = 137131202_000;
    expect(verifyOAuth("GET", url, header, credentials, at)).toEqual({ ok: true, consumerKey: credentials.consumerKey });
    expect(verifyOAuth("GET", url.replace("original", "small"), header, credentials, at)).toMatchObject({ ok: false });
    expect(verifyOAuth("GET", url, header, { ...credentials, tokenSecret: "x" }, at)).toMatchObject({ ok: false });
  });

  it("signs the RFC's example base string (§3.4.1.1): names and values decoded and re-encoded, sorted, a form body's parameters included", () => {
    const credentials = { consumerKey: "9djdj82h48djs9d2", consumerSecret: "j49sk3j29djd", token: "kkk9d7dh3k39sjv7", tokenSecret: "dh893hdasih9" };
    const base =
      "POST&http%3A%2F%2Fexample.com%2Frequest&a2%3Dr%2520b%26a3%3D2%2520q%26a3%3Da%26b5%3D%253D%25253D%26c%2540%3D%26c2%3D%26oauth_consumer_key%3D9djdj82h48djs9d2%26oauth_nonce%3D7d8f3e4a%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D137131201%26oauth_token%3Dkkk9d7dh3k39sjv7";
    const signature = createHmac("sha1", `${credentials.consumerSecret}&${credentials.tokenSecret}`).update(base).digest("base64");
    const header = `OAuth realm="Example", oauth_consumer_key="9djdj82h48djs9d2", oauth_token="kkk9d7dh3k39sjv7", oauth_signature_method="HMAC-SHA1", oauth_timestamp="137131201", oauth_nonce="7d8f3e4a", oauth_signature="${encodeURIComponent(signature)}"`;
    const at = 137131201_000;
    const query = "b5=%3D%253D&a3=a&c%40=&a2=r%20b";
    expect(verifyOAuth("POST", `http://example.com/request?${query}`, header, credentials, at, { formBody: "c2&a3=2+q" })).toMatchObject({ ok: true });
    // The same parameters all in the query; scheme, host and default port normalised.
    expect(verifyOAuth("POST", `HTTP://Example.COM:80/request?${query}&c2&a3=2+q`, header, credentials, at)).toMatchObject({ ok: true });
    // Without the form body (a JSON body's fields are not parameters) the signature does not match.
    expect(verifyOAuth("POST", `http://example.com/request?${query}`, header, credentials, at)).toMatchObject({ ok: false, reason: "signature does not match" });
  });
});

describe("requests to the simulator", () => {
  const creds = { consumerKey: "ck-" + randomBytes(4).toString("hex"), consumerSecret: "cs", token: "tk", tokenSecret: "ts" };
  const account = "556677";
  let sim: Simulator;
  beforeAll(async () => {
    sim = await startSimulator({ seed: "sim-oauth-tests" });
    sim.control.registerAccount(account, creds);
  });
  afterAll(async () => {
    await sim?.stop();
  });

  const oauth = new OAuth({
    consumer: { key: creds.consumerKey, secret: creds.consumerSecret },
    signature_method: "HMAC-SHA1",
    hash_function: (base, key) => createHmac("sha1", key).update(base).digest("base64"),
  });

  it("refuses a request sent again with the same nonce and timestamp", async () => {
    const url = `${sim.url}/api/account/${account}/configuration/le-users/skills?v=2.0`;
    const headers = { ...oauth.toHeader(oauth.authorize({ url, method: "GET" }, { key: creds.token, secret: creds.tokenSecret })) };
    expect((await fetch(url, { headers })).status).toBe(200);
    const replayed = await fetch(url, { headers });
    expect(replayed.status).toBe(401);
    expect(await replayed.json()).toMatchObject({ message: "nonce already used" });
    // A newly signed request passes.
    expect((await fetch(url, { headers: { ...oauth.toHeader(oauth.authorize({ url, method: "GET" }, { key: creds.token, secret: creds.tokenSecret })) } })).status).toBe(200);
  });

  it("signs a form body's parameters, and only a form body's", async () => {
    const url = `${sim.url}/interaction_history/api/account/${account}/interactions/search?offset=0&limit=1`;
    const sign = () => ({ ...oauth.toHeader(oauth.authorize({ url, method: "POST", data: { c2: "", a3: "2 q" } }, { key: creds.token, secret: creds.tokenSecret })) });
    const form = await fetch(url, { method: "POST", headers: { ...sign(), "content-type": "application/x-www-form-urlencoded" }, body: "c2=&a3=2+q" });
    // Past the signature check: refused for the missing search window only.
    expect(form.status).toBe(400);
    const json = await fetch(url, { method: "POST", headers: { ...sign(), "content-type": "application/json" }, body: JSON.stringify({ c2: "", a3: "2 q" }) });
    expect(json.status).toBe(401);
  });

  it("remembers nonces per consumer key and timestamp, within the timestamp window", () => {
    const log = new NonceLog();
    const now = 1_700_000_000_000;
    expect(log.record("a", "n1", now / 1000, now)).toBe(true);
    expect(log.record("a", "n1", now / 1000, now + 1000)).toBe(false);
    expect(log.record("b", "n1", now / 1000, now)).toBe(true);
    expect(log.record("a", "n1", now / 1000 + 1, now)).toBe(true);
  });
});
