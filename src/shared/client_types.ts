/**
 * The client interfaces handed out per workload cluster: {@linkcode Reader} (get and list) and
 * {@linkcode Client} (reads plus writes), with their options.
 *
 * @module
 */

import type { KindRef, KubeList, KubeObject } from "./kube_object.ts";

/**
 * Options every call takes.
 *
 * @example Giving up on a read after a deadline
 * ```ts
 * import type { CallOptions } from "@fleetkit/clustercache";
 * import { FakeClient } from "@fleetkit/clustercache/testing";
 *
 * const options: CallOptions = { signal: AbortSignal.timeout(5_000) };
 * const namespaces = await new FakeClient().list({ apiVersion: "v1", kind: "Namespace" }, options);
 * ```
 */
export interface CallOptions {
  /** Cancels the call. */
  signal?: AbortSignal;
}

/**
 * Options of `list`.
 *
 * @example Listing by namespace and label
 * ```ts
 * import assert from "node:assert/strict";
 * import type { ListOptions } from "@fleetkit/clustercache";
 * import { FakeClient } from "@fleetkit/clustercache/testing";
 *
 * const pod = (name: string, app: string) => ({
 *   apiVersion: "v1",
 *   kind: "Pod",
 *   metadata: { namespace: "default", name, labels: { app } },
 * });
 * const client = new FakeClient({ objects: [pod("a", "web"), pod("b", "db")] });
 * const options: ListOptions = { namespace: "default", labelSelector: "app in (web,api)" };
 * const pods = await client.list({ apiVersion: "v1", kind: "Pod" }, options);
 * assert.deepEqual(pods.items.map((p) => p.metadata?.name), ["a"]);
 * ```
 */
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

/**
 * Options of `create`, `update` and `patch`.
 *
 * @example A dry run changes nothing
 * ```ts
 * import assert from "node:assert/strict";
 * import { isNotFound, type WriteOptions } from "@fleetkit/clustercache";
 * import { FakeClient } from "@fleetkit/clustercache/testing";
 *
 * const client = new FakeClient();
 * const options: WriteOptions = { dryRun: true, fieldManager: "my-operator" };
 * const cm = { apiVersion: "v1", kind: "ConfigMap", metadata: { namespace: "default", name: "a" } };
 * await client.create(cm, options);
 * await assert.rejects(client.get(cm, cm.metadata), isNotFound);
 * ```
 */
export interface WriteOptions extends CallOptions {
  /** Validate without persisting (`dryRun=All`). */
  dryRun?: boolean;
  /** Field manager name sent to the server. */
  fieldManager?: string;
  /** Write the `status` subresource instead of the object. */
  subresource?: "status";
}

/**
 * Options of `delete`.
 *
 * @example Deleting only the object that was read
 * ```ts
 * import assert from "node:assert/strict";
 * import { type DeleteOptions, isConflict } from "@fleetkit/clustercache";
 * import { FakeClient } from "@fleetkit/clustercache/testing";
 *
 * const kind = { apiVersion: "v1", kind: "ConfigMap" };
 * const key = { namespace: "default", name: "a" };
 * const client = new FakeClient({ objects: [{ ...kind, metadata: key }] });
 * const seen = await client.get(kind, key);
 * await client.update({ ...seen, data: { changed: "yes" } }); // someone else writes in between
 * const options: DeleteOptions = {
 *   preconditions: { resourceVersion: seen.metadata!.resourceVersion! },
 * };
 * await assert.rejects(client.delete(kind, key, options), isConflict);
 * ```
 */
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
 * @example Merge and JSON patches
 * ```ts
 * import assert from "node:assert/strict";
 * import type { Patch } from "@fleetkit/clustercache";
 * import { FakeClient } from "@fleetkit/clustercache/testing";
 *
 * const kind = { apiVersion: "v1", kind: "ConfigMap" };
 * const key = { namespace: "default", name: "a" };
 * const client = new FakeClient({ objects: [{ ...kind, metadata: key, data: { x: "1" } }] });
 * const merge: Patch = { type: "merge", patch: { data: { y: "2" } } };
 * const json: Patch = { type: "json", patch: [{ op: "remove", path: "/data/x" }] };
 * await client.patch(kind, key, merge);
 * const patched = await client.patch<{ data?: Record<string, string> }>(kind, key, json);
 * assert.deepEqual(patched.data, { y: "2" });
 * ```
 */
export type Patch =
  | { type: "merge" | "strategic"; patch: Record<string, unknown> }
  | { type: "json"; patch: JsonPatchOperation[] }
  | { type: "apply"; patch: KubeObject; fieldManager: string; force?: boolean };

/**
 * An object key as callers pass it: `namespace` may be omitted for cluster-scoped objects.
 *
 * @example Namespaced and cluster-scoped keys
 * ```ts
 * import type { ObjectRef } from "@fleetkit/clustercache";
 * import { FakeClient } from "@fleetkit/clustercache/testing";
 *
 * const client = new FakeClient();
 * const namespace: ObjectRef = { name: "default" };
 * await client.get({ apiVersion: "v1", kind: "Namespace" }, namespace);
 * const config: ObjectRef = { namespace: "default", name: "settings" };
 * await client.create({ apiVersion: "v1", kind: "ConfigMap", metadata: { ...config } });
 * ```
 */
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
 * @example Reading a workload cluster from the cache
 * ```ts
 * import assert from "node:assert/strict";
 * import { KubeConfig } from "@kubernetes/client-node";
 * import { ClusterCache, type Reader } from "@fleetkit/clustercache";
 * import { SimulatedFleet } from "@fleetkit/clustercache/testing";
 *
 * await using fleet = await SimulatedFleet.start({ clusters: 1 });
 * const management = new KubeConfig();
 * management.loadFromString(fleet.managementKubeconfig());
 * await using cache = await ClusterCache.setup({ management, client: { userAgent: "docs" } });
 * const source = cache.getClusterSource("docs", (c) => [{
 *   namespace: c.metadata!.namespace!,
 *   name: c.metadata!.name!,
 * }]);
 * for await (const cluster of source) {
 *   const reader: Reader = cache.getReader(cluster); // served by the cluster's worker
 *   const namespaces = await reader.list({ apiVersion: "v1", kind: "Namespace" });
 *   const system = await reader.get({ apiVersion: "v1", kind: "Namespace" }, { name: "kube-system" });
 *   assert.ok(namespaces.items.length > 0 && system.metadata?.uid);
 *   break;
 * }
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

/**
 * Reads (see {@linkcode Reader}) and writes objects of a workload cluster. Writes always go live.
 *
 * @example Create, update with optimistic concurrency, delete
 * ```ts
 * import assert from "node:assert/strict";
 * import { type Client, isConflict, type KubeObject } from "@fleetkit/clustercache";
 * import { FakeClient } from "@fleetkit/clustercache/testing";
 *
 * interface ConfigMap extends KubeObject {
 *   data?: Record<string, string>;
 * }
 * const kind = { apiVersion: "v1", kind: "ConfigMap" };
 * const key = { namespace: "default", name: "settings" };
 * const client: Client = new FakeClient(); // in production: cache.getClient(cluster)
 * const created = await client.create<ConfigMap>({
 *   ...kind,
 *   metadata: { ...key },
 *   data: { level: "info" },
 * });
 * const updated = await client.update<ConfigMap>({ ...created, data: { level: "debug" } });
 * // Writing from the stale copy again fails instead of losing the update.
 * await assert.rejects(client.update<ConfigMap>({ ...created, data: { level: "warn" } }), isConflict);
 * await client.delete(kind, key);
 * ```
 */
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

/**
 * One change seen by a watch.
 *
 * @example A handler that treats each type of event
 * ```ts
 * import type { KubeObject, WatchEvent } from "@fleetkit/clustercache";
 *
 * function describe(event: WatchEvent<KubeObject>): string {
 *   const name = event.object.metadata?.name;
 *   switch (event.type) {
 *     case "add":
 *       return `added ${name}`;
 *     case "update":
 *       return `${name}: ${event.oldObject.metadata?.resourceVersion} -> ${event.object.metadata?.resourceVersion}`;
 *     case "delete":
 *       return `deleted ${name}`;
 *   }
 * }
 * describe({ type: "add", object: { apiVersion: "v1", kind: "Pod", metadata: { name: "p" } } });
 * ```
 */
export type WatchEvent<T extends KubeObject = KubeObject> =
  | { type: "add"; object: T }
  | { type: "update"; object: T; oldObject: T }
  | { type: "delete"; object: T };

/**
 * A JSON value.
 *
 * @example A value for a JSON Patch operation
 * ```ts
 * import type { JsonValue } from "@fleetkit/clustercache";
 *
 * const value: JsonValue = { replicas: 3, paused: false, labels: ["a", "b"], owner: null };
 * ```
 */
export type JsonValue = null | boolean | number | string | JsonValue[] | {
  [key: string]: JsonValue;
};

/**
 * One operation of an RFC 6902 JSON Patch.
 *
 * @example Test-and-set: change a field only if it still holds what was read
 * ```ts
 * import assert from "node:assert/strict";
 * import type { JsonPatchOperation } from "@fleetkit/clustercache";
 * import { FakeClient } from "@fleetkit/clustercache/testing";
 *
 * const kind = { apiVersion: "v1", kind: "ConfigMap" };
 * const key = { namespace: "default", name: "a" };
 * const client = new FakeClient({ objects: [{ ...kind, metadata: key, data: { mode: "blue" } }] });
 * const flip: JsonPatchOperation[] = [
 *   { op: "test", path: "/data/mode", value: "blue" },
 *   { op: "replace", path: "/data/mode", value: "green" },
 * ];
 * await client.patch(kind, key, { type: "json", patch: flip });
 * // The test now fails: the server refuses the whole patch.
 * await assert.rejects(client.patch(kind, key, { type: "json", patch: flip }));
 * ```
 */
export type JsonPatchOperation =
  | { op: "add" | "replace" | "test"; path: string; value: JsonValue }
  | { op: "remove"; path: string }
  | { op: "move" | "copy"; from: string; path: string };
