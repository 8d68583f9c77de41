/**
 * Characters that a terminal acts on instead of showing: C0 controls, DEL, C1 controls (0x9b is a
 * one-byte CSI on some terminals), and the Unicode bidirectional controls that reorder what is shown.
 */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

const NAMED: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t", "\u001b": "\\e" };

/**
 * Text from the server made safe to print on a terminal: every control character (but those in
 * `keep`, e.g. "\n") is shown as an escape (`\e`, `\r`, `\x07`, `\u{202e}`), so that no ANSI sequence,
 * carriage return or bidi override from a task, a cell or the BBS can move the cursor, recolour,
 * retitle or rewrite the terminal. Pure.
 */
export function terminalSafe(text: string, keep = ""): string {
  return text.replace(UNSAFE, (c) => {
    if (keep.includes(c)) return c;
    const code = c.charCodeAt(0);
    return NAMED[c] ?? (code < 0x100 ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u{${code.toString(16)}}`);
  });
}

/**
 * A JSON text with the characters JSON.stringify leaves raw but terminals act on (DEL, C1, bidi
 * controls, line separators) written as \uXXXX escapes: the same JSON value, safe on a terminal. Pure.
 */
export function jsonSafe(json: string): string {
  return json.replace(UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}
