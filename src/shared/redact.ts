/**
 * Removes credentials that could ride along in text from lower layers (a proxy URL's user and
 * password, a bearer token) before it reaches a log line or an error message.
 *
 * @module
 */

/**
 * Redacts `scheme://user:password@` and `Bearer <token>` in `text`. A password written with a raw
 * `/` or `@` (which a URL parser would misread) is redacted too: up to the word's last `@`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { redact } from "./redact.ts";
 * assert.ok(redact("proxy http://u:p@h:1 refused") === "proxy http://***@h:1 refused");
 * assert.ok(redact("bad proxy-url http://u:p/w@x@h:1") === "bad proxy-url http://***@h:1");
 * ```
 */
export function redact(text: string): string {
  return text
    // The lookbehind starts a scheme only where one can start: no quadratic rescans of long words.
    .replace(/(?<![a-z0-9+.-])([a-z][a-z0-9+.-]*:\/\/)\S*@/gi, "$1***@")
    .replace(/\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+/gi, "$1 ***");
}
