import { SpanStatusCode } from "@opentelemetry/api";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { captureLogs, installTestTelemetry } from "@transporter/telemetry/testing";
import { startS3rver, type S3rverHandle } from "../../libs/storage/test/support/s3rver.js";
import { findSecrets, privateKeyFragments, spanTexts, type CapturedSpan } from "./support/secrets.js";
import { createBrand, createTask, lastHour, REPORT_ID, startObservedSystem, waitFor, waitForRun, type Brand, type ObservedSystem, type RunView } from "./support/system.js";

// Installed before the system starts, so every tracer and meter the services create reports here.
const telemetry = installTestTelemetry();
const logs = captureLogs({ level: "debug" });

const STAGES = ["fetch", "transform", "encrypt", "deliver"] as const;
const stageSpanName = /^(fetch|transform|encrypt|deliver) run$/;

const nanos = ([seconds, nanoseconds]: [number, number]) => seconds * 1e9 + nanoseconds;

type Points = Awaited<ReturnType<typeof telemetry.collectMetrics>>;
type Histogram = { count: number; sum: number };

function pointsOf(metrics: Points, name: string, match: Record<string, unknown> = {}) {
  return (metrics.get(name) ?? []).filter((p) => Object.entries(match).every(([k, v]) => p.attributes[k] === v));
}
function total(metrics: Points, name: string, match: Record<string, unknown> = {}): number {
  return pointsOf(metrics, name, match).reduce((sum, p) => sum + (p.value as number), 0);
}

/**
 * The whole system in this process with in-memory exporters, three runs requested through
 * POST /v1/tasks/:id/runs: one succeeds after a retried fetch (the simulator answers 503 more
 * often than the HTTP client retries), one fails at once (the simulator refuses the API with
 * 403), and one fails at delivery after every retry (its S3 server has gone away).
 */
describe("observability of runs: one trace per run, metrics, no secrets", () => {
  let observed: ObservedSystem;
  let s3: S3rverHandle;
  let brand: Brand;
  let managedTaskId: string;
  let s3TaskId: string;
  let succeeded: RunView;
  let failed: RunView;
  let undelivered: RunView;
  let s3Stopped = false;

  beforeAll(async () => {
    [observed, s3] = await Promise.all([startObservedSystem({ logger: logs.logger }), startS3rver({ buckets: ["observed-reports"] })]);
    brand = await createBrand(observed);
    const managed = await observed.api<{ id: string }>(brand.adminKey, "POST", "/v1/destinations", { name: "Managed", kind: "managed", config: {} }, 201);
    const bucket = await observed.api<{ id: string }>(brand.adminKey, "POST", "/v1/destinations", {
      name: "S3", kind: "s3",
      config: { bucket: "observed-reports", prefix: "exports", region: s3.region, endpoint: s3.endpoint, forcePathStyle: true },
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    }, 201);
    // Only asked to run: disabled, so that no scheduled run comes along.
    managedTaskId = await createTask(observed, brand, managed.id, undefined, { enabled: false });
    s3TaskId = await createTask(observed, brand, bucket.id, undefined, { enabled: false });

    // One 429 (waited out), then four 503s exhaust the HTTP client's four attempts: the first
    // fetch attempt fails and the job retries.
    observed.simulator.control.setFaults(brand.accountId, { status429: { count: 1, retryAfterSeconds: 1 }, status5xx: { count: 4 }, apis: ["messaging-interactions"] });
    const first = await observed.api<RunView>(brand.adminKey, "POST", `/v1/tasks/${managedTaskId}/runs`, lastHour(), 202);
    succeeded = await waitForRun(observed, brand.adminKey, first.id);

    observed.simulator.control.setFaults(brand.accountId, { forbidden: ["messaging-interactions"] });
    const second = await observed.api<RunView>(brand.adminKey, "POST", `/v1/tasks/${s3TaskId}/runs`, lastHour(), 202);
    failed = await waitForRun(observed, brand.adminKey, second.id);
    observed.simulator.control.clearFaults(brand.accountId);

    // The bucket's server stops: every delivery attempt cannot connect (a transient error), so
    // the deliver stage is retried JOB_ATTEMPTS (3) times and the run fails.
    await s3.stop();
    s3Stopped = true;
    const third = await observed.api<RunView>(brand.adminKey, "POST", `/v1/tasks/${s3TaskId}/runs`, lastHour(), 202);
    undelivered = await waitForRun(observed, brand.adminKey, third.id);

    // A stage writes the run's final status inside its span, so the API can show SUCCEEDED or
    // FAILED a moment before that span ends (and, for a failure, before its metrics are added).
    // Wait for every expected attempt to have ended before asserting on spans and metrics.
    const attemptsEnded = (runId: string, expected: Record<string, number>) =>
      waitFor(`the stage spans of run ${runId}`, async () => {
        const ended = telemetry.spans.getFinishedSpans().filter((s) => stageSpanName.test(s.name) && s.attributes["transporter.run_id"] === runId);
        return Object.entries(expected).every(([stage, n]) => ended.filter((s) => s.name === `${stage} run`).length >= n) ? true : undefined;
      });
    await attemptsEnded(succeeded.id, { fetch: 2, transform: 1, encrypt: 1, deliver: 1 });
    await attemptsEnded(failed.id, { fetch: 1 });
    await attemptsEnded(undelivered.id, { fetch: 1, transform: 1, encrypt: 1, deliver: 3 });
  }, 240_000);

  afterAll(async () => {
    await observed?.stop();
    if (!s3Stopped) await s3?.stop();
    await telemetry.shutdown();
  });

  const spans = () => telemetry.spans.getFinishedSpans();
  const spanById = () => new Map(spans().map((s) => [s.spanContext().spanId, s]));
  const stageSpansOf = (runId: string) => spans().filter((s) => stageSpanName.test(s.name) && s.attributes["transporter.run_id"] === runId);
  const parentOf = (span: CapturedSpan, byId: Map<string, CapturedSpan>) => {
    const parentId = span.parentSpanContext?.spanId;
    return parentId ? byId.get(parentId) : undefined;
  };
  /** The request span of POST /v1/tasks/:id/runs whose trace holds the gateway span that created the run. */
  const requestSpanOf = (runId: string) => {
    const creators = spans().filter((s) => !stageSpanName.test(s.name) && s.attributes["transporter.run_id"] === runId);
    const requests = spans().filter((s) => s.name === "request" && s.attributes["http.route"] === "/v1/tasks/:id/runs" && s.attributes["http.request.method"] === "POST");
    return requests.find((root) => creators.some((c) => c.spanContext().traceId === root.spanContext().traceId));
  };

  it("the runs ended as set up: one SUCCEEDED after a retried fetch, one FAILED for the missing permission, one FAILED delivering", () => {
    expect(succeeded).toMatchObject({ status: "SUCCEEDED" });
    expect(succeeded.records).toBeGreaterThan(0);
    expect(succeeded.bytes).toBeGreaterThan(0);
    expect(failed).toMatchObject({ status: "FAILED", errorCode: "missing_permission" });
    expect(undelivered).toMatchObject({ status: "FAILED", errorCode: "connect", bytes: null });
    expect(undelivered.records).toBeGreaterThan(0);
  });

  it("one trace runs from POST /v1/tasks/:id/runs through fetch, transform, encrypt and deliver", () => {
    const byId = spanById();
    const root = requestSpanOf(succeeded.id);
    expect(root, "the request span of POST /v1/tasks/:id/runs").toBeDefined();
    expect(root!.parentSpanContext, "the API call starts the trace").toBeUndefined();
    expect(root!.attributes["http.response.status_code"]).toBe(202);
    const traceId = root!.spanContext().traceId;

    const stageSpans = stageSpansOf(succeeded.id);
    expect(new Set(stageSpans.map((s) => s.name))).toEqual(new Set(STAGES.map((s) => `${s} run`)));
    // The API handler that created the run put its trace context into the job payload: every
    // stage span (every attempt) is its child, and it is the child of the request span.
    const creator = parentOf(stageSpans[0]!, byId);
    expect(creator?.attributes).toMatchObject({ "transporter.run_id": succeeded.id, "transporter.task_id": managedTaskId, "transporter.tenant_id": brand.tenantId, "http.route": "/v1/tasks/:id/runs" });
    expect(parentOf(creator!, byId)).toBe(root);
    for (const span of stageSpans) {
      expect(span.spanContext().traceId, span.name).toBe(traceId);
      expect(parentOf(span, byId), `${span.name} attempt ${String(span.attributes["transporter.attempt"])}`).toBe(creator);
    }

    // The successful attempt of each stage, in pipeline order, with the run's attributes.
    const final = STAGES.map((stage) => {
      const attempts = stageSpans.filter((s) => s.name === `${stage} run`).sort((a, b) => Number(a.attributes["transporter.attempt"]) - Number(b.attributes["transporter.attempt"]));
      return attempts.at(-1)!;
    });
    for (const [i, span] of final.entries()) {
      expect(span.status.code, span.name).not.toBe(SpanStatusCode.ERROR);
      expect(span.attributes, span.name).toMatchObject({
        "transporter.stage": STAGES[i],
        "transporter.tenant_id": brand.tenantId,
        "transporter.task_id": managedTaskId,
        "transporter.run_id": succeeded.id,
        "transporter.report": REPORT_ID,
        "transporter.destination_kind": "managed",
      });
      if (i > 0) {
        const previous = final[i - 1]!;
        expect(nanos(span.startTime), `${span.name} starts after ${previous.name} started`).toBeGreaterThan(nanos(previous.startTime));
      }
    }
    expect(final[0]!.attributes["transporter.records"]).toBe(succeeded.records);
    expect(final[3]!.attributes["transporter.bytes"]).toBe(succeeded.bytes);

    // Source calls are children of the fetch attempt that made them: the first attempt's were
    // refused (a 429 waited out, then four 503s), the second attempt's answered 200.
    const fetchAttempts = stageSpans.filter((s) => s.name === "fetch run").sort((a, b) => Number(a.attributes["transporter.attempt"]) - Number(b.attributes["transporter.attempt"]));
    const sourceCalls = (parent: CapturedSpan) => spans().filter((s) => s.name === "source request" && parentOf(s, byId) === parent).sort((a, b) => nanos(a.startTime) - nanos(b.startTime));
    expect(sourceCalls(fetchAttempts[0]!).map((s) => s.attributes["http.response.status_code"])).toEqual([429, 503, 503, 503, 503]);
    expect(sourceCalls(fetchAttempts[0]!).map((s) => s.attributes["http.request.resend_count"])).toEqual([0, 1, 2, 3, 4]);
    const answered = sourceCalls(fetchAttempts[1]!);
    expect(answered.length).toBeGreaterThan(0);
    for (const call of answered) expect(call.attributes["http.response.status_code"]).toBe(200);
    for (const call of [...sourceCalls(fetchAttempts[0]!), ...answered]) expect(call.attributes["transporter.source_api"]).toBe("messaging-interactions");
    // The destination call is a child of the deliver span, with the destination kind and the bytes written.
    const destinationCalls = spans().filter((s) => s.name === "destination deliver" && parentOf(s, byId) === final[3]);
    expect(destinationCalls).toHaveLength(1);
    expect(destinationCalls[0]!.attributes).toMatchObject({ "transporter.destination_kind": "managed", "transporter.bytes": succeeded.bytes });

    // Each queue hop is in the trace: the job is added inside the span that enqueued it (the API
    // handler for fetch, the previous stage for the others) and every attempt to process it is a
    // child of that "add" span.
    for (const [i, stage] of STAGES.entries()) {
      const jobId = `${succeeded.id}-${stage}`;
      const add = spans().filter((s) => s.name.startsWith("add ") && s.attributes["bullmq.job.id"] === jobId);
      expect(add, `add ${jobId}`).toHaveLength(1);
      expect(parentOf(add[0]!, byId), `${stage} is enqueued by ${i === 0 ? "the API handler" : STAGES[i - 1]}`).toBe(i === 0 ? creator : final[i - 1]);
      const processed = spans().filter((s) => s.name === `process ${stage}` && s.attributes["bullmq.job.id"] === jobId);
      expect(processed.length, `process ${stage}`).toBe(stage === "fetch" ? 2 : 1);
      for (const p of processed) expect(parentOf(p, byId)).toBe(add[0]);
      expect(nanos(final[i]!.startTime), `${stage} runs after its job was added`).toBeGreaterThanOrEqual(nanos(add[0]!.startTime));
    }
  });

  it("a retried stage appears as a new span in the same trace, the failed attempt marked as an error", () => {
    const fetches = stageSpansOf(succeeded.id)
      .filter((s) => s.name === "fetch run")
      .sort((a, b) => Number(a.attributes["transporter.attempt"]) - Number(b.attributes["transporter.attempt"]));
    expect(fetches.map((s) => s.attributes["transporter.attempt"])).toEqual([1, 2]);
    const [firstAttempt, secondAttempt] = fetches as [CapturedSpan, CapturedSpan];
    expect(firstAttempt.spanContext().traceId).toBe(secondAttempt.spanContext().traceId);
    expect(firstAttempt.spanContext().spanId).not.toBe(secondAttempt.spanContext().spanId);
    expect(firstAttempt.status.code).toBe(SpanStatusCode.ERROR);
    expect(firstAttempt.events.some((e) => e.name === "exception")).toBe(true);
    expect(secondAttempt.status.code).not.toBe(SpanStatusCode.ERROR);
    for (const stage of ["transform", "encrypt", "deliver"]) expect(stageSpansOf(succeeded.id).filter((s) => s.name === `${stage} run`), stage).toHaveLength(1);
  });

  it("the failed run has its own trace, ending in an error span on the failing stage", () => {
    const root = requestSpanOf(failed.id);
    expect(root).toBeDefined();
    expect(root!.spanContext().traceId).not.toBe(requestSpanOf(succeeded.id)!.spanContext().traceId);
    const stageSpans = stageSpansOf(failed.id);
    expect(stageSpans.map((s) => s.name)).toEqual(["fetch run"]);
    expect(stageSpans[0]!.spanContext().traceId).toBe(root!.spanContext().traceId);
    expect(stageSpans[0]!.status.code).toBe(SpanStatusCode.ERROR);
    expect(stageSpans[0]!.attributes).toMatchObject({ "transporter.destination_kind": "s3", "transporter.task_id": s3TaskId });
  });

  it("a delivery retried until it fails is one trace with a span per attempt", () => {
    const root = requestSpanOf(undelivered.id);
    expect(root).toBeDefined();
    const traceId = root!.spanContext().traceId;
    const stageSpans = stageSpansOf(undelivered.id);
    for (const span of stageSpans) expect(span.spanContext().traceId, span.name).toBe(traceId);
    const delivers = stageSpans.filter((s) => s.name === "deliver run");
    expect(delivers.map((s) => s.attributes["transporter.attempt"]).sort()).toEqual([1, 2, 3]);
    const byId = spanById();
    for (const span of delivers) {
      expect(span.status.code).toBe(SpanStatusCode.ERROR);
      const calls = spans().filter((s) => s.name === "destination deliver" && parentOf(s, byId) === span);
      expect(calls.map((c) => [c.attributes["transporter.destination_kind"], c.status.code])).toEqual([["s3", SpanStatusCode.ERROR]]);
      expect(span.attributes).toMatchObject({ "transporter.destination_kind": "s3", "transporter.run_id": undelivered.id, "transporter.tenant_id": brand.tenantId });
    }
    for (const stage of ["fetch", "transform", "encrypt"]) {
      const spans = stageSpans.filter((s) => s.name === `${stage} run`);
      expect(spans, stage).toHaveLength(1);
      expect(spans[0]!.status.code, stage).not.toBe(SpanStatusCode.ERROR);
    }
  });

  it("the metrics count runs started, succeeded and failed by reason, retries, bytes, records and stage durations", async () => {
    const metrics = await telemetry.collectMetrics();
    const managed = { report: REPORT_ID, destination_kind: "managed" };
    const bucket = { report: REPORT_ID, destination_kind: "s3" };
    const nonZero = (name: string) => pointsOf(metrics, name).filter((p) => (p.value as number) > 0).map((p) => [p.attributes, p.value]);

    expect(total(metrics, "transporter.runs.started")).toBe(3);
    expect(total(metrics, "transporter.runs.started", { ...managed, trigger: "manual" })).toBe(1);
    expect(total(metrics, "transporter.runs.started", { ...bucket, trigger: "manual" })).toBe(2);

    expect(nonZero("transporter.runs.succeeded")).toEqual([[managed, 1]]);
    expect(nonZero("transporter.runs.failed")).toEqual(
      expect.arrayContaining([
        [{ ...bucket, stage: "fetch", reason: "missing_permission" }, 1],
        [{ ...bucket, stage: "deliver", reason: "connect" }, 1],
      ]),
    );
    expect(total(metrics, "transporter.runs.failed")).toBe(2);

    // The fetch retried once; the delivery was retried twice before its third and last attempt failed.
    expect(nonZero("transporter.stage.retries")).toEqual(
      expect.arrayContaining([
        [{ stage: "fetch", reason: "upstream_unavailable", destination_kind: "managed" }, 1],
        [{ stage: "deliver", reason: "connect", destination_kind: "s3" }, 2],
      ]),
    );
    expect(total(metrics, "transporter.stage.retries")).toBe(3);

    expect(total(metrics, "transporter.records.processed", managed)).toBe(succeeded.records);
    expect(total(metrics, "transporter.records.processed", bucket)).toBe(undelivered.records);
    expect(total(metrics, "transporter.records.processed")).toBe(succeeded.records! + undelivered.records!);
    expect(nonZero("transporter.delivered.bytes")).toEqual([[managed, succeeded.bytes]]);

    // Source API calls by HTTP status (the probes that verified the source when it was saved count too).
    const calls = (status: string) => total(metrics, "transporter.source.requests", { api: "messaging-interactions", status });
    expect([calls("429"), calls("503"), calls("403")]).toEqual([1, 4, 1]);
    expect(calls("200")).toBeGreaterThanOrEqual(3);
    expect(nonZero("transporter.source.rate_limited")).toEqual([[{ api: "messaging-interactions" }, 1]]);

    // Successful attempts are timed (failed ones raise instead): two runs got past each stage but the last.
    for (const [stage, count] of [["fetch", 2], ["transform", 2], ["encrypt", 2], ["deliver", 1]] as const) {
      const points = pointsOf(metrics, "transporter.stage.duration", { stage, report: REPORT_ID });
      expect(points, stage).toHaveLength(1);
      const histogram = points[0]!.value as Histogram;
      expect(histogram.count, stage).toBe(count);
      expect(histogram.sum, stage).toBeGreaterThan(0);
    }
  });

  it("the queue depth gauge reports every queue and state from Redis", async () => {
    const metrics = await telemetry.collectMetrics();
    const depth = (queue: string, state: string) => {
      const points = pointsOf(metrics, "transporter.queue.jobs", { queue, state });
      expect(points, `${queue}/${state}`).toHaveLength(1);
      return points[0]!.value as number;
    };
    for (const queue of STAGES) for (const state of ["waiting", "active", "delayed"]) expect(depth(queue, state), `${queue} ${state}`).toBe(0);
    // Fetches: two completed (one on its second attempt), the refused one failed for good.
    expect(depth("fetch", "completed")).toBe(2);
    expect(depth("fetch", "failed")).toBe(1);
    for (const queue of ["transform", "encrypt"]) {
      expect(depth(queue, "completed"), queue).toBe(2);
      expect(depth(queue, "failed"), queue).toBe(0);
    }
    expect(depth("deliver", "completed")).toBe(1);
    expect(depth("deliver", "failed")).toBe(1);
  });

  it("every log line about a run carries that run's trace id", () => {
    const records = logs.records();
    const traceId = requestSpanOf(succeeded.id)!.spanContext().traceId;
    const aboutRun = records.filter((r) => r.runId === succeeded.id);
    expect(aboutRun.length).toBeGreaterThan(0);
    for (const record of aboutRun) {
      expect(record.trace_id, JSON.stringify(record)).toBe(traceId);
      expect(record.span_id, JSON.stringify(record)).toMatch(/^[0-9a-f]{16}$/);
    }
  });

  it("domain discovery is a span in the trace of the call that needed it", () => {
    const byId = spanById();
    const discoveries = spans().filter((s) => s.name === "source discovery");
    expect(discoveries.length).toBeGreaterThan(0);
    for (const span of discoveries) {
      expect(span.attributes).toMatchObject({ "transporter.source_api": "csds", "http.request.method": "GET", "http.response.status_code": 200 });
      // Its parent is a source verification (an API request) or a stage of a run, never nothing.
      let ancestor = parentOf(span, byId);
      while (ancestor && !(ancestor.name === "request" || stageSpanName.test(ancestor.name))) ancestor = parentOf(ancestor, byId);
      expect(ancestor, "a request or stage span above the discovery").toBeDefined();
    }
  });

  it("the gateway's request lines carry the request's trace id", () => {
    const root = requestSpanOf(succeeded.id)!;
    const lines = logs.records().filter((r) => r.msg === "incoming request" || r.msg === "request completed");
    const ofRoot = lines.filter((r) => r.trace_id === root.spanContext().traceId).map((r) => r.msg);
    expect(ofRoot).toEqual(["incoming request", "request completed"]);
    // Every request line of a traced route has a trace id (health probes are not traced).
    const traced = lines.filter((r) => !/^\/(healthz|readyz)/.test(String((r.req as { url?: string } | undefined)?.url ?? "")));
    expect(traced.length).toBeGreaterThan(10);
    for (const record of traced) expect(record.trace_id, JSON.stringify(record)).toMatch(/^[0-9a-f]{32}$/);
  });

  it("no secret appears in any span attribute, event or status, nor in any log line", () => {
    const texts = [
      ...spans().flatMap((span) => spanTexts(span).map((text) => ({ where: `span "${span.name}"`, text }))),
      ...logs.lines.map((text, i) => ({ where: `log line ${i + 1}`, text })),
    ];
    expect(spans().length).toBeGreaterThan(20);
    expect(logs.lines.length).toBeGreaterThan(10);
    const secrets = {
      "operator API key": observed.operatorKey,
      "admin API key": brand.adminKey,
      passphrase: brand.passphrase,
      "private key": privateKeyFragments(brand.privateKey, brand.publicKey),
      "OAuth consumer key": brand.credentials.consumerKey,
      "OAuth consumer secret": brand.credentials.consumerSecret,
      "OAuth token": brand.credentials.token,
      "OAuth token secret": brand.credentials.tokenSecret,
      "S3 access key id": s3.accessKeyId,
      "S3 secret access key": s3.secretAccessKey,
    };
    expect(privateKeyFragments(brand.privateKey, brand.publicKey).length).toBeGreaterThan(3);
    expect(findSecrets(texts, secrets)).toEqual([]);
  });
});
