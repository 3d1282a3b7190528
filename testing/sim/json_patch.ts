/**
 * JSON Patch (RFC 6902), JSON Merge Patch (RFC 7386) and strategic merge patch applied to plain
 * JSON values, as the simulated API server does for `application/json-patch+json`,
 * `application/merge-patch+json` and `application/strategic-merge-patch+json` requests.
 *
 * @module
 */

import type { JsonPatchOperation, JsonValue } from "../../src/shared/client_types.ts";

export type { JsonPatchOperation, JsonValue };

/** Raised when a patch cannot be applied; the simulated API server answers it with 422 Invalid. */
export class PatchError extends Error {
  override name = "PatchError";
}

function parsePointer(pointer: string): string[] {
  if (pointer === "") return [];
  if (!pointer.startsWith("/")) throw new PatchError(`Invalid JSON pointer: "${pointer}"`);
  return pointer.slice(1).split("/").map((t) => t.replace(/~1/g, "/").replace(/~0/g, "~"));
}

function clone<T extends JsonValue>(value: T): T {
  return structuredClone(value);
}

function isObject(value: unknown): value is { [key: string]: JsonValue } {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function deepEqual(a: JsonValue | undefined, b: JsonValue | undefined): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((v, i) => deepEqual(v, b[i]));
  }
  if (isObject(a) && isObject(b)) {
    const ka = Object.keys(a);
    const kb = Object.keys(b);
    return ka.length === kb.length && ka.every((k) => Object.hasOwn(b, k) && deepEqual(a[k], b[k]));
  }
  return false;
}

function arrayIndex(tokens: string, length: number, allowEnd: boolean, path: string): number {
  if (allowEnd && tokens === "-") return length;
  if (!/^(0|[1-9]\d*)$/.test(tokens)) throw new PatchError(`Invalid array index in "${path}"`);
  const index = Number(tokens);
  if (index > length || (!allowEnd && index === length)) {
    throw new PatchError(`Array index out of bounds in "${path}"`);
  }
  return index;
}

/** Resolves the parent container of `pointer` and the last token. */
function locate(doc: JsonValue, pointer: string): { parent: JsonValue; key: string } {
  const tokens = parsePointer(pointer);
  if (tokens.length === 0) throw new PatchError(`Cannot operate on the document root`);
  let parent: JsonValue = doc;
  for (const token of tokens.slice(0, -1)) {
    if (Array.isArray(parent)) {
      parent = parent[arrayIndex(token, parent.length, false, pointer)]!;
    } else if (isObject(parent) && Object.hasOwn(parent, token)) {
      parent = parent[token]!;
    } else {
      throw new PatchError(`Path not found: "${pointer}"`);
    }
  }
  return { parent, key: tokens[tokens.length - 1]! };
}

function getAt(doc: JsonValue, pointer: string): JsonValue {
  let current: JsonValue = doc;
  for (const token of parsePointer(pointer)) {
    if (Array.isArray(current)) {
      current = current[arrayIndex(token, current.length, false, pointer)]!;
    } else if (isObject(current) && Object.hasOwn(current, token)) {
      current = current[token]!;
    } else {
      throw new PatchError(`Path not found: "${pointer}"`);
    }
  }
  return current;
}

function addAt(doc: JsonValue, pointer: string, value: JsonValue): JsonValue {
  if (pointer === "") return value;
  const { parent, key } = locate(doc, pointer);
  if (Array.isArray(parent)) {
    parent.splice(arrayIndex(key, parent.length, true, pointer), 0, value);
  } else if (isObject(parent)) {
    parent[key] = value;
  } else {
    throw new PatchError(`Cannot add to a scalar at "${pointer}"`);
  }
  return doc;
}

function removeAt(doc: JsonValue, pointer: string): JsonValue {
  const { parent, key } = locate(doc, pointer);
  if (Array.isArray(parent)) {
    parent.splice(arrayIndex(key, parent.length, false, pointer), 1);
  } else if (isObject(parent) && Object.hasOwn(parent, key)) {
    delete parent[key];
  } else {
    throw new PatchError(`Path not found: "${pointer}"`);
  }
  return doc;
}

/**
 * Applies an RFC 6902 JSON Patch. The input is not modified.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { applyJsonPatch } from "./json_patch.ts";
 * const out = applyJsonPatch({ a: [1] }, [{ op: "add", path: "/a/-", value: 2 }]);
 * assert.ok(JSON.stringify(out) === '{"a":[1,2]}');
 * ```
 *
 * @param document The document to patch.
 * @param operations The operations, applied in order.
 * @returns The patched copy.
 * @throws {PatchError} When an operation is malformed, a path is missing or a `test` fails.
 */
export function applyJsonPatch(document: JsonValue, operations: unknown): JsonValue {
  if (!Array.isArray(operations)) {
    throw new PatchError("A JSON patch must be an array of operations");
  }
  let doc = clone(document);
  for (const raw of operations) {
    if (!isObject(raw) || typeof raw.op !== "string" || typeof raw.path !== "string") {
      throw new PatchError("Each JSON patch operation needs string fields op and path");
    }
    const path = raw.path;
    switch (raw.op) {
      case "add":
        if (!("value" in raw)) throw new PatchError(`Operation add at "${path}" has no value`);
        doc = addAt(doc, path, clone(raw.value!));
        break;
      case "remove":
        doc = removeAt(doc, path);
        break;
      case "replace":
        if (!("value" in raw)) throw new PatchError(`Operation replace at "${path}" has no value`);
        getAt(doc, path);
        doc = path === "" ? clone(raw.value!) : addAt(removeAt(doc, path), path, clone(raw.value!));
        break;
      case "move": {
        if (typeof raw.from !== "string") throw new PatchError(`Operation move needs from`);
        if (path.startsWith(raw.from + "/")) {
          throw new PatchError(`Cannot move "${raw.from}" into its own child "${path}"`);
        }
        const value = getAt(doc, raw.from);
        doc = addAt(removeAt(doc, raw.from), path, value);
        break;
      }
      case "copy": {
        if (typeof raw.from !== "string") throw new PatchError(`Operation copy needs from`);
        doc = addAt(doc, path, clone(getAt(doc, raw.from)));
        break;
      }
      case "test": {
        let actual: JsonValue | undefined;
        try {
          actual = getAt(doc, path);
        } catch {
          actual = undefined;
        }
        if (!deepEqual(actual, raw.value)) {
          throw new PatchError(`Test operation failed at "${path}"`);
        }
        break;
      }
      default:
        throw new PatchError(`Unknown JSON patch operation "${raw.op}"`);
    }
  }
  return doc;
}

/**
 * Applies an RFC 7386 JSON Merge Patch: objects merge recursively, `null` deletes, anything else
 * (arrays included) replaces. The input is not modified.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { applyMergePatch } from "./json_patch.ts";
 * const out = applyMergePatch({ a: 1, b: { c: 2 } }, { a: null, b: { d: 3 } });
 * assert.ok(JSON.stringify(out) === '{"b":{"c":2,"d":3}}');
 * ```
 *
 * @param target The document to patch.
 * @param patch The merge patch.
 * @returns The patched copy.
 */
export function applyMergePatch(target: JsonValue | undefined, patch: JsonValue): JsonValue {
  if (!isObject(patch)) return clone(patch);
  const result: { [key: string]: JsonValue } = isObject(target) ? clone(target) : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = applyMergePatch(result[key], value);
  }
  return result;
}

/**
 * The patch merge keys of built-in kinds' lists, by field name (kube-apiserver reads them from the
 * Go types' `patchMergeKey` tags). `ports` merges by `containerPort` in containers and by `port` in
 * Services. Lists not named here are replaced whole; `finalizers` is a list of strings merged as a
 * set.
 */
const MERGE_KEYS: Record<string, string | ((item: { [key: string]: JsonValue }) => string)> = {
  containers: "name",
  initContainers: "name",
  ephemeralContainers: "name",
  env: "name",
  volumes: "name",
  volumeMounts: "mountPath",
  volumeDevices: "devicePath",
  imagePullSecrets: "name",
  resourceClaims: "name",
  hostAliases: "ip",
  conditions: "type",
  ownerReferences: "uid",
  secrets: "name",
  ports: (item) => ("containerPort" in item ? "containerPort" : "port"),
};
const PRIMITIVE_MERGE_LISTS = new Set(["finalizers"]);

/**
 * Applies a strategic merge patch as kube-apiserver does for built-in kinds: maps merge, lists with a
 * patch merge key merge item by item (`$patch: delete` removes one; items of the patch come first,
 * in its order, then the others), `finalizers` merge as a set (`$deleteFromPrimitiveList/<field>`
 * removes values), `$patch: replace` replaces a map, other lists are replaced, and other directives
 * (`$setElementOrder`, `$retainKeys`) are dropped.
 *
 * @param target The document to patch.
 * @param patch The strategic merge patch.
 * @returns The patched copy.
 */
export function applyStrategicMergePatch(
  target: JsonValue | undefined,
  patch: JsonValue,
): JsonValue {
  if (!isObject(patch)) return clone(patch);
  if (patch.$patch === "replace") {
    const { $patch: _directive, ...rest } = patch;
    return applyStrategicMergePatch(undefined, rest);
  }
  const result: { [key: string]: JsonValue } = isObject(target) ? clone(target) : {};
  for (const [key, value] of Object.entries(patch)) {
    if (key.startsWith("$deleteFromPrimitiveList/") && Array.isArray(value)) {
      const field = key.slice("$deleteFromPrimitiveList/".length);
      const current = result[field];
      if (Array.isArray(current)) {
        result[field] = current.filter((v) =>
          !value.some((d) => JSON.stringify(d) === JSON.stringify(v))
        );
      }
      continue;
    }
    if (key.startsWith("$")) continue;
    if (value === null) {
      delete result[key];
    } else if (Array.isArray(value) && PRIMITIVE_MERGE_LISTS.has(key)) {
      const current = Array.isArray(result[key]) ? result[key] as JsonValue[] : [];
      const seen = new Set(value.map((v) => JSON.stringify(v)));
      result[key] = [
        ...value.filter((v, i) =>
          value.findIndex((w) => JSON.stringify(w) === JSON.stringify(v)) === i
        )
          .map(clone),
        ...current.filter((v) => !seen.has(JSON.stringify(v))).map(clone),
      ];
    } else if (Array.isArray(value) && key in MERGE_KEYS && value.every(isObject)) {
      const current = Array.isArray(result[key]) ? result[key] as JsonValue[] : [];
      result[key] = mergeKeyedLists(
        current,
        value as { [key: string]: JsonValue }[],
        MERGE_KEYS[key]!,
      );
    } else if (isObject(value)) {
      result[key] = applyStrategicMergePatch(result[key], value);
    } else {
      result[key] = clone(value);
    }
  }
  return result;
}

function mergeKeyedLists(
  current: JsonValue[],
  patch: { [key: string]: JsonValue }[],
  mergeKey: string | ((item: { [key: string]: JsonValue }) => string),
): JsonValue[] {
  const keyOf = (item: JsonValue) => {
    if (!isObject(item)) return undefined;
    const field = typeof mergeKey === "string" ? mergeKey : mergeKey(item);
    return JSON.stringify(item[field] ?? null);
  };
  const mentioned = new Set(patch.map(keyOf));
  const out: JsonValue[] = [];
  for (const item of patch) {
    if (item.$patch === "delete") continue;
    const existing = current.find((c) => keyOf(c) === keyOf(item));
    out.push(applyStrategicMergePatch(existing, item));
  }
  for (const item of current) if (!mentioned.has(keyOf(item))) out.push(clone(item));
  return out;
}
