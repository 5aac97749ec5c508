import { describe, expect, it } from "vitest";
import { onPlatformHost } from "../src/platform-hosts.js";

describe("links the platform gives are followed only on the platform's hosts", () => {
  const base = "https://va.da.liveperson.net";
  it("follows Data Access files listed on a sibling host, as the API documents them (va-a. for va.)", () => {
    expect(onPlatformHost("https://va-a.da.liveperson.net/data_access_le/account/123/le/agentActivity/Agent.1461387600000.1461391200000.gz", base)).toBe(true);
    expect(onPlatformHost("https://va.da.liveperson.net/data_access_le/x.gz", base)).toBe(true);
    expect(onPlatformHost("http://127.0.0.1:4100/files/x.gz", "http://127.0.0.1:4100")).toBe(true);
  });

  it("refuses anything else: other domains, look-alikes, other schemes or ports, credentials, deeper or shallower names, other addresses", () => {
    for (const href of [
      "https://evil.example/x.gz",
      "https://va-a.da.liveperson.net.evil.example/x.gz",
      "https://da.liveperson.net/x.gz",
      "https://a.b.da.liveperson.net/x.gz",
      "https://va-a.liveperson.net/x.gz",
      "http://va-a.da.liveperson.net/x.gz",
      "https://va-a.da.liveperson.net:8443/x.gz",
      "https://user:pw@va-a.da.liveperson.net/x.gz",
      "not a url",
    ]) {
      expect(onPlatformHost(href, base), href).toBe(false);
    }
    expect(onPlatformHost("http://127.0.0.2:4100/x.gz", "http://127.0.0.1:4100")).toBe(false);
    expect(onPlatformHost("http://localhost:4101/x.gz", "http://localhost:4100")).toBe(false);
    // A short base name has no platform siblings to speak of.
    expect(onPlatformHost("https://b.example.com/x.gz", "https://a.example.com")).toBe(false);
  });
});
