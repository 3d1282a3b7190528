/**
 * Kubernetes label selectors: parsing the string form (`app=web,tier in (a,b),!legacy`) and matching.
 *
 * Shared by the workers (cache filtering), the main thread (client-side filters) and the simulated API
 * server, so all three agree on what a selector means.
 *
 * @module
 */

/** One requirement of a label selector, e.g. `tier in (a,b)`. */
export interface LabelRequirement {
  readonly key: string;
  readonly operator: "=" | "!=" | "in" | "notin" | "exists" | "!" | "gt" | "lt";
  readonly values: readonly string[];
}

/** A parsed label selector: a conjunction of requirements. The empty selector matches everything. */
export interface LabelSelector {
  readonly requirements: readonly LabelRequirement[];
}

const NAME_PART = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/**
 * Reports why a label key is invalid, or `undefined` when it is valid.
 *
 * @param key The label key, with an optional DNS-subdomain prefix (`example.com/name`).
 * @returns A reason, or `undefined`.
 */
export function labelKeyError(key: string): string | undefined {
  const slash = key.lastIndexOf("/");
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (
    prefix !== undefined &&
    (prefix.length === 0 || prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix))
  ) {
    return `invalid label key prefix "${prefix}"`;
  }
  if (name.length === 0 || name.length > 63 || !NAME_PART.test(name)) {
    return `invalid label key "${key}": must be 63 characters or less, alphanumeric, '-', '_' or '.'`;
  }
  return undefined;
}

/**
 * Reports why a label value is invalid, or `undefined` when it is valid.
 *
 * @param value The label value (may be empty).
 * @returns A reason, or `undefined`.
 */
export function labelValueError(value: string): string | undefined {
  if (value === "") return undefined;
  if (value.length > 63 || !NAME_PART.test(value)) {
    return `invalid label value "${value}": must be 63 characters or less, alphanumeric, '-', '_' or '.'`;
  }
  return undefined;
}

/**
 * Raised for a label selector that cannot be parsed; the message names the offending part.
 *
 * @example A typo in a selector fails at once, before any request
 * ```ts
 * import assert from "node:assert/strict";
 * import { predicates, SelectorParseError } from "@fleetkit/clustercache";
 * import { FakeClient, FakeClusterCache } from "@fleetkit/clustercache/testing";
 *
 * const cluster = { namespace: "default", name: "workload-1" };
 * const cache = new FakeClusterCache(new FakeClient(), cluster);
 * await assert.rejects(
 *   cache.watch(cluster, {
 *     name: "web-pods",
 *     kind: { apiVersion: "v1", kind: "Pod" },
 *     predicates: [predicates.labelSelector("app in (web")],
 *     handler: () => {},
 *   }),
 *   SelectorParseError,
 * );
 * ```
 */
export class SelectorParseError extends TypeError {
  /** Always `"SelectorParseError"`. */
  override name = "SelectorParseError";
}

/**
 * Parses a label selector in the Kubernetes string syntax.
 *
 * Supports `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`, `k>1`, `k<1`; commas join
 * requirements.
 *
 * @example Parse and match
 * ```ts
 * import assert from "node:assert/strict";
 * import { matchesLabels, parseLabelSelector } from "./label_selector.ts";
 * const selector = parseLabelSelector("app=web,tier in (front,back),!legacy");
 * assert.ok(matchesLabels(selector, { app: "web", tier: "front" }));
 * ```
 *
 * @param text The selector string; empty or whitespace matches everything.
 * @returns The parsed selector.
 * @throws {SelectorParseError} When the text is not a valid selector.
 */
export function parseLabelSelector(text: string): LabelSelector {
  const requirements: LabelRequirement[] = [];
  let pos = 0;
  const src = text;
  const fail = (why: string): never => {
    throw new SelectorParseError(`Cannot parse label selector "${text}": ${why}`);
  };
  const skipSpace = () => {
    while (pos < src.length && /\s/.test(src[pos]!)) pos++;
  };
  const readWord = (): string => {
    const start = pos;
    while (pos < src.length && !/[\s,=!()<>]/.test(src[pos]!)) pos++;
    return src.slice(start, pos);
  };
  const readValues = (): string[] => {
    skipSpace();
    if (src[pos] !== "(") fail(`expected "(" at position ${pos}`);
    pos++;
    const values: string[] = [];
    for (;;) {
      skipSpace();
      const value = readWord();
      const bad = labelValueError(value);
      if (bad) fail(bad);
      values.push(value);
      skipSpace();
      if (src[pos] === ",") {
        pos++;
        continue;
      }
      if (src[pos] === ")") {
        pos++;
        return values;
      }
      fail(`expected "," or ")" at position ${pos}`);
    }
  };

  skipSpace();
  if (pos === src.length) return { requirements };
  for (;;) {
    skipSpace();
    let requirement: LabelRequirement;
    if (src[pos] === "!") {
      pos++;
      skipSpace();
      const key = readWord();
      const bad = labelKeyError(key);
      if (bad) fail(bad);
      requirement = { key, operator: "!", values: [] };
    } else {
      const key = readWord();
      const bad = labelKeyError(key);
      if (bad) fail(bad);
      skipSpace();
      const c = src[pos];
      if (c === undefined || c === ",") {
        requirement = { key, operator: "exists", values: [] };
      } else if (c === "=" || (c === "!" && src[pos + 1] === "=")) {
        const operator = c === "=" ? "=" : "!=";
        pos += c === "=" ? (src[pos + 1] === "=" ? 2 : 1) : 2;
        skipSpace();
        const value = readWord();
        const badValue = labelValueError(value);
        if (badValue) fail(badValue);
        requirement = { key, operator, values: [value] };
      } else if (c === ">" || c === "<") {
        pos++;
        skipSpace();
        const value = readWord();
        if (!/^-?\d+$/.test(value)) fail(`"${value}" is not an integer`);
        requirement = { key, operator: c === ">" ? "gt" : "lt", values: [value] };
      } else {
        const word = readWord();
        if (word === "in" || word === "notin") {
          requirement = { key, operator: word, values: readValues() };
        } else {
          fail(`unexpected "${word || c}" at position ${pos}`);
        }
      }
    }
    requirements.push(requirement!);
    skipSpace();
    if (pos === src.length) break;
    if (src[pos] !== ",") fail(`expected "," at position ${pos}`);
    pos++;
  }
  return { requirements };
}

/**
 * Reports whether a set of labels satisfies every requirement of a selector.
 *
 * @param selector A parsed selector.
 * @param labels The object's labels; absent labels are treated as empty.
 * @returns `true` when all requirements hold.
 */
export function matchesLabels(
  selector: LabelSelector,
  labels: Readonly<Record<string, string>> | undefined,
): boolean {
  for (const r of selector.requirements) {
    const has = labels !== undefined && Object.hasOwn(labels, r.key);
    const value = has ? labels[r.key] : undefined;
    switch (r.operator) {
      case "=":
        if (!has || value !== r.values[0]) return false;
        break;
      case "!=":
        if (has && value === r.values[0]) return false;
        break;
      case "in":
        if (!has || !r.values.includes(value!)) return false;
        break;
      case "notin":
        if (has && r.values.includes(value!)) return false;
        break;
      case "exists":
        if (!has) return false;
        break;
      case "!":
        if (has) return false;
        break;
      case "gt":
      case "lt": {
        if (!has || !/^-?\d+$/.test(value!)) return false;
        const n = Number(value);
        const bound = Number(r.values[0]);
        if (r.operator === "gt" ? !(n > bound) : !(n < bound)) return false;
        break;
      }
    }
  }
  return true;
}

/**
 * Renders a selector back to its canonical string form.
 *
 * @param selector A parsed selector.
 * @returns The string form, e.g. `app=web,tier in (a,b)`.
 */
export function formatLabelSelector(selector: LabelSelector): string {
  return selector.requirements.map((r) => {
    switch (r.operator) {
      case "=":
      case "!=":
        return `${r.key}${r.operator}${r.values[0]}`;
      case "in":
      case "notin":
        return `${r.key} ${r.operator} (${r.values.join(",")})`;
      case "exists":
        return r.key;
      case "!":
        return `!${r.key}`;
      case "gt":
        return `${r.key}>${r.values[0]}`;
      case "lt":
        return `${r.key}<${r.values[0]}`;
    }
  }).join(",");
}
