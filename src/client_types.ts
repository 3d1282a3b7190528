/**
 * The client interfaces handed out per workload cluster: {@linkcode Reader} (get and list) and
 * {@linkcode Client} (reads plus writes), with their options.
 *
 * @module
 */

import type { JsonPatchOperation } from "./json_patch.ts";
import type { KindRef, KubeList, KubeObject } from "./kube_object.ts";

/** Options every call takes. */
export interface CallOptions {
  /** Cancels the call. */
  signal?: AbortSignal;
}

/** Options of `list`. */
export interface ListOptions extends CallOptions {
  /** Restrict to one namespace; absent or `""` lists all namespaces. */
  namespace?: string;
  /** A label selector, e.g. `app=web,tier in (a,b)`. */
  labelSelector?: string;
  /**
   * A field selector. Cached lists support `metadata.name`, `metadata.namespace` and indexed fields,
   * with `=` only.
   */
  fieldSelector?: string;
  /** Page size of live lists (cached lists return everything). */
  limit?: number;
  /** Continue token from a previous live page. */
  continue?: string;
}

/** Options of `create`, `update` and `patch`. */
export interface WriteOptions extends CallOptions {
  /** Validate without persisting (`dryRun=All`). */
  dryRun?: boolean;
  /** Field manager name sent to the server. */
  fieldManager?: string;
  /** Write the `status` subresource instead of the object. */
  subresource?: "status";
}

/** Options of `delete`. */
export interface DeleteOptions extends CallOptions {
  /** Validate without deleting. */
  dryRun?: boolean;
  /** How dependents are deleted. */
  propagationPolicy?: "Orphan" | "Background" | "Foreground";
  /** Delete only if the object still has this UID and/or resourceVersion. */
  preconditions?: { uid?: string; resourceVersion?: string };
  /** Grace period; 0 deletes immediately. */
  gracePeriodSeconds?: number;
}

/**
 * A patch: `merge` (RFC 7386), `strategic` (built-in kinds), `json` (RFC 6902) or server-side
 * `apply` (needs a field manager).
 *
 * @example
 * ```ts
 * import type { Patch } from "./client_types.ts";
 * const scale: Patch = { type: "merge", patch: { spec: { replicas: 3 } } };
 * const label: Patch = { type: "json", patch: [{ op: "add", path: "/metadata/labels/a", value: "b" }] };
 * ```
 */
export type Patch =
  | { type: "merge" | "strategic"; patch: Record<string, unknown> }
  | { type: "json"; patch: JsonPatchOperation[] }
  | { type: "apply"; patch: KubeObject; fieldManager: string; force?: boolean };

/** An object key as callers pass it: `namespace` may be omitted for cluster-scoped objects. */
export interface ObjectRef {
  /** Namespace; omit or `""` for cluster-scoped objects. */
  namespace?: string;
  /** Name. */
  name: string;
}

/**
 * Reads objects of a workload cluster. The cached reader serves from the cluster's informer cache,
 * starting the kind's informer on first use and waiting until it has synced.
 *
 * @example Reading from the cache
 * ```ts ignore
 * const reader = await cache.getReader({ namespace: "default", name: "workload-1" });
 * const node = await reader.get({ apiVersion: "v1", kind: "Node" }, { name: "node-1" });
 * const pods = await reader.list({ apiVersion: "v1", kind: "Pod" }, { namespace: "kube-system" });
 * ```
 */
export interface Reader {
  /**
   * Reads one object.
   *
   * @throws {KubernetesApiError} NotFound when it does not exist.
   * @throws {ClusterNotConnectedError} When the cluster is not connected.
   */
  get<T extends KubeObject = KubeObject>(
    kind: KindRef,
    key: ObjectRef,
    options?: CallOptions,
  ): Promise<T>;
  /** Lists objects of a kind. */
  list<T extends KubeObject = KubeObject>(
    kind: KindRef,
    options?: ListOptions,
  ): Promise<KubeList<T>>;
}

/** Reads (see {@linkcode Reader}) and writes objects of a workload cluster. Writes always go live. */
export interface Client extends Reader {
  /** Creates an object (its `apiVersion` and `kind` say which kind). */
  create<T extends KubeObject = KubeObject>(object: NoInfer<T>, options?: WriteOptions): Promise<T>;
  /** Replaces an object; a stale `metadata.resourceVersion` fails with 409 Conflict. */
  update<T extends KubeObject = KubeObject>(object: NoInfer<T>, options?: WriteOptions): Promise<T>;
  /** Patches an object. */
  patch<T extends KubeObject = KubeObject>(
    kind: KindRef,
    key: ObjectRef,
    patch: Patch,
    options?: WriteOptions,
  ): Promise<T>;
  /** Deletes an object (with finalizers it only gets a deletion timestamp). */
  delete(kind: KindRef, key: ObjectRef, options?: DeleteOptions): Promise<void>;
}

/** One change seen by a watch. */
export type WatchEvent<T extends KubeObject = KubeObject> =
  | { type: "add"; object: T }
  | { type: "update"; object: T; oldObject: T }
  | { type: "delete"; object: T };
