/**
 * Metric names referenced by PromQL expressions, and the expressions of a Grafana dashboard.
 * Enough PromQL to read dashboards: strings, label matchers, ranges, grouping clauses and
 * Grafana variables are removed; what remains that is an identifier not followed by "(" and
 * not a keyword is a metric name.
 */

const KEYWORDS = new Set(["by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset", "inf", "nan"]);

export function metricNamesInPromQL(expr: string): string[] {
  let s = expr;
  s = s.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, " ");
  s = s.replace(/\{[^}]*\}/g, " ");
  s = s.replace(/\[[^\]]*\]/g, " ");
  s = s.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, " ");
  s = s.replace(/\boffset\s+-?[0-9a-z$_]+/g, " ");
  s = s.replace(/\$\{[^}]*\}|\$[A-Za-z_]\w*/g, " ");
  const names = new Set<string>();
  for (const match of s.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*/g)) {
    const name = match[0];
    const index = match.index ?? 0;
    const before = s[index - 1] ?? " ";
    if (/[0-9.]/.test(before)) continue; // the exponent of a number such as 1e3
    if (/^\s*\(/.test(s.slice(index + name.length))) continue; // a function or an aggregation
    if (KEYWORDS.has(name.toLowerCase())) continue;
    names.add(name);
  }
  return [...names].sort();
}

export interface DashboardTarget {
  panel: string;
  expr: string;
}

interface PanelLike {
  title?: string;
  targets?: Array<{ expr?: string }>;
  panels?: PanelLike[];
}

/** Every PromQL expression of a dashboard's panels (rows included) and of its query variables. */
export function dashboardTargets(dashboard: { panels?: PanelLike[]; templating?: { list?: Array<{ name?: string; type?: string; query?: unknown; definition?: string }> } }): DashboardTarget[] {
  const out: DashboardTarget[] = [];
  const walk = (panels: PanelLike[] | undefined) => {
    for (const panel of panels ?? []) {
      for (const target of panel.targets ?? []) if (target.expr) out.push({ panel: panel.title ?? "(untitled)", expr: target.expr });
      walk(panel.panels);
    }
  };
  walk(dashboard.panels);
  for (const variable of dashboard.templating?.list ?? []) {
    if (variable.type !== "query") continue;
    const query = typeof variable.query === "string" ? variable.query : ((variable.query as { query?: string } | undefined)?.query ?? variable.definition ?? "");
    // label_values(metric, label) and query_result(expr) name metrics too.
    const inner = /^(?:label_values|query_result)\((.*)\)$/s.exec(query.trim())?.[1] ?? query;
    const metric = /^label_values\(/.test(query.trim()) ? inner.split(",").slice(0, -1).join(",") : inner;
    if (metric.trim()) out.push({ panel: `variable ${variable.name ?? ""}`, expr: metric });
  }
  return out;
}
