/**
 * Kubernetes field selectors (`metadata.name=web,status.phase!=Running`): parsing and matching.
 *
 * Only `=`, `==` and `!=` exist for fields. Which fields are allowed depends on the kind; that check is
 * the caller's (the simulated API server rejects unknown fields with 400, the cache allows indexed ones).
 *
 * @module
 */

import { SelectorParseError } from "./label_selector.ts";

/** One requirement of a field selector. */
export interface FieldRequirement {
  readonly field: string;
  readonly operator: "=" | "!=";
  readonly value: string;
}

/** A parsed field selector: a conjunction of requirements. */
export interface FieldSelector {
  readonly requirements: readonly FieldRequirement[];
}

/**
 * Splits `text` on `separator` characters that are not escaped with a backslash.
 */
function splitUnescaped(text: string, separator: string): string[] {
  const parts: string[] = [];
  let current = "";
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === "\\" && i + 1 < text.length) {
      current += c + text[i + 1];
      i++;
    } else if (c === separator) {
      parts.push(current);
      current = "";
    } else {
      current += c;
    }
  }
  parts.push(current);
  return parts;
}

function unescape(text: string): string {
  return text.replace(/\\(.)/g, "$1");
}

/**
 * Parses a field selector.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseFieldSelector } from "./field_selector.ts";
 * const selector = parseFieldSelector("metadata.name=web,status.phase!=Running");
 * assert.ok(selector.requirements.length === 2);
 * ```
 *
 * @param text The selector; empty matches everything. `\,`, `\=` and `\\` escape.
 * @returns The parsed selector.
 * @throws {SelectorParseError} When a term has no operator or an empty field name.
 */
export function parseFieldSelector(text: string): FieldSelector {
  const requirements: FieldRequirement[] = [];
  if (text.trim() === "") return { requirements };
  for (const term of splitUnescaped(text, ",")) {
    const match = /^((?:[^=!\\]|\\.)+?)\s*(==|=|!=)\s*((?:[^\\]|\\.)*)$/.exec(term.trim());
    if (!match) {
      throw new SelectorParseError(
        `Cannot parse field selector "${text}": invalid term "${term}"`,
      );
    }
    const field = unescape(match[1]!.trim());
    if (field === "") {
      throw new SelectorParseError(`Cannot parse field selector "${text}": empty field name`);
    }
    requirements.push({
      field,
      operator: match[2] === "!=" ? "!=" : "=",
      value: unescape(match[3]!),
    });
  }
  return { requirements };
}

/**
 * Reports whether an object satisfies a field selector.
 *
 * @param selector A parsed selector.
 * @param valueOf Returns the object's value for a field (missing fields read as `""`).
 * @returns `true` when every requirement holds.
 */
export function matchesFields(
  selector: FieldSelector,
  valueOf: (field: string) => string,
): boolean {
  for (const r of selector.requirements) {
    const actual = valueOf(r.field);
    if (r.operator === "=" ? actual !== r.value : actual === r.value) return false;
  }
  return true;
}

/**
 * Reads a dotted field path (`spec.nodeName`) from a plain JSON object, as a string.
 *
 * Numbers and booleans are stringified the way the API server renders them in field selectors;
 * anything missing or non-scalar reads as `""`.
 *
 * @param object A plain JSON object.
 * @param path A dotted path.
 * @returns The value as a string.
 */
export function readFieldPath(object: unknown, path: string): string {
  let current: unknown = object;
  for (const part of path.split(".")) {
    if (current === null || typeof current !== "object") return "";
    current = (current as Record<string, unknown>)[part];
  }
  if (typeof current === "string") return current;
  if (typeof current === "number" || typeof current === "boolean") return String(current);
  return "";
}
