/**
 * Both sides: how a cache answers reads, shared by the cluster worker's informer caches and the
 * test double of `./testing`, so the two cannot disagree. A cached list may select on
 * `metadata.name`, `metadata.namespace` and configured indexes, with `=` only: anything else is
 * `NotIndexed`, where a live list would ask the API server.
 *
 * @module
 */

import type { CacheIndex, ModuleFunction } from "./cache_options.ts";
import { ClusterCacheError, KubernetesApiError } from "./errors.ts";
import { parseFieldSelector, readFieldPath } from "./field_selector.ts";
import type { KubeObject } from "./kube_object.ts";
import { matchesLabels, parseLabelSelector } from "./label_selector.ts";

/** A transform or index extractor, loaded. */
export type ObjectFunction = (object: KubeObject) => unknown;

/**
 * Loads the module functions of transforms and indexes, each module once; a failed load is
 * forgotten, so the next read tries again.
 */
export class ModuleFunctions {
  readonly #loaded = new Map<string, Promise<ObjectFunction>>();

  /**
   * The function `ref` names.
   *
   * @throws {TypeError} When the module has no such exported function.
   */
  load(ref: ModuleFunction): Promise<ObjectFunction> {
    const id = `${ref.module}#${ref.export}`;
    let loaded = this.#loaded.get(id);
    if (!loaded) {
      loaded = import(ref.module).then((module) => {
        const fn = module[ref.export];
        if (typeof fn !== "function") {
          throw new TypeError(`Module ${ref.module} has no exported function "${ref.export}"`);
        }
        return fn as ObjectFunction;
      });
      this.#loaded.set(id, loaded);
      loaded.catch(() => this.#loaded.delete(id));
    }
    return loaded;
  }
}

/** Computes index values of an object. */
export interface IndexFunction {
  /** The index name (used as the field in field selectors). */
  field: string;
  /** Values of the object under this index (none: not indexed). */
  values(object: KubeObject): string[];
}

/** The objects of one kind with their indexes, as a cache holds them. */
export interface IndexedObjects {
  /** Whether an index exists for `field` (`metadata.namespace` always does). */
  hasIndex(field: string): boolean;
  /** Objects whose `field` index has `value`. */
  byIndex(field: string, value: string): Iterable<KubeObject>;
  /** Whether `object` is indexed under `value` in the `field` index. */
  indexedUnder(field: string, value: string, object: KubeObject): boolean;
  /** Every object. */
  values(): Iterable<KubeObject>;
}

/**
 * The index function of a configured index.
 *
 * @param index The index.
 * @param fn Its extractor when that is a module function, loaded by the caller.
 */
export function indexFunction(
  index: CacheIndex,
  fn?: (object: KubeObject) => unknown,
): IndexFunction {
  const extract = index.extract;
  if ("fieldPath" in extract) {
    const path = extract.fieldPath;
    return {
      field: index.field,
      values: (o) => {
        const value = readFieldPath(o, path);
        return value === "" ? [] : [value];
      },
    };
  }
  if (!fn) throw new TypeError(`index ${index.field}: its module function was not loaded`);
  return {
    field: index.field,
    values: (o) => {
      const value = fn(o);
      if (value === undefined || value === null || value === "") return [];
      return (Array.isArray(value) ? value : [value]).map(String);
    },
  };
}

/**
 * The objects a cached list returns, before paging.
 *
 * @throws {ClusterCacheError} `NotIndexed` for a field selector the cache cannot serve.
 */
export function selectCached(
  objects: IndexedObjects,
  options: { namespace?: string; labelSelector?: string; fieldSelector?: string },
): KubeObject[] {
  const fields = parseFieldSelector(options.fieldSelector ?? "").requirements;
  let candidates: Iterable<KubeObject> | undefined;
  const rest = [];
  for (const r of fields) {
    if (r.operator !== "=") {
      throw new ClusterCacheError(
        "NotIndexed",
        `field selector "${options.fieldSelector}": the cache supports only "=" on indexed fields`,
      );
    }
    if (candidates === undefined && objects.hasIndex(r.field)) {
      candidates = objects.byIndex(r.field, r.value);
    } else if (
      r.field === "metadata.name" || r.field === "metadata.namespace" ||
      objects.hasIndex(r.field)
    ) {
      rest.push(r);
    } else {
      throw new ClusterCacheError(
        "NotIndexed",
        `field selector "${r.field}" is not indexed in the cache; add it to options.cache.indexes or read live`,
      );
    }
  }
  if (options.namespace && candidates === undefined) {
    candidates = objects.byIndex("metadata.namespace", options.namespace);
  }
  const labels = options.labelSelector ? parseLabelSelector(options.labelSelector) : undefined;
  const out: KubeObject[] = [];
  for (const object of candidates ?? objects.values()) {
    if (options.namespace && object.metadata?.namespace !== options.namespace) continue;
    if (labels && !matchesLabels(labels, object.metadata?.labels)) continue;
    if (
      !rest.every((r) =>
        objects.hasIndex(r.field)
          ? objects.indexedUnder(r.field, r.value, object)
          : readFieldPath(object, r.field) === r.value
      )
    ) continue;
    out.push(object);
  }
  return out;
}

/**
 * One page of a cached list, as the API server pages: in key order (`namespace/name`), `limit`
 * items at most, and a `continue` token naming the last key served.
 *
 * @throws {KubernetesApiError} 400 for a token this cache did not make, as the server answers.
 */
export function page(
  items: KubeObject[],
  options: { limit?: number; continue?: string },
): { metadata: { continue?: string; remainingItemCount?: number }; items: KubeObject[] } {
  if (!options.limit && !options.continue) return { metadata: {}, items };
  const keyOf = (o: KubeObject) => `${o.metadata?.namespace ?? ""}/${o.metadata?.name ?? ""}`;
  const sorted = [...items].sort((
    a,
    b,
  ) => (keyOf(a) < keyOf(b) ? -1 : keyOf(a) > keyOf(b) ? 1 : 0));
  let after: string | undefined;
  if (options.continue) {
    try {
      const decoded = JSON.parse(atob(options.continue)) as { after?: unknown };
      if (typeof decoded.after !== "string") throw new Error("no key");
      after = decoded.after;
    } catch {
      throw new KubernetesApiError({
        apiVersion: "v1",
        kind: "Status",
        metadata: {},
        status: "Failure",
        message: "continue key is not valid: the token was not made by this cache",
        reason: "BadRequest",
        code: 400,
      });
    }
  }
  const start = after === undefined ? 0 : sorted.findIndex((o) => keyOf(o) > after!);
  const from = start < 0 ? sorted.length : start;
  const limit = options.limit && options.limit > 0 ? options.limit : sorted.length;
  const pageItems = sorted.slice(from, from + limit);
  const remaining = sorted.length - from - pageItems.length;
  if (remaining <= 0) return { metadata: {}, items: pageItems };
  return {
    metadata: {
      continue: btoa(JSON.stringify({ after: keyOf(pageItems.at(-1)!) })),
      remainingItemCount: remaining,
    },
    items: pageItems,
  };
}
