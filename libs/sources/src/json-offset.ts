/**
 * Where a JSON text first goes wrong (a character index), for error messages: V8's own messages
 * often carry no position. Only used on the failure path, so clarity beats speed. Returns -1 when
 * the text is valid JSON.
 */
export function firstJsonError(text: string): number {
  let i = 0;
  const n = text.length;
  class Stop {
    constructor(readonly at: number) {}
  }
  const fail = (at: number): never => {
    throw new Stop(at);
  };
  const ws = () => {
    while (i < n && (text[i] === " " || text[i] === "\n" || text[i] === "\r" || text[i] === "\t")) i++;
  };
  const literal = (word: string) => {
    for (let k = 0; k < word.length; k++) if (text[i + k] !== word[k]) fail(Math.min(i + k, n));
    i += word.length;
  };
  const string = () => {
    i++; // opening quote
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 34) {
        i++;
        return;
      }
      if (c < 0x20) fail(i);
      if (c === 92) {
        const e = text[i + 1];
        if (e === undefined) fail(n);
        if (e === "u") {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) fail(i);
          i += 6;
        } else if ('"\\/bfnrt'.includes(e!)) i += 2;
        else fail(i);
      } else i++;
    }
    fail(n);
  };
  const number = () => {
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i, i + 400));
    if (!m || m[0].length === 0 || m[0] === "-") fail(i);
    i += m![0].length;
  };
  const value = (): void => {
    ws();
    if (i >= n) fail(n);
    const c = text[i];
    if (c === "{") {
      i++;
      ws();
      if (text[i] === "}") {
        i++;
        return;
      }
      for (;;) {
        ws();
        if (i >= n) fail(n);
        if (text[i] !== '"') fail(i);
        string();
        ws();
        if (i >= n) fail(n);
        if (text[i] !== ":") fail(i);
        i++;
        value();
        ws();
        if (i >= n) fail(n);
        if (text[i] === ",") {
          i++;
          continue;
        }
        if (text[i] === "}") {
          i++;
          return;
        }
        fail(i);
      }
    }
    if (c === "[") {
      i++;
      ws();
      if (text[i] === "]") {
        i++;
        return;
      }
      for (;;) {
        value();
        ws();
        if (i >= n) fail(n);
        if (text[i] === ",") {
          i++;
          continue;
        }
        if (text[i] === "]") {
          i++;
          return;
        }
        fail(i);
      }
    }
    if (c === '"') return string();
    if (c === "t") return literal("true");
    if (c === "f") return literal("false");
    if (c === "n") return literal("null");
    return number();
  };
  try {
    value();
    ws();
    return i < n ? i : -1;
  } catch (error) {
    if (error instanceof Stop) return error.at;
    throw error;
  }
}
