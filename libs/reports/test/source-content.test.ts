import { conversationsForWindow } from "@transporter/simulator";
import { describe, expect, it } from "vitest";
import { listReports, type ReportVersion } from "../src/index.js";

/**
 * A version's `sourceContent` is what the fetcher asks the platform for (besides `info`): a part
 * its mapper reads but does not list would arrive missing, and the column would be silently
 * empty in every file. These tests hold each mapper to its list.
 */

const FROM = Date.UTC(2026, 10, 20, 0, 0);
const TO = Date.UTC(2026, 10, 20, 6, 0);

/** Every documented part filled in, so a mapper that reads any of them shows it. */
function everyPart(record: Record<string, unknown>): Record<string, unknown> {
  return {
    transfers: [{ timeL: FROM + 1_000, targetSkillId: 5 }],
    conversationSurveys: [{ surveyType: "NPS", surveyData: [{ question: "Recommend us?", answer: "9" }] }],
    summary: { text: "asked about a refund" },
    sdes: { events: [{ sdeType: "PERSONAL_INFO" }] },
    coBrowseSessions: { coBrowseSessionsList: [] },
    ...record,
  };
}

/** The top-level keys read from `record` while `read` runs (gets, `in`, own-property checks, key listing). */
function partsRead(record: Record<string, unknown>, read: (r: unknown) => unknown): Set<string> {
  const touched = new Set<string>();
  const proxy = new Proxy(record, {
    get(target, key, receiver) {
      if (typeof key === "string") touched.add(key);
      return Reflect.get(target, key, receiver) as unknown;
    },
    has(target, key) {
      if (typeof key === "string") touched.add(key);
      return Reflect.has(target, key);
    },
    getOwnPropertyDescriptor(target, key) {
      if (typeof key === "string") touched.add(key);
      return Reflect.getOwnPropertyDescriptor(target, key);
    },
    ownKeys(target) {
      touched.add("*every key*");
      return Reflect.ownKeys(target);
    },
  });
  read(proxy);
  return touched;
}

const PARAM_VARIANTS: Record<string, unknown>[] = [{}, { includeTranscript: true }, { includeText: true }];

function parsedParamVariants(version: ReportVersion): unknown[] {
  return PARAM_VARIANTS.flatMap((p) => {
    const parsed = version.params.safeParse(p);
    return parsed.success ? [parsed.data] : [];
  });
}

const withContent = listReports().flatMap((definition) =>
  definition.versions.filter((v) => v.sourceContent !== undefined).map((version) => ({ definition, version })),
);
const records = [...conversationsForWindow("90412233", FROM, TO, "source-content", { perHour: 30 })].map(everyPart);

describe("sourceContent", () => {
  it("is declared by the conversation and message reports, and only for APIs that serve parts", () => {
    expect(withContent.map(({ definition, version }) => `${definition.id}@${version.version}`).sort()).toEqual([
      "messaging-conversations@1",
      "messaging-conversations@2",
      "messaging-messages@1",
    ]);
    for (const { definition } of withContent) expect(definition.source).toBe("messaging-interactions");
    // The raw report carries whole records: it must not narrow them.
    for (const v of listReports().find((r) => r.id === "messaging-conversations-raw")!.versions) expect(v.sourceContent).toBeUndefined();
  });

  it.each(withContent.map(({ definition, version }) => [`${definition.id}@${version.version}`, version] as const))(
    "%s: the mapper reads no part of a record outside info and its list",
    (_name, version) => {
      if (version.shape !== "rows") throw new Error("expected a rows version");
      const allowed = new Set(["info", ...version.sourceContent!]);
      expect(records.length).toBeGreaterThan(50);
      for (const params of parsedParamVariants(version)) {
        for (const record of records) {
          const read = partsRead(record, (r) => version.map(r, { params }));
          const outside = [...read].filter((k) => !allowed.has(k));
          expect(outside, `read beyond sourceContent with params ${JSON.stringify(params)}`).toEqual([]);
        }
      }
    },
  );

  it.each(withContent.map(({ definition, version }) => [`${definition.id}@${version.version}`, version] as const))(
    "%s: rows from the parts asked for equal rows from whole records",
    (_name, version) => {
      if (version.shape !== "rows") throw new Error("expected a rows version");
      const keep = ["info", ...version.sourceContent!];
      for (const params of parsedParamVariants(version)) {
        for (const record of records) {
          const partial = Object.fromEntries(Object.entries(record).filter(([k]) => keep.includes(k)));
          expect(version.map(partial, { params })).toEqual(version.map(record, { params }));
        }
      }
    },
  );
});
