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
 * @example Naming an extractor that lives next to your controller
 * ```ts
 * import type { ModuleFunction } from "@fleetkit/clustercache";
 *
 * // ./indexes.ts exports `function byOwner(object: KubeObject): string[]`.
 * const byOwner: ModuleFunction = {
 *   module: new URL("./indexes.ts", import.meta.url).href,
 *   export: "byOwner",
 * };
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
 *
 * @example Dropping Secret payloads from the cache
 * ```ts
 * import type { CacheOptions, Transform } from "@fleetkit/clustercache";
 *
 * // Any module URL works; a data: URL keeps the example self-contained.
 * const withoutData: Transform = {
 *   module: "data:text/javascript,export const strip = ({ data, ...rest }) => rest;",
 *   export: "strip",
 * };
 * const cache: CacheOptions = {
 *   defaultTransform: "stripManagedFields",
 *   byObject: [{ kind: { apiVersion: "v1", kind: "Secret" }, transform: withoutData }],
 * };
 * ```
 */
export type Transform = "stripManagedFields" | ModuleFunction;

/**
 * How an index computes its values from an object: a dotted field path (`spec.providerID`), or a
 * {@linkcode ModuleFunction} returning a string or an array of strings.
 *
 * @example A field path and a function
 * ```ts
 * import type { IndexExtractor } from "@fleetkit/clustercache";
 *
 * const byNode: IndexExtractor = { fieldPath: "spec.nodeName" };
 * const byTeam: IndexExtractor = {
 *   module: "data:text/javascript,export const team = (o) => o.metadata?.labels?.team ?? [];",
 *   export: "team",
 * };
 * ```
 */
export type IndexExtractor = { fieldPath: string } | ModuleFunction;

/**
 * An index added to the cache of one kind; list with `fieldSelector: "<field>=<value>"` to use it.
 *
 * @example Pods by node
 * ```ts
 * import type { CacheIndex } from "@fleetkit/clustercache";
 *
 * const podsByNode: CacheIndex = {
 *   kind: { apiVersion: "v1", kind: "Pod" },
 *   field: "spec.nodeName",
 *   extract: { fieldPath: "spec.nodeName" },
 * };
 * // Then: reader.list(Pod, { fieldSelector: "spec.nodeName=node-1" }) is answered by the index.
 * ```
 */
export interface CacheIndex {
  /** The kind indexed. */
  kind: KindRef;
  /** The index name, used as the field in field selectors. */
  field: string;
  /** How values are computed. */
  extract: IndexExtractor;
}

/**
 * Restricts what the cache holds for one kind.
 *
 * @example Caching only the Secrets an operator owns
 * ```ts
 * import type { ByObject } from "@fleetkit/clustercache";
 *
 * const secrets: ByObject = {
 *   kind: { apiVersion: "v1", kind: "Secret" },
 *   labelSelector: "app.kubernetes.io/managed-by=my-operator",
 *   fieldSelector: "metadata.namespace=my-operator-system",
 * };
 * ```
 */
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

/**
 * Options of the caches created per workload cluster.
 *
 * @example Only labelled ConfigMaps, indexed by a label, listed through the index
 * ```ts
 * import assert from "node:assert/strict";
 * import { KubeConfig } from "@kubernetes/client-node";
 * import { type CacheOptions, ClusterCache } from "@fleetkit/clustercache";
 * import { SimulatedFleet } from "@fleetkit/clustercache/testing";
 *
 * const ConfigMap = { apiVersion: "v1", kind: "ConfigMap" };
 * const cacheOptions: CacheOptions = {
 *   byObject: [{ kind: ConfigMap, labelSelector: "team" }],
 *   indexes: [{
 *     kind: ConfigMap,
 *     field: "team",
 *     extract: {
 *       module: "data:text/javascript,export const team = (o) => o.metadata.labels.team;",
 *       export: "team",
 *     },
 *   }],
 *   defaultTransform: "stripManagedFields",
 * };
 *
 * await using fleet = await SimulatedFleet.start({ clusters: 1 });
 * const server = fleet.cluster("workload-1");
 * const type = server.typeOf("", "configmaps")!;
 * for (const [name, team] of [["a", "blue"], ["b", "red"], ["c", undefined]] as const) {
 *   const labels: Record<string, string> = team ? { team } : {};
 *   server.store.create(type, { metadata: { namespace: "default", name, labels } });
 * }
 * const management = new KubeConfig();
 * management.loadFromString(fleet.managementKubeconfig());
 * await using cache = await ClusterCache.setup({
 *   management,
 *   client: { userAgent: "docs" },
 *   cache: cacheOptions,
 * });
 * for await (const cluster of cache.getClusterSource("docs", (c) => [{
 *   namespace: c.metadata!.namespace!,
 *   name: c.metadata!.name!,
 * }])) {
 *   const reader = cache.getReader(cluster);
 *   assert.equal((await reader.list(ConfigMap)).items.length, 2, "the unlabelled one is not cached");
 *   const blue = await reader.list(ConfigMap, { fieldSelector: "team=blue" });
 *   assert.deepEqual(blue.items.map((c) => c.metadata?.name), ["a"]);
 *   break;
 * }
 * ```
 */
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
 * @example Finding the workload cluster's Node of a machine
 * ```ts
 * import assert from "node:assert/strict";
 * import { KubeConfig } from "@kubernetes/client-node";
 * import { ClusterCache, NodeProviderIDIndex } from "@fleetkit/clustercache";
 * import { SimulatedFleet } from "@fleetkit/clustercache/testing";
 *
 * await using fleet = await SimulatedFleet.start({ clusters: 1 });
 * const management = new KubeConfig();
 * management.loadFromString(fleet.managementKubeconfig());
 * await using cache = await ClusterCache.setup({
 *   management,
 *   client: { userAgent: "docs" },
 *   cache: { indexes: [NodeProviderIDIndex] },
 * });
 * for await (const cluster of cache.getClusterSource("docs", (c) => [{
 *   namespace: c.metadata!.namespace!,
 *   name: c.metadata!.name!,
 * }])) {
 *   const nodes = await cache.getReader(cluster).list({ apiVersion: "v1", kind: "Node" }, {
 *     fieldSelector: "spec.providerID=sim://workload-1/workload-1-control-plane",
 *   });
 *   assert.equal(nodes.items.length, 1);
 *   break;
 * }
 * ```
 */
export const NodeProviderIDIndex: CacheIndex = {
  kind: { apiVersion: "v1", kind: "Node" },
  field: "spec.providerID",
  extract: { fieldPath: "spec.providerID" },
};

/** What the workers need besides their API server to load the cache's modules. */
export interface ModuleAccess {
  /** Directories of `file:` modules (the module and its relative imports beside or below it). */
  readDirs: string[];
  /** Hosts of `https:` modules. */
  importHosts: string[];
}

function checkKindRef(kind: unknown, at: string): void {
  const k = kind as KindRef | undefined;
  if (!k || typeof k.apiVersion !== "string" || typeof k.kind !== "string" || k.kind === "") {
    throw new TypeError(`${at} must be { apiVersion, kind } strings`);
  }
}

function checkModule(ref: unknown, at: string, access: ModuleAccess): void {
  const r = ref as Partial<ModuleFunction> | undefined;
  if (!r || typeof r.module !== "string" || typeof r.export !== "string" || r.export === "") {
    throw new TypeError(`${at} must be { module, export } strings`);
  }
  let url: URL;
  try {
    url = new URL(r.module);
  } catch {
    throw new TypeError(`${at}.module must be an absolute URL (file:, https: or data:)`);
  }
  if (url.protocol === "file:") {
    const path = decodeURIComponent(url.pathname);
    access.readDirs.push(path.slice(0, path.lastIndexOf("/")) || "/");
  } else if (url.protocol === "https:") {
    access.importHosts.push(url.host);
  } else if (url.protocol !== "data:") {
    throw new TypeError(`${at}.module must be a file:, https: or data: URL, not ${url.protocol}`);
  }
}

function checkTransform(transform: unknown, at: string, access: ModuleAccess): void {
  if (transform === undefined || transform === "stripManagedFields") return;
  checkModule(transform, at, access);
}

/**
 * Checks cache options once, at setup (a mistake is a `TypeError` naming the option, not a failed
 * connect of every cluster), and works out what the workers need to load their modules.
 *
 * @throws {TypeError} For a malformed kind, index, selector type, transform or module URL.
 * @throws {RangeError} For a non-positive `syncPeriodMs`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkCacheOptions } from "./cache_options.ts";
 * const access = checkCacheOptions({
 *   defaultTransform: { module: "file:///srv/op/transforms/strip.ts", export: "strip" },
 * });
 * assert.deepEqual(access, { readDirs: ["/srv/op/transforms"], importHosts: [] });
 * assert.throws(() => checkCacheOptions({ defaultTransform: { module: "./x.ts", export: "f" } }));
 * ```
 */
export function checkCacheOptions(cache: CacheOptions): ModuleAccess {
  const access: ModuleAccess = { readDirs: [], importHosts: [] };
  (cache.indexes ?? []).forEach((index, i) => {
    const at = `options.cache.indexes[${i}]`;
    checkKindRef(index?.kind, `${at}.kind`);
    if (typeof index.field !== "string" || index.field === "") {
      throw new TypeError(`${at}.field must be a non-empty string`);
    }
    const extract = index.extract as Partial<{ fieldPath: unknown }> | undefined;
    if (extract && "fieldPath" in extract) {
      if (typeof extract.fieldPath !== "string" || extract.fieldPath === "") {
        throw new TypeError(`${at}.extract.fieldPath must be a non-empty string`);
      }
    } else checkModule(extract, `${at}.extract`, access);
  });
  (cache.byObject ?? []).forEach((byObject, i) => {
    const at = `options.cache.byObject[${i}]`;
    checkKindRef(byObject?.kind, `${at}.kind`);
    for (const field of ["labelSelector", "fieldSelector"] as const) {
      if (byObject[field] !== undefined && typeof byObject[field] !== "string") {
        throw new TypeError(`${at}.${field} must be a string`);
      }
    }
    checkTransform(byObject.transform, `${at}.transform`, access);
  });
  checkTransform(cache.defaultTransform, "options.cache.defaultTransform", access);
  if (
    cache.syncPeriodMs !== undefined &&
    (typeof cache.syncPeriodMs !== "number" || !(cache.syncPeriodMs > 0))
  ) {
    throw new RangeError(`options.cache.syncPeriodMs must be positive, got ${cache.syncPeriodMs}`);
  }
  return {
    readDirs: [...new Set(access.readDirs)],
    importHosts: [...new Set(access.importHosts)],
  };
}
