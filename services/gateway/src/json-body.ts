import type { FastifyBodyParser, FastifyRequest } from "fastify";
import { badRequest, Problem } from "./problem.js";

const QUOTE = 0x22; // "
const BACKSLASH = 0x5c;
const OPEN_OBJECT = 0x7b; // {
const CLOSE_OBJECT = 0x7d; // }
const OPEN_ARRAY = 0x5b; // [
const CLOSE_ARRAY = 0x5d; // ]
const COMMA = 0x2c;

/** An object or array open at this point of the text, and which of its members is being read. */
interface Container {
  /** The keys seen so far; null for an array. */
  keys: Set<string> | null;
  /** The member being read: its key, or its index in an array. */
  member: string;
  /** In an object: the next string is a key (just after `{` or `,`). */
  expectKey: boolean;
  /** In an array: the index of the member being read. */
  index: number;
}

/**
 * The path (`["notifications", "webhookUrl"]`) of the first key that occurs twice in one object of
 * a JSON text JSON.parse accepted, or undefined. JSON.parse keeps the last of two equal keys and
 * says nothing, so `{"role":"admin","role":"viewer"}` would mean whatever came last; a reviver
 * sees only the result. One pass over the text without recursion: a deeply nested body cannot
 * exhaust the stack. Keys are compared as JSON.parse reads them (`"r\u006fle"` is `"role"`).
 */
export function duplicateKeyPath(text: string): string[] | undefined {
  const open: Container[] = [];
  const length = text.length;
  let i = 0;
  while (i < length) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      // The whole string: JSON.parse accepted the text, so it ends, at the first quote that an
      // even number of backslashes precedes.
      let end = text.indexOf('"', i + 1);
      for (;;) {
        let backslashes = 0;
        while (text.charCodeAt(end - 1 - backslashes) === BACKSLASH) backslashes += 1;
        if (backslashes % 2 === 0) break;
        end = text.indexOf('"', end + 1);
      }
      const top = open[open.length - 1];
      if (top?.keys && top.expectKey) {
        const raw = text.slice(i + 1, end);
        const key = raw.includes("\\") ? (JSON.parse(text.slice(i, end + 1)) as string) : raw;
        if (top.keys.has(key)) return [...open.slice(0, -1).map((container) => container.member), key];
        top.keys.add(key);
        top.member = key;
        top.expectKey = false;
      }
      i = end + 1;
      continue;
    }
    if (c === OPEN_OBJECT) open.push({ keys: new Set(), member: "", expectKey: true, index: 0 });
    else if (c === OPEN_ARRAY) open.push({ keys: null, member: "0", expectKey: false, index: 0 });
    else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) open.pop();
    else if (c === COMMA) {
      const top = open[open.length - 1]!;
      if (top.keys) top.expectKey = true;
      else top.member = String(++top.index);
    }
    i += 1;
  }
  return undefined;
}

/**
 * The charset a content-type header names (`application/json; charset="ISO-8859-1"` →
 * "iso-8859-1"), lower-cased and unquoted, or undefined when it names none.
 */
export function charsetOf(contentType: string | undefined): string | undefined {
  for (const parameter of (contentType ?? "").split(";").slice(1)) {
    const eq = parameter.indexOf("=");
    if (eq < 0 || parameter.slice(0, eq).trim().toLowerCase() !== "charset") continue;
    const value = parameter.slice(eq + 1).trim();
    return (value.startsWith('"') && value.endsWith('"') && value.length >= 2 ? value.slice(1, -1).replace(/\\(.)/g, "$1") : value).toLowerCase();
  }
  return undefined;
}

/** Whether a route's body schema takes no body at all (none, or one that accepts undefined). */
function takesNoBody(req: FastifyRequest): boolean {
  const schema = req.routeOptions.schema?.body as { safeParse?: (value: unknown) => { success: boolean } } | undefined;
  return schema === undefined || schema.safeParse?.(undefined).success === true;
}

/** Charset labels the body may carry: UTF-8's (WHATWG Encoding), and ASCII, which UTF-8 reads as written. */
const UTF8_LABELS = new Set(["utf-8", "utf8", "unicode-1-1-utf-8", "unicode11utf8", "unicode20utf8", "x-unicode20utf8"]);
const ASCII_LABELS = new Set(["us-ascii", "ascii"]);

type ParseDone = (error: Error | null, value?: unknown) => void;
type StringBodyParser = (req: FastifyRequest, body: string, done: ParseDone) => void;

/**
 * The JSON body parser: Fastify's own (`defaultParser`: empty and malformed bodies, `__proto__`
 * and `constructor.prototype` keys are refused as before), then a 400 naming a key given twice in
 * one object.
 */
export function jsonBodyParser(defaultParser: FastifyBodyParser<string>): StringBodyParser {
  const parseJson = defaultParser as StringBodyParser;
  return (req, body, done) => {
    // The body is read as UTF-8: text sent in another charset would be stored garbled ("Caf\uFFFD").
    const charset = charsetOf(req.headers["content-type"]);
    // ASCII is read as UTF-8 only while it is ASCII: a Latin-1 body labelled us-ascii (a common
    // mislabel) would otherwise be stored garbled.
    // eslint-disable-next-line no-control-regex
    const notAscii = ASCII_LABELS.has(charset ?? "") && /[^\x00-\x7f]/.test(body);
    if ((charset !== undefined && !UTF8_LABELS.has(charset) && !ASCII_LABELS.has(charset)) || notAscii) {
      return done(new Problem(415, "Unsupported media type", "send the body as application/json in UTF-8 (charset=utf-8, or no charset)"), undefined);
    }
    // A content type with nothing after it (some clients send one with every request) is no body where
    // the route takes none; where it needs one, an empty body is still invalid JSON.
    if (body === "" && takesNoBody(req)) return done(null, undefined);
    parseJson(req, body, (error, value) => {
      if (error) return done(error, undefined);
      const duplicate = duplicateKeyPath(body);
      if (!duplicate) return done(null, value);
      const path = ["body", ...duplicate].map((key) => key.replaceAll("\u0000", "\\u0000")).join(".");
      const message = "this field is given more than once in the same object; give each field once";
      done(badRequest(`${path}: ${message}`, [{ path, message }]), undefined);
    });
  };
}
