import type * as NodeHttp from "node:http";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import { SpanKind } from "@opentelemetry/api";
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTelemetry, type Telemetry } from "@transporter/telemetry";
import { InMemorySpanExporter } from "@transporter/telemetry/testing";
import { startS3rver, type S3rverHandle } from "../../libs/storage/test/support/s3rver.js";
import { parseExposition } from "./support/exposition.js";
import { freePort } from "../e2e/support/processes.js";

/**
 * Outgoing HTTP requests (a delivery's S3 PUT to a tenant's bucket, a resumable upload's session
 * URL) under startTelemetry: the bucket or endpoint a tenant chose is no metric label (one
 * histogram family per tenant endpoint and replica), and no client span carries a URL's query
 * string, where signatures and upload session ids travel.
 */
describe("telemetry of outgoing HTTP requests", () => {
  const spans = new InMemorySpanExporter();
  let telemetry: Telemetry;
  let metricsPort: number;
  let s3: S3rverHandle;
  let upload: NodeHttp.Server;

  beforeAll(async () => {
    metricsPort = await freePort();
    telemetry = startTelemetry({ serviceName: "transporter-http-client-test", spanExporter: spans, prometheusPort: metricsPort });
    await telemetry.started;
    // The HTTP instrumentation patches node:http when it is next required (in a service, by a
    // CommonJS dependency loaded later, e.g. the AWS SDK's credential providers): do so now.
    const http = createRequire(import.meta.url)("node:http") as typeof NodeHttp;
    s3 = await startS3rver({ buckets: ["tenant-reports"] });
    upload = http.createServer((req, res) => {
      req.resume();
      req.on("end", () => res.writeHead(200).end("{}"));
    });
    await new Promise<void>((resolve) => upload.listen(0, "127.0.0.1", resolve));
  });

  afterAll(async () => {
    await s3?.stop();
    await new Promise((resolve) => upload?.close(resolve));
    await telemetry?.shutdown();
  });

  it("labels no metric with the server's address, and keeps query strings out of client spans", async () => {
    const client = s3.client();
    await client.send(new PutObjectCommand({ Bucket: "tenant-reports", Key: "exports/report.csv.pgp", Body: "a,b\n1,2\n" }));
    // A presigned PUT (its credential and signature in the query) and a GCS-style resumable
    // upload session, whose upload_id alone lets anyone write to it.
    const http = createRequire(import.meta.url)("node:http") as typeof NodeHttp;
    const uploads = `http://127.0.0.1:${(upload.address() as AddressInfo).port}`;
    const presigned = `${uploads}/tenant-bucket/presigned.csv?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIASECRETCREDENTIAL%2F20250101%2Feu-west-1%2Fs3%2Faws4_request&X-Amz-Signature=0123abcd`;
    const session = `${uploads}/upload/storage/v1/b/tenant-bucket/o?uploadType=resumable&upload_id=ADPycdsecretsession`;
    for (const [url, method] of [[presigned, "PUT"], [session, "PUT"]] as const) {
      await new Promise<void>((resolve, reject) => {
        const req = http.request(url, { method }, (res) => {
          res.resume();
          res.on("end", () => resolve());
        });
        req.on("error", reject);
        req.end("a,b\n");
      });
    }
    client.destroy();

    const exposition = parseExposition(await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text());
    const labelled = exposition.samples.filter((s) => "server_address" in s.labels || "server_port" in s.labels);
    expect([...new Set(labelled.map((s) => `${s.name}{server_address="${s.labels.server_address}"}`))]).toEqual([]);
    expect([...exposition.families.keys()].filter((name) => name.startsWith("http_"))).toEqual([]);

    // The client spans are there (three requests), with their URLs but no query strings.
    for (let waited = 0; spans.getFinishedSpans().filter((s) => s.kind === SpanKind.CLIENT).length < 3 && waited < 10_000; waited += 20) await new Promise((resolve) => setTimeout(resolve, 20));
    const urls = spans.getFinishedSpans().filter((s) => s.kind === SpanKind.CLIENT).map((s) => String(s.attributes["url.full"]));
    expect(urls).toEqual(expect.arrayContaining([
      `${s3.endpoint}/tenant-reports/exports/report.csv.pgp`,
      `${uploads}/tenant-bucket/presigned.csv`,
      session.slice(0, session.indexOf("?")),
    ]));
    expect(urls.filter((url) => url.includes("?"))).toEqual([]);
    // (The servers here are in this process: their spans have url.query, as the gateway's do.)
    const text = JSON.stringify(spans.getFinishedSpans().filter((s) => s.kind === SpanKind.CLIENT).map((s) => [s.name, s.attributes, s.events]));
    expect(text).not.toContain("ADPycdsecretsession");
    expect(text).not.toContain("AKIASECRETCREDENTIAL");
  });
});
