/**
 * The bytes JSON's grammar is made of, for the scanners that read responses as UTF-8 bytes
 * (search pages, Data Access files). Every one is ASCII and never occurs inside a multi-byte
 * sequence, which is what makes scanning bytes instead of decoded text exact.
 */
export const QUOTE = 0x22;
export const BACKSLASH = 0x5c;
export const OPEN_OBJECT = 0x7b;
export const CLOSE_OBJECT = 0x7d;
export const OPEN_ARRAY = 0x5b;
export const CLOSE_ARRAY = 0x5d;

/** JSON's four whitespace bytes. */
export function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}
