/**
 * The gateway's close (what SIGTERM runs) with keep-alive clients: it waits for the requests
 * under way, and must not then wait for their connections, which a keep-alive client leaves
 * open and idle (Fastify closes idle connections only once, as the close begins).
 */
import http from "node:http";
import { PassThrough } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, describe, expect, it } from "vitest";
import { setupGateway, type TestGateway } from "./helpers.js";

/** Far below the 30 s after which a stopping service forces its exit. */
const PROMPT_MS = 5_000;

describe("gateway close with keep-alive connections", () => {
  let gw: TestGateway | undefined;
  let agent: http.Agent | undefined;

  afterEach(async () => {
    agent?.destroy();
    await gw?.close();
  });

  /** A listening gateway (with `extra` routes) and a keep-alive HTTP agent. */
  async function listening(extra?: (app: TestGateway["app"]) => void): Promise<{ url: string; agent: http.Agent }> {
    gw = await setupGateway();
    extra?.(gw.app);
    const url = await gw.app.listen({ host: "127.0.0.1", port: 0 });
    agent = new http.Agent({ keepAlive: true });
    return { url, agent };
  }

  /** "closed" when app.close() completes within PROMPT_MS, else "hung". */
  function closing(app: TestGateway["app"]): Promise<"closed" | "hung"> {
    return Promise.race([app.close().then(() => "closed" as const), sleep(PROMPT_MS).then(() => "hung" as const)]);
  }

  it("a request under way when the close begins is answered with Connection: close, and the close completes", async () => {
    const { url, agent } = await listening();
    const body = JSON.stringify({ name: "Keep-alive", accountId: "77001234", timezone: "UTC" });
    let sendRest = () => {};
    const answered = new Promise<{ status: number | undefined; connection: string | undefined }>((resolve, reject) => {
      const req = http.request(`${url}/v1/tenants`, { agent, method: "POST", headers: { authorization: `Bearer ${gw!.operatorKey}`, "content-type": "application/json", "content-length": Buffer.byteLength(body) } }, (res) => {
        res.resume();
        res.on("end", () => resolve({ status: res.statusCode, connection: res.headers.connection }));
      });
      req.on("error", reject);
      // The body arrives in two parts, the second after the close has begun.
      req.write(body.slice(0, 10));
      sendRest = () => req.end(body.slice(10));
    });
    await sleep(200);
    const closed = closing(gw!.app);
    await sleep(300);
    sendRest();
    const answer = await answered;
    expect(await closed).toBe("closed");
    expect(answer).toEqual({ status: 201, connection: "close" });
  });

  it("a response whose headers went out before the close began: its connection is closed once it ends", async () => {
    let finish = () => {};
    const { url, agent } = await listening((app) => {
      // Under a public path: no key needed.
      app.get("/healthz/slow-download", async (_req, reply) => {
        const stream = new PassThrough();
        stream.write("first part;");
        finish = () => stream.end("last part");
        return reply.type("text/plain").send(stream);
      });
    });
    const answered = new Promise<{ status: number | undefined; body: string }>((resolve, reject) => {
      http
        .get(`${url}/healthz/slow-download`, { agent }, (res) => {
          let body = "";
          res.setEncoding("utf8");
          res.on("data", (chunk: string) => (body += chunk));
          res.on("end", () => resolve({ status: res.statusCode, body }));
        })
        .on("error", reject);
    });
    await sleep(200);
    const closed = closing(gw!.app);
    await sleep(300);
    finish();
    const answer = await answered;
    expect(await closed).toBe("closed");
    expect(answer).toEqual({ status: 200, body: "first part;last part" });
  });
});
