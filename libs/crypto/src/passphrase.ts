/** Rules for the passphrase that locks a generated private key. */
export const PASSPHRASE_MIN_LENGTH = 12;
export const PASSPHRASE_MAX_LENGTH = 1024;

const CHARACTER_CLASSES: { name: string; pattern: RegExp }[] = [
  { name: "lower-case letters", pattern: /\p{Ll}/u },
  { name: "upper-case letters", pattern: /\p{Lu}/u },
  { name: "digits", pattern: /\p{Nd}/u },
  // Everything else: punctuation, symbols, spaces, letters without case.
  { name: "symbols or spaces", pattern: /[^\p{Ll}\p{Lu}\p{Nd}]/u },
];

/**
 * Returns why the passphrase is too weak, or null when it is acceptable: at least 12 characters
 * and not all from one class (only lower-case letters, only digits…). The reason never repeats
 * the passphrase.
 */
export function checkPassphrase(passphrase: string): string | null {
  const length = [...passphrase].length;
  if (length < PASSPHRASE_MIN_LENGTH) {
    return `passphrase is too short: use at least ${PASSPHRASE_MIN_LENGTH} characters (got ${length})`;
  }
  if (length > PASSPHRASE_MAX_LENGTH) {
    return `passphrase is too long: use at most ${PASSPHRASE_MAX_LENGTH} characters`;
  }
  const present = CHARACTER_CLASSES.filter((c) => c.pattern.test(passphrase));
  if (present.length < 2) {
    const only = present[0]?.name ?? "one kind of character";
    return `passphrase uses only ${only}: mix at least two of lower-case letters, upper-case letters, digits, symbols or spaces`;
  }
  return null;
}
