import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { histogramProblems, parseExposition, valueOf } from "./support/exposition.js";
import { dashboardTargets, metricNamesInPromQL } from "./support/promql.js";
import { findSecrets, privateKeyFragments } from "./support/secrets.js";

const DIR = "deploy/observability";

interface CollectorConfig {
  receivers: Record<string, { protocols?: Record<string, { endpoint?: string }> } | null>;
  processors?: Record<string, unknown>;
  exporters: Record<string, { endpoint?: string } | null>;
  extensions?: Record<string, unknown>;
  service: { extensions?: string[]; pipelines: Record<string, { receivers: string[]; processors?: string[]; exporters: string[] }> };
}

interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { h: number; w: number; x: number; y: number };
  datasource?: { type: string; uid: string };
  targets?: Array<{ expr?: string; refId: string; datasource?: { uid: string } }>;
}

const collector = parse(readFileSync(`${DIR}/otel-collector.yaml`, "utf8")) as CollectorConfig;
interface ScrapeConfig {
  job_name: string;
  static_configs?: Array<{ targets: string[]; labels?: Record<string, string> }>;
  dns_sd_configs?: Array<{ names: string[]; type?: string; port?: number }>;
}

const prometheus = parse(readFileSync(`${DIR}/prometheus.yml`, "utf8")) as { scrape_configs: ScrapeConfig[] };
const compose = parse(readFileSync("docker-compose.yml", "utf8"), { merge: true }) as { services: Record<string, { deploy?: { replicas?: number } }> };
const datasources = parse(readFileSync(`${DIR}/grafana/provisioning/datasources/prometheus.yaml`, "utf8")) as { datasources: Array<{ uid: string; type: string }> };
const dashboard = JSON.parse(readFileSync(`${DIR}/grafana/dashboards/transporter.json`, "utf8")) as { uid: string; title: string; panels: Panel[]; templating: { list: Array<{ name: string; type: string; query: unknown }> } };

describe("the OpenTelemetry Collector config", () => {
  it("parses, receives OTLP over HTTP and gRPC, and exports metrics to Prometheus and traces to a trace backend", () => {
    expect(collector.receivers.otlp?.protocols?.http?.endpoint).toMatch(/:4318$/);
    expect(collector.receivers.otlp?.protocols?.grpc?.endpoint).toMatch(/:4317$/);
    const { traces, metrics } = collector.service.pipelines;
    expect(traces?.receivers).toContain("otlp");
    expect(metrics?.receivers).toContain("otlp");
    expect(metrics?.exporters.some((e) => e.split("/")[0] === "prometheus")).toBe(true);
    expect(traces?.exporters.some((e) => ["otlp", "otlphttp", "jaeger", "zipkin"].includes(e.split("/")[0]!))).toBe(true);
  });

  it("the collector's Prometheus exporter keeps the conventional suffixes (counters end in _total, as on the services' own /metrics)", () => {
    expect((collector.exporters.prometheus as { add_metric_suffixes?: boolean } | null)?.add_metric_suffixes).not.toBe(false);
  });

  it("every component a pipeline names is defined, and traces are scrubbed of secret-looking attributes", () => {
    for (const [name, pipeline] of Object.entries(collector.service.pipelines)) {
      for (const receiver of pipeline.receivers) expect(collector.receivers, `${name} receiver ${receiver}`).toHaveProperty([receiver]);
      for (const processor of pipeline.processors ?? []) expect(collector.processors ?? {}, `${name} processor ${processor}`).toHaveProperty([processor]);
      for (const exporter of pipeline.exporters) expect(collector.exporters, `${name} exporter ${exporter}`).toHaveProperty([exporter]);
    }
    for (const extension of collector.service.extensions ?? []) expect(collector.extensions ?? {}, extension).toHaveProperty([extension]);
    expect(collector.service.pipelines.traces?.processors).toContain("attributes/scrub");
    const scrub = JSON.stringify(collector.processors?.["attributes/scrub"]);
    for (const word of ["password", "passphrase", "secret", "authorization", "token"]) expect(scrub).toContain(word);
  });

  it("Prometheus scrapes the collector's exporter port and every service's /metrics port", () => {
    const exporterPort = /:(\d+)$/.exec(collector.exporters.prometheus?.endpoint ?? "")?.[1];
    const targets = prometheus.scrape_configs.flatMap((c) => (c.static_configs ?? []).flatMap((s) => s.targets));
    expect(targets).toContain(`otel-collector:${exporterPort}`);
    const services = prometheus.scrape_configs.find((c) => c.job_name === "transporter-services");
    const scraped = [
      ...(services?.static_configs ?? []).flatMap((s) => s.targets),
      ...(services?.dns_sd_configs ?? []).flatMap((d) => d.names.map((name) => `${name}:${d.port}`)),
    ];
    expect(scraped.sort()).toEqual(["deliverer", "encryptor", "fetcher", "gateway", "scheduler", "transformer"].map((s) => `${s}:9464`));
  });

  it("scrapes each replica of a replicated service separately (DNS A records), never one name that resolves to a different replica per scrape", () => {
    const replicated = Object.entries(compose.services).filter(([, s]) => (s.deploy?.replicas ?? 1) > 1).map(([name]) => name).sort();
    expect(replicated).toEqual(["deliverer", "fetcher"]);
    const services = prometheus.scrape_configs.find((c) => c.job_name === "transporter-services")!;
    const staticTargets = (services.static_configs ?? []).flatMap((s) => s.targets);
    for (const name of replicated) {
      expect(staticTargets, name).not.toContain(`${name}:9464`);
      const sd = (services.dns_sd_configs ?? []).filter((d) => d.names.includes(name));
      expect(sd, `${name}: one dns_sd_configs entry`).toHaveLength(1);
      expect(sd[0]).toMatchObject({ names: [name], type: "A", port: 9464 });
    }
  });
});

describe("the Grafana dashboard", () => {
  const targets = dashboardTargets(dashboard);
  const panels = dashboard.panels.filter((p) => p.type !== "row");

  it("parses and has the operators' panels: runs by status, throughput, stage latency percentiles, queue depth, scheduler lag, failures by reason", () => {
    expect(dashboard.uid).toBeTruthy();
    const titles = panels.map((p) => p.title);
    for (const title of ["Runs by status", "Bytes delivered", "Records fetched", "Stage latency percentiles", "Queue depth", "Scheduler lag", "Source API requests", "Source 429s (rate limited)", "Failures by reason"]) {
      expect(titles).toContain(title);
    }
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it("every panel queries the provisioned Prometheus data source with a PromQL expression", () => {
    const prometheusUid = datasources.datasources.find((d) => d.type === "prometheus")?.uid;
    expect(prometheusUid).toBeTruthy();
    for (const panel of panels) {
      expect(panel.datasource?.uid, panel.title).toBe(prometheusUid);
      expect(panel.targets?.length, panel.title).toBeGreaterThan(0);
      for (const target of panel.targets ?? []) {
        expect(target.expr, `${panel.title} ${target.refId}`).toBeTruthy();
        expect(metricNamesInPromQL(target.expr!).length, `${panel.title}: ${target.expr}`).toBeGreaterThan(0);
      }
    }
  });

  it("panels sit on the 24-column grid without overlapping", () => {
    const cells = new Map<string, string>();
    const problems: string[] = [];
    for (const panel of dashboard.panels) {
      const { x, y, w, h } = panel.gridPos;
      if (x < 0 || w < 1 || h < 1 || x + w > 24) problems.push(`${panel.title}: outside the grid`);
      for (let i = x; i < x + w; i++) {
        for (let j = y; j < y + h; j++) {
          const other = cells.get(`${i},${j}`);
          if (other) problems.push(`${panel.title} overlaps ${other}`);
          cells.set(`${i},${j}`, panel.title);
        }
      }
    }
    expect([...new Set(problems)]).toEqual([]);
  });

  it("queries the metric names the services' Prometheus endpoints expose (no collector unit suffixes)", () => {
    const names = new Set(targets.flatMap((t) => metricNamesInPromQL(t.expr)));
    expect([...names].sort()).toEqual([
      "scheduler_lag_bucket",
      "scheduler_runs_created_total",
      "transporter_delivered_bytes_total",
      "transporter_queue_jobs",
      "transporter_records_processed_total",
      "transporter_runs_failed_total",
      "transporter_runs_started_total",
      "transporter_runs_succeeded_total",
      "transporter_source_rate_limited_total",
      "transporter_source_requests_total",
      "transporter_stage_duration_bucket",
      "transporter_stage_duration_count",
      "transporter_stage_duration_sum",
      "transporter_stage_retries_total",
    ]);
  });
});

describe("reading PromQL, the exposition format and captured text (the tools the other checks rely on)", () => {
  it("finds a known secret, or any line of a private key's secret material, wherever it appears", () => {
    const publicKey = ["-----BEGIN PGP PUBLIC KEY BLOCK-----", "", "xjMEZabcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUV", "-----END PGP PUBLIC KEY BLOCK-----"].join("\n");
    const privateKey = ["-----BEGIN PGP PRIVATE KEY BLOCK-----", "", "xjMEZabcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUV", "xYYEZsecretsecretsecretsecretsecretsecretsecret0123456789+/", "=AbCd", "-----END PGP PRIVATE KEY BLOCK-----"].join("\n");
    const fragments = privateKeyFragments(privateKey, publicKey);
    expect(fragments).toEqual([privateKey, "xYYEZsecretsecretsecretsecretsecretsecretsecret0123456789+/"]);
    const texts = [
      { where: "span a", text: '{"note":"xYYEZsecretsecretsecretsecretsecretsecretsecret0123456789+/"}' },
      { where: "log 1", text: '{"msg":"token tk0123456789abcdef used"}' },
      { where: "log 2", text: '{"msg":"nothing to see"}' },
    ];
    expect(findSecrets(texts, { "private key": fragments, "OAuth token": "tk0123456789abcdef", passphrase: "not-present-anywhere" })).toEqual(["span a: private key", "log 1: OAuth token"]);
    expect(() => findSecrets(texts, { short: "abc" })).toThrow(/too short/);
  });


  it("finds metric names in PromQL, not functions, labels, variables, durations or keywords", () => {
    expect(metricNamesInPromQL('histogram_quantile(0.95, sum by (le, stage) (rate(a_bucket{job="$job", stage=~"fetch|x_total"}[$__rate_interval])))')).toEqual(["a_bucket"]);
    expect(metricNamesInPromQL("sum(rate(b_total[5m])) by (reason) / ignoring(reason) group_left sum(rate(c_total[5m] offset 1h)) * 1e3")).toEqual(["b_total", "c_total"]);
    expect(metricNamesInPromQL("max by (queue) (d) and on (queue) e > bool 0")).toEqual(["d", "e"]);
    expect(dashboardTargets({ templating: { list: [{ name: "v", type: "query", query: { query: 'label_values(f_total{job="$job"}, report)' } }] } }).map((t) => metricNamesInPromQL(t.expr))).toEqual([["f_total"]]);
  });

  it("parses samples with labels, escapes, special values and timestamps, and ties them to their families", () => {
    const parsed = parseExposition(
      [
        "# HELP runs_total Runs, \\n with a newline",
        "# TYPE runs_total counter",
        "# UNIT runs_total {run}",
        'runs_total{reason="a \\"quoted\\" \\\\ value",stage="fetch",} 3 1700000000000',
        "# TYPE lag histogram",
        'lag_bucket{le="1"} 1',
        'lag_bucket{le="+Inf"} 2',
        "lag_sum 3.5e0",
        "lag_count 2",
        "# a comment",
        "up NaN",
        "",
      ].join("\n"),
    );
    expect(parsed.families.get("runs_total")).toMatchObject({ type: "counter", unit: "{run}" });
    expect(parsed.samples[0]).toEqual({ name: "runs_total", family: "runs_total", labels: { reason: 'a "quoted" \\ value', stage: "fetch" }, value: 3, timestamp: 1700000000000 });
    expect(valueOf(parsed, "lag_bucket", { le: "+Inf" })).toBe(2);
    expect(parsed.samples.find((s) => s.name === "lag_sum")?.family).toBe("lag");
    expect(parsed.samples.find((s) => s.name === "up")?.family).toBeUndefined();
    expect(histogramProblems(parsed, "lag")).toEqual([]);
  });

  it("rejects malformed exposition lines and inconsistent histograms", () => {
    expect(() => parseExposition("bad-name 1")).toThrow(/line 1/);
    expect(() => parseExposition('x{a="1" 1')).toThrow(/line 1/);
    expect(() => parseExposition("x{a=1} 1")).toThrow(/not quoted/);
    expect(() => parseExposition("x one")).toThrow(/not a sample value/);
    expect(() => parseExposition("# TYPE x wobble")).toThrow(/unknown type/);
    expect(() => parseExposition('x{a="\\q"} 1')).toThrow(/bad escape/);
    const broken = parseExposition(["# TYPE h histogram", 'h_bucket{le="1"} 3', 'h_bucket{le="+Inf"} 2', "h_count 2"].join("\n"));
    expect(histogramProblems(broken, "h")).toEqual([expect.stringMatching(/decreases/)]);
  });
});
