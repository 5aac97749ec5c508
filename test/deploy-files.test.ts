import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { envSchema } from "@transporter/config";

// Docker does not run on our machines: the compose file and manifests are checked by parsing.
describe("deployment files", () => {
  const compose = parse(readFileSync("docker-compose.yml", "utf8"), { merge: true }) as { services: Record<string, { command?: string[]; environment?: Record<string, string>; image?: string }> };

  it("docker-compose.yml parses and runs every service from the one image", () => {
    for (const name of ["postgres", "redis", "gateway", "scheduler", "fetcher", "transformer", "encryptor", "deliverer", "migrate"]) {
      expect(compose.services[name], name).toBeDefined();
    }
    const scripts = JSON.parse(readFileSync("package.json", "utf8")).scripts as Record<string, string>;
    for (const name of ["gateway", "scheduler", "fetcher", "transformer", "encryptor", "deliverer"]) {
      const service = compose.services[name]!;
      expect(service.image).toBe("transporter:latest");
      expect(service.command).toEqual(["npm", "run", `start:${name}`]);
      expect(scripts[`start:${name}`], `package.json script start:${name}`).toBeDefined();
    }
  });

  it("sets only environment variables the config schema knows (and Node's own NODE_OPTIONS)", () => {
    const known = new Set([...Object.keys(envSchema.shape), "NODE_OPTIONS"]);
    for (const [name, service] of Object.entries(compose.services)) {
      if (!service.image?.startsWith("transporter")) continue;
      for (const variable of Object.keys(service.environment ?? {})) expect(known.has(variable), `${name}: ${variable}`).toBe(true);
    }
  });

  it("the Dockerfile builds from the lockfile and runs as a non-root user", () => {
    const dockerfile = readFileSync("deploy/Dockerfile", "utf8");
    expect(dockerfile).toMatch(/npm ci/);
    expect(dockerfile).toMatch(/^USER transporter$/m);
  });
});

describe("Kubernetes manifests", () => {
  it("parse, run every service from the one image, and autoscale every worker", async () => {
    const { parseAllDocuments } = await import("yaml");
    const docs = parseAllDocuments(readFileSync("deploy/k8s/transporter.yaml", "utf8")).map((d) => d.toJS() as { kind: string; metadata: { name: string }; spec: any });
    const deployments = docs.filter((d) => d.kind === "Deployment");
    expect(deployments.map((d) => d.metadata.name).sort()).toEqual(["deliverer", "encryptor", "fetcher", "gateway", "scheduler", "transformer"].map((n) => `transporter-${n}`));
    for (const d of deployments) {
      const container = d.spec.template.spec.containers[0];
      expect(container.image).toBe("transporter:latest");
      expect(container.command.join(" ")).toBe(`npm run start:${d.metadata.name.replace("transporter-", "")}`);
    }
    const autoscaled = docs.filter((d) => d.kind === "HorizontalPodAutoscaler").map((d) => d.spec.scaleTargetRef.name).sort();
    expect(autoscaled).toEqual(["deliverer", "encryptor", "fetcher", "gateway", "transformer"].map((n) => `transporter-${n}`));
    const known = new Set(Object.keys(envSchema.shape));
    const config = parseAllDocuments(readFileSync("deploy/k8s/config.yaml", "utf8")).map((d) => d.toJS() as { data?: Record<string, string>; stringData?: Record<string, string> });
    for (const doc of config) for (const name of Object.keys(doc.data ?? doc.stringData ?? {})) expect(known.has(name), name).toBe(true);
  });
});
