/**
 * What domain discovery (CSDS) answers and what is read from it: an answer not of the documented
 * shape is a malformed response, not a crash; the Data Access region comes from the discovered
 * hosts however they are written.
 */
import { describe, expect, it } from "vitest";
import { createPlatform, CsdsClient, type SourceCredentials } from "../src/index.js";

const CSDS = "https://api.platform.test";
const credentials: SourceCredentials = { consumerKey: "k", consumerSecret: "s", token: "t", tokenSecret: "ts" };

/** A fetch answering every CSDS request with `body` (as JSON). */
const answering = (body: unknown) => (async () => new Response(JSON.stringify(body), { status: 200, headers: { "content-type": "application/json" } })) as typeof globalThis.fetch;

describe("domain discovery answers not of the documented shape", () => {
  it.each([
    ["null", null],
    ["a list", []],
    ["baseURIs not a list", { baseURIs: {} }],
    ["an entry that is not an object", { baseURIs: [null] }],
    ["an entry that is a string", { baseURIs: ["msgHist"] }],
    // An entry without its host is broken, not an API the account lacks (that would be permanent).
    ["an entry whose baseURI is null", { baseURIs: [{ service: "msgHist", baseURI: null }, { service: "engHistDomain", baseURI: "h.platform.test" }] }],
    ["an entry whose baseURI is empty", { baseURIs: [{ service: "msgHist", baseURI: " " }] }],
    ["an entry without a service", { baseURIs: [{ baseURI: "h.platform.test" }] }],
  ])("are malformed_response (%s), also for verification", async (_what, body) => {
    const csds = new CsdsClient({ csdsUrl: CSDS, fetch: answering(body) });
    await expect(csds.domains("123")).rejects.toMatchObject({ code: "malformed_response", permanent: false, message: expect.stringMatching(/Domain discovery \(CSDS\) returned a malformed answer/) });
    const platform = createPlatform({ csdsUrl: CSDS, http: { fetch: answering(body) } });
    const result = await platform.verifySource(credentials, "123", ["messaging-interactions"]);
    expect(result).toMatchObject({ verified: false, error: { code: "malformed_response", message: expect.stringContaining("malformed answer") } });
  });
});

describe("the Data Access region", () => {
  it.each([
    ["lo.msghist.liveperson.net", "https://lo.da.liveperson.net"],
    ["https://lo.msghist.liveperson.net", "https://lo.da.liveperson.net"],
    ["https://lo.msghist.liveperson.net/", "https://lo.da.liveperson.net"],
    ["LO.msghist.liveperson.net", "https://lo.da.liveperson.net"],
    ["HTTPS://Sy.msghist.liveperson.net:443", "https://sy.da.liveperson.net"],
    ["lo-a.msghist.liveperson.net", "https://lo.da.liveperson.net"],
    ["va.msghist.liveperson.net", "https://va.da.liveperson.net"],
    // No region named: the US host.
    ["msghist.example.net", "https://va.da.liveperson.net"],
    ["https://", "https://va.da.liveperson.net"],
  ])("comes from the discovered host %s: %s", async (baseURI, expected) => {
    const platform = createPlatform({ csdsUrl: CSDS, http: { fetch: answering({ baseURIs: [{ service: "msgHist", baseURI }] }) } });
    expect(await platform.openSource("123", credentials).dataAccessBaseUrl()).toBe(expected);
  });
});
