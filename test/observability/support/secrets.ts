import type { installTestTelemetry } from "@transporter/telemetry/testing";

export type CapturedSpan = ReturnType<ReturnType<typeof installTestTelemetry>["spans"]["getFinishedSpans"]>[number];

/** Everything a span carries that could hold a secret, as text: name, attributes, events, status, links, resource. */
export function spanTexts(span: CapturedSpan): string[] {
  const texts = [span.name, JSON.stringify(span.attributes), span.status.message ?? ""];
  for (const event of span.events) texts.push(event.name, JSON.stringify(event.attributes ?? {}));
  for (const link of span.links) texts.push(JSON.stringify(link.attributes ?? {}));
  texts.push(JSON.stringify(span.resource.attributes));
  return texts;
}

/**
 * The private key's secret material as it could leak: the whole armored block and each of its
 * base64 lines, leaving out lines that also occur in the public key (those are not secret).
 */
export function privateKeyFragments(privateKey: string, publicKey = ""): string[] {
  const publicLines = new Set(publicKey.split("\n").map((l) => l.trim()));
  const lines = privateKey
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l.length >= 40 && /^[A-Za-z0-9+/=]+$/.test(l) && !publicLines.has(l));
  return [privateKey.trim(), ...lines];
}

/** `where: name` for each known secret found in any of the texts; secrets shorter than 8 characters are refused. */
export function findSecrets(texts: Array<{ where: string; text: string }>, secrets: Record<string, string | string[]>): string[] {
  const found: string[] = [];
  for (const [name, value] of Object.entries(secrets)) {
    const needles = Array.isArray(value) ? value : [value];
    for (const needle of needles) {
      if (needle.length < 8) throw new Error(`secret ${name} is too short to search for reliably`);
      for (const { where, text } of texts) if (text.includes(needle)) found.push(`${where}: ${name}`);
    }
  }
  return [...new Set(found)];
}
