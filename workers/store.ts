/**
 * The cache store of one kind: objects by `namespace/name`, with indexes (namespace always, plus any
 * configured ones). Writes return the change they made as a {@linkcode Delta}, which the informer
 * fans out; a write that changes nothing returns nothing, so handlers never see duplicates.
 *
 * @module
 */

import type { WatchEvent } from "../src/shared/client_types.ts";
import type { IndexFunction } from "../src/shared/cache_query.ts";
import type { KubeObject } from "../src/shared/kube_object.ts";

/** A change to the store, in the shape watch handlers receive. */
export type Delta = WatchEvent<KubeObject>;

/** `namespace/name`, or `name` for cluster-scoped objects. */
export function storeKey(object: KubeObject): string {
  const ns = object.metadata?.namespace;
  return ns ? `${ns}/${object.metadata?.name ?? ""}` : object.metadata?.name ?? "";
}

const NAMESPACE_INDEX: IndexFunction = {
  field: "metadata.namespace",
  values: (o) => [o.metadata?.namespace ?? ""],
};

interface Index {
  fn: IndexFunction;
  byValue: Map<string, Set<string>>;
}

/** Objects of one kind, indexed. */
export class ObjectCache {
  readonly #items = new Map<string, KubeObject>();
  readonly #indexes = new Map<string, Index>();
  readonly #onIndexError: (field: string, error: unknown) => void;

  /**
   * @param indexes Extra indexes; `metadata.namespace` is always present.
   * @param onIndexError Called when an extractor throws (the object is then not indexed there).
   */
  constructor(
    indexes: IndexFunction[] = [],
    onIndexError: (field: string, error: unknown) => void = () => {},
  ) {
    for (const fn of [NAMESPACE_INDEX, ...indexes]) {
      this.#indexes.set(fn.field, { fn, byValue: new Map() });
    }
    this.#onIndexError = onIndexError;
  }

  /** Number of objects. */
  get size(): number {
    return this.#items.size;
  }

  /** One object by key. */
  get(key: string): KubeObject | undefined {
    return this.#items.get(key);
  }

  /** Every object. */
  values(): IterableIterator<KubeObject> {
    return this.#items.values();
  }

  /** Whether an index exists for `field`. */
  hasIndex(field: string): boolean {
    return this.#indexes.has(field);
  }

  /** Objects whose `field` index has `value`. */
  byIndex(field: string, value: string): KubeObject[] {
    const keys = this.#indexes.get(field)?.byValue.get(value);
    if (!keys) return [];
    const out: KubeObject[] = [];
    for (const key of keys) out.push(this.#items.get(key)!);
    return out;
  }

  /** Whether `object` (as stored) is indexed under `value` in the `field` index. */
  indexedUnder(field: string, value: string, object: KubeObject): boolean {
    return this.#indexes.get(field)?.byValue.get(value)?.has(storeKey(object)) ?? false;
  }

  #valuesOf(index: Index, object: KubeObject): string[] {
    try {
      return index.fn.values(object);
    } catch (error) {
      this.#onIndexError(index.fn.field, error);
      return [];
    }
  }

  #index(key: string, object: KubeObject): void {
    for (const index of this.#indexes.values()) {
      for (const value of this.#valuesOf(index, object)) {
        let keys = index.byValue.get(value);
        if (!keys) index.byValue.set(value, keys = new Set());
        keys.add(key);
      }
    }
  }

  #unindex(key: string, object: KubeObject): void {
    for (const index of this.#indexes.values()) {
      for (const value of this.#valuesOf(index, object)) {
        const keys = index.byValue.get(value);
        keys?.delete(key);
        if (keys?.size === 0) index.byValue.delete(value);
      }
    }
  }

  /**
   * Adds or replaces an object. An object with the same key but another UID is a different object:
   * the old one is deleted first (two deltas).
   *
   * @returns The changes made (none when the stored object has the same resourceVersion).
   */
  upsert(object: KubeObject): Delta[] {
    const key = storeKey(object);
    const old = this.#items.get(key);
    if (old) {
      if (old.metadata?.uid && object.metadata?.uid && old.metadata.uid !== object.metadata.uid) {
        return [...this.remove(key), ...this.upsert(object)];
      }
      if (old.metadata?.resourceVersion === object.metadata?.resourceVersion) return [];
      this.#unindex(key, old);
      this.#items.set(key, object);
      this.#index(key, object);
      return [{ type: "update", object, oldObject: old }];
    }
    this.#items.set(key, object);
    this.#index(key, object);
    return [{ type: "add", object }];
  }

  /**
   * Removes an object.
   *
   * @param key The object's key.
   * @param finalState The object as the server last reported it (defaults to the stored one).
   * @returns The delete, or nothing when it was not stored.
   */
  remove(key: string, finalState?: KubeObject): Delta[] {
    const old = this.#items.get(key);
    if (!old) return [];
    this.#unindex(key, old);
    this.#items.delete(key);
    return [{ type: "delete", object: finalState ?? old }];
  }

  /**
   * Replaces the whole content with a fresh list, returning only the differences: deletes for
   * objects gone, adds for new ones, updates for changed ones.
   */
  replace(objects: readonly KubeObject[]): Delta[] {
    const deltas: Delta[] = [];
    const seen = new Set<string>();
    for (const object of objects) seen.add(storeKey(object));
    for (const key of [...this.#items.keys()]) {
      if (!seen.has(key)) deltas.push(...this.remove(key));
    }
    for (const object of objects) deltas.push(...this.upsert(object));
    return deltas;
  }
}
