/**
 * A strict reader of the Prometheus text exposition format (version 0.0.4, plus the `# UNIT`
 * line OpenTelemetry's exporter writes): every line must be a comment, metadata or a valid
 * sample, or parsing throws with the line number.
 */

export type MetricType = "counter" | "gauge" | "histogram" | "summary" | "untyped";

export interface MetricFamily {
  name: string;
  type: MetricType;
  help?: string;
  unit?: string;
}

export interface Sample {
  /** The sample's own name (`x_bucket`, `x_total`…). */
  name: string;
  /** The family it belongs to (`x` for `x_bucket`), when one was declared with # TYPE. */
  family?: string;
  labels: Record<string, string>;
  value: number;
  timestamp?: number;
}

export interface Exposition {
  families: Map<string, MetricFamily>;
  samples: Sample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set<MetricType>(["counter", "gauge", "histogram", "summary", "untyped"]);
const SUFFIXES: Partial<Record<MetricType, string[]>> = { histogram: ["_bucket", "_sum", "_count"], summary: ["_sum", "_count"] };

function parseValue(text: string, line: number): number {
  if (text === "+Inf" || text === "Inf") return Infinity;
  if (text === "-Inf") return -Infinity;
  if (text === "NaN") return NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) throw new Error(`line ${line}: "${text}" is not a sample value`);
  return Number(text);
}

function unescapeLabel(value: string): string {
  return value.replace(/\\(["\\n])/g, (_, c: string) => (c === "n" ? "\n" : c));
}

/** `{a="x",b="y\"z"}` starting at `text[start] === "{"` → labels and the index after `}`. */
function parseLabels(text: string, start: number, line: number): { labels: Record<string, string>; end: number } {
  const labels: Record<string, string> = {};
  let i = start + 1;
  for (;;) {
    while (text[i] === " ") i++;
    if (text[i] === "}") return { labels, end: i + 1 };
    const eq = text.indexOf("=", i);
    if (eq < 0) throw new Error(`line ${line}: label without "="`);
    const name = text.slice(i, eq).trim();
    if (!LABEL_NAME.test(name)) throw new Error(`line ${line}: bad label name "${name}"`);
    if (text[eq + 1] !== '"') throw new Error(`line ${line}: label ${name} value is not quoted`);
    let j = eq + 2;
    let raw = "";
    for (;;) {
      const c = text[j];
      if (c === undefined) throw new Error(`line ${line}: unterminated value of label ${name}`);
      if (c === "\\") {
        const next = text[j + 1];
        if (next !== "\\" && next !== '"' && next !== "n") throw new Error(`line ${line}: bad escape \\${next ?? ""} in label ${name}`);
        raw += c + next;
        j += 2;
        continue;
      }
      if (c === '"') break;
      raw += c;
      j++;
    }
    if (name in labels) throw new Error(`line ${line}: label ${name} repeated`);
    labels[name] = unescapeLabel(raw);
    i = j + 1;
    while (text[i] === " ") i++;
    if (text[i] === ",") i++;
    else if (text[i] !== "}") throw new Error(`line ${line}: expected "," or "}" after label ${name}`);
  }
}

export function parseExposition(text: string): Exposition {
  const families = new Map<string, MetricFamily>();
  const samples: Sample[] = [];
  const lines = text.split("\n");
  lines.forEach((raw, index) => {
    const line = index + 1;
    const content = raw.trimEnd();
    if (content.trim() === "") return;
    if (content.startsWith("#")) {
      const meta = /^#\s+(HELP|TYPE|UNIT)\s+(\S+)(?:\s+(.*))?$/.exec(content);
      if (!meta) return; // a plain comment
      const [, kind, name = "", rest = ""] = meta;
      if (!METRIC_NAME.test(name)) throw new Error(`line ${line}: bad metric name "${name}" in # ${kind}`);
      const family = families.get(name) ?? { name, type: "untyped" as MetricType };
      if (kind === "TYPE") {
        if (!TYPES.has(rest as MetricType)) throw new Error(`line ${line}: unknown type "${rest}"`);
        if (samples.some((s) => s.family === name)) throw new Error(`line ${line}: # TYPE ${name} after its samples`);
        family.type = rest as MetricType;
      } else if (kind === "HELP") family.help = rest;
      else family.unit = rest;
      families.set(name, family);
      return;
    }
    const nameMatch = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(content);
    if (!nameMatch) throw new Error(`line ${line}: not a sample: ${content}`);
    const name = nameMatch[0];
    let rest = content.slice(name.length);
    let labels: Record<string, string> = {};
    if (rest.startsWith("{")) {
      const parsed = parseLabels(rest, 0, line);
      labels = parsed.labels;
      rest = rest.slice(parsed.end);
    }
    const fields = rest.trim().split(/\s+/);
    if (fields.length < 1 || fields.length > 2 || fields[0] === "") throw new Error(`line ${line}: expected "value [timestamp]" after ${name}`);
    const value = parseValue(fields[0]!, line);
    const timestamp = fields[1] === undefined ? undefined : Number(fields[1]);
    if (timestamp !== undefined && !Number.isInteger(timestamp)) throw new Error(`line ${line}: bad timestamp "${fields[1]}"`);
    let family: string | undefined;
    if (families.has(name)) family = name;
    else {
      for (const [familyName, declared] of families) {
        if ((SUFFIXES[declared.type] ?? []).some((suffix) => name === familyName + suffix)) family = familyName;
      }
    }
    const sample: Sample = { name, labels, value };
    if (family !== undefined) sample.family = family;
    if (timestamp !== undefined) sample.timestamp = timestamp;
    samples.push(sample);
  });
  return { families, samples };
}

/** The samples of one name whose labels include `match`. */
export function samplesOf(exposition: Exposition, name: string, match: Record<string, string> = {}): Sample[] {
  return exposition.samples.filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v));
}

/** The one sample of `name` matching `match`; throws when there is none or several. */
export function valueOf(exposition: Exposition, name: string, match: Record<string, string> = {}): number {
  const found = samplesOf(exposition, name, match);
  if (found.length !== 1) throw new Error(`${found.length} samples of ${name} match ${JSON.stringify(match)}: ${JSON.stringify(exposition.samples.filter((s) => s.name === name))}`);
  return found[0]!.value;
}

/**
 * Histogram consistency: per series, buckets are cumulative (never decreasing as `le` grows),
 * the `+Inf` bucket exists and equals `_count`. Returns the problems found.
 */
export function histogramProblems(exposition: Exposition, family: string): string[] {
  const problems: string[] = [];
  const series = new Map<string, { buckets: Array<[number, number]>; count?: number }>();
  const keyOf = (labels: Record<string, string>) => JSON.stringify(Object.entries(labels).filter(([k]) => k !== "le").sort(([a], [b]) => a.localeCompare(b)));
  for (const sample of exposition.samples) {
    if (sample.family !== family) continue;
    const key = keyOf(sample.labels);
    const entry = series.get(key) ?? { buckets: [] };
    if (sample.name === `${family}_bucket`) {
      const le = sample.labels.le;
      if (le === undefined) problems.push(`${key}: bucket without le`);
      else entry.buckets.push([le === "+Inf" ? Infinity : Number(le), sample.value]);
    } else if (sample.name === `${family}_count`) entry.count = sample.value;
    series.set(key, entry);
  }
  if (series.size === 0) problems.push(`${family}: no series`);
  for (const [key, { buckets, count }] of series) {
    buckets.sort(([a], [b]) => a - b);
    for (let i = 1; i < buckets.length; i++) if (buckets[i]![1] < buckets[i - 1]![1]) problems.push(`${key}: bucket le=${buckets[i]![0]} decreases`);
    const inf = buckets.find(([le]) => le === Infinity);
    if (!inf) problems.push(`${key}: no +Inf bucket`);
    else if (inf[1] !== count) problems.push(`${key}: +Inf bucket ${inf[1]} ≠ _count ${count}`);
  }
  return problems;
}
