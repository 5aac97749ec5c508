import { existsSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { envSchema } from "@transporter/config";

interface ComposeService {
  image?: string;
  command?: string[] | string;
  stop_grace_period?: string;
  entrypoint?: string[] | string;
  environment?: Record<string, string>;
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] | string };
  restart?: string;
  deploy?: { replicas?: number };
}

interface K8sDoc {
  kind: string;
  metadata: { name: string };
  spec: any;
  data?: Record<string, string>;
  stringData?: Record<string, string>;
}

const k8sDocs = async (file: string): Promise<K8sDoc[]> => {
  const { parseAllDocuments } = await import("yaml");
  return parseAllDocuments(readFileSync(file, "utf8")).map((d) => d.toJS() as K8sDoc).filter(Boolean);
};

/**
 * The command of `npm run serve:<name>` (a service, or `db:migrate`, run from the compiled
 * build) as a container runs it: the script's words after its `exec` (the script execs node so
 * that npm's shell hands on signals), checked to start node on compiled JavaScript.
 */
function nodeCommandOf(scripts: Record<string, string>, name: string): string[] {
  const script = scripts[`serve:${name}`];
  expect(script, `package.json script serve:${name}`).toMatch(/^exec node --conditions=compiled \S+\/dist\/\S+\.js$/);
  return script!.replace(/^exec /, "").split(" ");
}

/** The comment lines a YAML file starts with (its header). */
const header = (file: string) => (/^(?:#.*\n)+/.exec(readFileSync(file, "utf8"))?.[0] ?? "");

// Docker does not run on our machines: the compose file and manifests are checked by parsing.
describe("deployment files", () => {
  const compose = parse(readFileSync("docker-compose.yml", "utf8"), { merge: true }) as { services: Record<string, ComposeService> };

  it("docker-compose.yml parses and runs every service from the one image", () => {
    for (const name of ["postgres", "redis", "gateway", "scheduler", "fetcher", "transformer", "encryptor", "deliverer", "migrate"]) {
      expect(compose.services[name], name).toBeDefined();
    }
    const scripts = JSON.parse(readFileSync("package.json", "utf8")).scripts as Record<string, string>;
    for (const name of ["gateway", "scheduler", "fetcher", "transformer", "encryptor", "deliverer"]) {
      const service = compose.services[name]!;
      expect(service.image).toBe("transporter:latest");
      // Node itself, as `npm run serve:<name>` runs it (npm's shell would not pass SIGTERM on).
      expect(service.command).toEqual(nodeCommandOf(scripts, name));
      expect(service.stop_grace_period, `${name} stop_grace_period`).toMatch(/^(4[0-9]|[5-9][0-9])s$/);
    }
    expect(compose.services.migrate!.command).toEqual(nodeCommandOf(scripts, "db:migrate"));
  });

  it("every serve:<name> script runs the compiled form of a source file that exists", () => {
    const scripts = JSON.parse(readFileSync("package.json", "utf8")).scripts as Record<string, string>;
    const served = Object.keys(scripts).filter((name) => name.startsWith("serve:"));
    expect(served.length).toBeGreaterThanOrEqual(7);
    for (const name of served) {
      const file = nodeCommandOf(scripts, name.slice("serve:".length)).at(-1)!;
      expect(existsSync(file.replace("/dist/", "/src/").replace(/\.js$/, ".ts")), `${name}: the source of ${file}`).toBe(true);
    }
  });

  it("sets only environment variables the config schema knows (and Node's own NODE_OPTIONS)", () => {
    const known = new Set([...Object.keys(envSchema.shape), "NODE_OPTIONS"]);
    for (const [name, service] of Object.entries(compose.services)) {
      if (!service.image?.startsWith("transporter")) continue;
      for (const variable of Object.keys(service.environment ?? {})) expect(known.has(variable), `${name}: ${variable}`).toBe(true);
    }
  });

  it("creates the MinIO buckets the services use (minio-init, after MinIO is healthy) before any service starts", () => {
    const minio = compose.services.minio!;
    expect(minio.healthcheck?.test, "minio healthcheck").toBeDefined();
    const init = compose.services["minio-init"];
    expect(init, "minio-init service").toBeDefined();
    expect(init!.image).toMatch(/^minio\/mc(:|$)/);
    expect(init!.depends_on?.minio?.condition).toBe("service_healthy");
    expect(init!.restart ?? "no").toBe("no");
    const script = [init!.entrypoint, init!.command].flat().filter(Boolean).join(" ");
    const alias = /mc alias set (\S+) (\S+) (\S+) (\S+)/.exec(script);
    expect(alias, "mc alias set <alias> <url> <user> <password>").not.toBeNull();
    const [, name, url, user, password] = alias!;
    expect(url).toBe("http://minio:9000");
    expect(user).toBe((minio.environment as Record<string, string>).MINIO_ROOT_USER);
    expect(password).toBe((minio.environment as Record<string, string>).MINIO_ROOT_PASSWORD);
    const made = new Set<string>();
    for (const match of script.matchAll(/mc mb ((?:(?:-p|--ignore-existing) )+)((?:[^\s&;|]+ ?)+)/g)) {
      for (const target of match[2]!.trim().split(/\s+/)) made.add(target);
    }
    const app = Object.entries(compose.services).filter(([, s]) => s.image?.startsWith("transporter") && [s.command].flat().join(" ").startsWith("node --conditions=compiled services/"));
    expect(app.length).toBeGreaterThanOrEqual(6);
    for (const [service, definition] of app) {
      for (const variable of ["STAGING_S3_BUCKET", "MANAGED_S3_BUCKET"]) {
        const bucket = definition.environment?.[variable];
        if (bucket) expect(made.has(`${name}/${bucket}`), `${service}: ${variable}=${bucket} is created with mc mb --ignore-existing`).toBe(true);
      }
      expect(definition.depends_on?.["minio-init"]?.condition, `${service} waits for minio-init`).toBe("service_completed_successfully");
    }
  });

  it("the Dockerfile builds from the lockfile, compiles, drops the dev tools and runs node itself under tini as a non-root user", () => {
    const dockerfile = readFileSync("deploy/Dockerfile", "utf8");
    expect(dockerfile).toMatch(/npm ci && npm run build && npm prune --omit=dev/);
    // What runs TypeScript from source is a dev tool, pruned from the image.
    const manifest = JSON.parse(readFileSync("package.json", "utf8")) as { dependencies?: Record<string, string>; devDependencies: Record<string, string> };
    for (const tool of ["tsx", "typescript", "turbo"]) expect(manifest.dependencies?.[tool], tool).toBeUndefined();
    expect(dockerfile).toMatch(/^USER transporter$/m);
    expect(dockerfile).toMatch(/^ENTRYPOINT \["\/usr\/bin\/tini", "--"\]$/m);
    const scripts = JSON.parse(readFileSync("package.json", "utf8")).scripts as Record<string, string>;
    expect(dockerfile).toContain(`CMD ${JSON.stringify(nodeCommandOf(scripts, "gateway")).replaceAll(",", ", ")}`);
    // The build context leaves out what the image builds itself (dependencies) or never needs (history).
    const ignored = readFileSync(".dockerignore", "utf8").split("\n").map((line) => line.trim());
    for (const entry of [".git", "node_modules", "**/node_modules", "**/dist"]) expect(ignored, `.dockerignore: ${entry}`).toContain(entry);
  });
});

describe("Kubernetes manifests", () => {
  it("parse, run every service from the one image, and autoscale every worker", async () => {
    const docs = await k8sDocs("deploy/k8s/transporter.yaml");
    const deployments = docs.filter((d) => d.kind === "Deployment");
    const scripts = JSON.parse(readFileSync("package.json", "utf8")).scripts as Record<string, string>;
    expect(deployments.map((d) => d.metadata.name).sort()).toEqual(["deliverer", "encryptor", "fetcher", "gateway", "scheduler", "transformer"].map((n) => `transporter-${n}`));
    for (const d of deployments) {
      const container = d.spec.template.spec.containers[0];
      expect(container.image).toBe("transporter:latest");
      expect(container.command).toEqual(["/usr/bin/tini", "--", ...nodeCommandOf(scripts, d.metadata.name.replace("transporter-", ""))]);
    }
    const autoscaled = docs.filter((d) => d.kind === "HorizontalPodAutoscaler").map((d) => d.spec.scaleTargetRef.name).sort();
    expect(autoscaled).toEqual(["deliverer", "encryptor", "fetcher", "gateway", "transformer"].map((n) => `transporter-${n}`));
    const known = new Set(Object.keys(envSchema.shape));
    for (const file of ["deploy/k8s/config.yaml", "deploy/k8s/secret.example.yaml"]) {
      for (const doc of await k8sDocs(file)) for (const name of Object.keys(doc.data ?? doc.stringData ?? {})) expect(known.has(name), `${file}: ${name}`).toBe(true);
    }
  });

  it("the worker autoscalers' external metric is one value per queue and state (max over the gateway pods reporting it), never their sum", async () => {
    const external = (await k8sDocs("deploy/k8s/transporter.yaml"))
      .filter((d) => d.kind === "HorizontalPodAutoscaler")
      .flatMap((d) => (d.spec.metrics as Array<{ type: string; external?: { metric: { name: string } } }>).filter((m) => m.type === "External").map((m) => m.external!.metric.name));
    expect(new Set(external)).toEqual(new Set(["transporter_queue_jobs"]));
    const [adapter] = await k8sDocs("deploy/k8s/prometheus-adapter.yaml");
    const rules = parse(adapter!.data!["config.yaml"] as string) as { externalRules: Array<{ name: { as: string }; metricsQuery: string }> };
    const rule = rules.externalRules.find((r) => r.name.as === "transporter_queue_jobs");
    expect(rule?.metricsQuery).toMatch(/^max by \(queue, state\) \(<<\.Series>>\{<<\.LabelMatchers>>\}\)$/);
  });

  it("config.yaml holds only the ConfigMap; the example Secret lives in its own, clearly named file", async () => {
    const config = await k8sDocs("deploy/k8s/config.yaml");
    expect(config.map((d) => d.kind)).toEqual(["ConfigMap"]);
    expect(config[0]!.metadata.name).toBe("transporter-config");
    const example = await k8sDocs("deploy/k8s/secret.example.yaml");
    expect(example.map((d) => `${d.kind}/${d.metadata.name}`)).toEqual(["Secret/transporter-secrets"]);
    // Every value is a placeholder: applying the example by mistake cannot pass for a working secret.
    for (const [name, value] of Object.entries(example[0]!.stringData ?? {})) {
      if (name !== "REDIS_URL") expect(value, name).toMatch(/CHANGE_ME/);
    }
    expect(header("deploy/k8s/secret.example.yaml")).toMatch(/example/i);
    expect(header("deploy/k8s/config.yaml")).toMatch(/secret\.example\.yaml/);
    expect(header("deploy/k8s/transporter.yaml")).toMatch(/secret\.example\.yaml/);
    expect(readFileSync("docs/OPERATIONS.md", "utf8")).toMatch(/secret\.example\.yaml/);
  });

  it("a Job migrates the database with the services' image and environment, before the rollout", async () => {
    expect(existsSync("deploy/k8s/migrate.yaml"), "deploy/k8s/migrate.yaml").toBe(true);
    const jobs = (await k8sDocs("deploy/k8s/migrate.yaml")).filter((d) => d.kind === "Job");
    expect(jobs.map((j) => j.metadata.name)).toEqual(["transporter-migrate"]);
    const job = jobs[0]!;
    const pod = job.spec.template.spec;
    expect(["Never", "OnFailure"]).toContain(pod.restartPolicy);
    expect(pod.securityContext?.runAsNonRoot).toBe(true);
    expect(pod.containers).toHaveLength(1);
    const container = pod.containers[0];
    expect(container.image).toBe("transporter:latest");
    const scripts = JSON.parse(readFileSync("package.json", "utf8")).scripts as Record<string, string>;
    expect(container.command).toEqual(["/usr/bin/tini", "--", ...nodeCommandOf(scripts, "db:migrate")]);
    // The same environment as the services (ConfigMap and Secret), so it migrates the database they use.
    const gateway = (await k8sDocs("deploy/k8s/transporter.yaml")).find((d) => d.kind === "Deployment" && d.metadata.name === "transporter-gateway")!;
    expect(container.envFrom).toEqual(gateway.spec.template.spec.containers[0].envFrom);
    // Runs exactly once per rollout: no Deployment migrates on start, and the Job is not retried forever.
    expect(job.spec.backoffLimit).toBeGreaterThanOrEqual(0);
    expect(job.spec.backoffLimit).toBeLessThanOrEqual(5);
    for (const d of (await k8sDocs("deploy/k8s/transporter.yaml")).filter((doc) => doc.kind === "Deployment")) {
      const env = (d.spec.template.spec.containers[0].env ?? []) as Array<{ name: string }>;
      expect(env.map((e) => e.name), d.metadata.name).not.toContain("MIGRATE_ON_START");
    }
    for (const doc of await k8sDocs("deploy/k8s/config.yaml")) expect(Object.keys(doc.data ?? {})).not.toContain("MIGRATE_ON_START");
    // The order is written where an operator applying the manifests reads it.
    expect(header("deploy/k8s/transporter.yaml")).toMatch(/migrate\.yaml/);
    expect(header("deploy/k8s/transporter.yaml")).toMatch(/kubectl wait --for=condition=complete job\/transporter-migrate/);
    expect(header("deploy/k8s/migrate.yaml")).toMatch(/before/i);
    const operations = readFileSync("docs/OPERATIONS.md", "utf8");
    expect(operations).toMatch(/deploy\/k8s\/migrate\.yaml/);
    expect(operations).toMatch(/kubectl wait --for=condition=complete job\/transporter-migrate/);
  });
});
