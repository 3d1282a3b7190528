/**
 * What the per-cluster caches hold and how they index it. These options travel to the workers, so
 * they are data, not functions: code that must run next to the cache (an index extractor, a
 * transform) is named by module URL and export name, and the worker imports it.
 *
 * @module
 */

import type { KindRef } from "./kube_object.ts";

/**
 * A function exported by a module, which the worker imports and calls. The module must not import
 * `@kubernetes/client-node` at runtime (each worker would pay ~70 MB for it).
 *
 * @example
 * ```ts
 * import type { ModuleFunction } from "./cache_options.ts";
 * const extract: ModuleFunction = { module: new URL("./my_indexes.ts", import.meta.url).href, export: "byOwner" };
 * ```
 */
export interface ModuleFunction {
  /** Absolute module URL (`file:`, `https:` or `data:`). */
  module: string;
  /** Name of the exported function. */
  export: string;
}

/**
 * How a cache transforms objects before storing them: `"stripManagedFields"` drops
 * `metadata.managedFields` (usually most of an object's bytes); a {@linkcode ModuleFunction} receives
 * an object and returns the object to store.
 */
export type Transform = "stripManagedFields" | ModuleFunction;

/**
 * How an index computes its values from an object: a dotted field path (`spec.providerID`), or a
 * {@linkcode ModuleFunction} returning a string or an array of strings.
 */
export type IndexExtractor = { fieldPath: string } | ModuleFunction;

/** An index added to the cache of one kind; list with `fieldSelector: "<field>=<value>"` to use it. */
export interface CacheIndex {
  /** The kind indexed. */
  kind: KindRef;
  /** The index name, used as the field in field selectors. */
  field: string;
  /** How values are computed. */
  extract: IndexExtractor;
}

/** Restricts what the cache holds for one kind. */
export interface ByObject {
  /** The kind. */
  kind: KindRef;
  /** Only objects matching this label selector are cached. */
  labelSelector?: string;
  /** Only objects matching this field selector are cached (evaluated by the API server). */
  fieldSelector?: string;
  /** Replaces the default transform for this kind. */
  transform?: Transform;
}

/** Options of the caches created per workload cluster. */
export interface CacheOptions {
  /**
   * Every this many ms, each cached object is delivered again to watch handlers as an update with
   * identical old and new objects (controller-runtime's SyncPeriod). Absent: never.
   */
  syncPeriodMs?: number;
  /** Per-kind restrictions. */
  byObject?: ByObject[];
  /** Indexes added to the caches (see {@linkcode NodeProviderIDIndex}). */
  indexes?: CacheIndex[];
  /** Transform applied to objects of every kind without a per-kind one. */
  defaultTransform?: Transform;
}

/**
 * Indexes Nodes by `spec.providerID`, so `list(Node, { fieldSelector: "spec.providerID=<id>" })`
 * is served from the cache.
 *
 * @example
 * ```ts
 * import { NodeProviderIDIndex } from "./cache_options.ts";
 * const cache = { indexes: [NodeProviderIDIndex] };
 * ```
 */
export const NodeProviderIDIndex: CacheIndex = {
  kind: { apiVersion: "v1", kind: "Node" },
  field: "spec.providerID",
  extract: { fieldPath: "spec.providerID" },
};
