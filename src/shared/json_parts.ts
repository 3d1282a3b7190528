/**
 * Big answers cut into parts (both sides): a list of 50,000 Pods is ~100 MB of JSON, and parsing it
 * in one piece holds the main thread for a second. The worker sends the items as JSON arrays of at
 * most {@linkcode MAX_PART_BYTES} each, one message apiece, and the main thread parses each in its
 * own task, so any one task stays short.
 *
 * @module
 */

/** The most JSON text one message carries (about 5 ms of `JSON.parse`). */
export const MAX_PART_BYTES = 512 * 1024;

/**
 * Serialises `items` into JSON arrays of at most `maxBytes` characters each (an item larger than
 * that travels alone).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { jsonParts } from "./json_parts.ts";
 * const parts = jsonParts([{ a: 1 }, { b: 2 }, { c: 3 }], 20);
 * assert.deepEqual(parts.map((p) => JSON.parse(p)), [[{ a: 1 }, { b: 2 }], [{ c: 3 }]]);
 * ```
 */
export function jsonParts(items: readonly unknown[], maxBytes = MAX_PART_BYTES): string[] {
  const parts: string[] = [];
  let current: string[] = [];
  let size = 2;
  for (const item of items) {
    const text = JSON.stringify(item);
    if (current.length > 0 && size + text.length + 1 > maxBytes) {
      parts.push(`[${current.join(",")}]`);
      current = [];
      size = 2;
    }
    current.push(text);
    size += text.length + 1;
  }
  if (current.length > 0 || parts.length === 0) parts.push(`[${current.join(",")}]`);
  return parts;
}
