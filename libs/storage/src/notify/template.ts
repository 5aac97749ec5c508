import { TEMPLATE_PLACEHOLDERS } from "./summary.js";

const PLACEHOLDER = /\{\{\s*([A-Za-z][A-Za-z0-9]*)\s*\}\}/g;

/** Replaces each known `{{name}}` with its value; unknown ones stay as written so a typo shows. */
export function renderTemplate(template: string, values: Record<string, string>): string {
  return template.replace(PLACEHOLDER, (whole, name: string) => (Object.hasOwn(values, name) ? (values[name] ?? "") : whole));
}

/** Placeholder names a template uses that no summary provides (for validating task settings). */
export function unknownPlaceholders(template: string): string[] {
  const unknown = new Set<string>();
  for (const match of template.matchAll(PLACEHOLDER)) {
    const name = match[1] ?? "";
    if (!TEMPLATE_PLACEHOLDERS.includes(name)) unknown.add(name);
  }
  return [...unknown];
}
