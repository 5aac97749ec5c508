/**
 * Text cells that a spreadsheet would run as a formula start with = + - @, a tab or a carriage
 * return (OWASP "CSV injection"). Neutralising prefixes them with an apostrophe, which
 * spreadsheets show as text; numbers are typed cells and never pass through here.
 */
export function isFormulaLike(text: string): boolean {
  if (text.length === 0) return false;
  const c = text.charCodeAt(0);
  return c === 61 /* = */ || c === 43 /* + */ || c === 45 /* - */ || c === 64 /* @ */ || c === 9 /* \t */ || c === 13 /* \r */;
}

// A signed plain number ("-1", "+3.5") is read as that number, never run: ids such as the
// platform's "-1" (unassigned) stay as they are.
const PLAIN_NUMBER = /^[+-]?\d+(\.\d+)?$/;

export function neutraliseFormula(text: string): string {
  return isFormulaLike(text) && !PLAIN_NUMBER.test(text) ? `'${text}` : text;
}
