/**
 * One simulated cluster's storage: objects of every kind, one monotonic integer resourceVersion for
 * the whole cluster (like etcd's revision), a bounded history of changes for watches and consistent
 * paging, UIDs, `generateName`, generation tracking and finalizer-aware deletion.
 *
 * Stored objects are never mutated: every write stores a new object, so history entries and list
 * snapshots can share them safely.
 *
 * @module
 */

import type { KubeObject, ObjectMeta } from "../../src/shared/kube_object.ts";
import { type ManagedFieldsEntry, recordUpdate } from "./field_manager.ts";
import { groupVersion, NAMESPACE_TYPE, resourceId, type ResourceType } from "./resource_types.ts";
import { errors } from "./status.ts";

/**
 * One change, as watches see it.
 *
 * @example Recording changes as they are persisted
 * ```ts
 * import assert from "node:assert/strict";
 * import { SimulatedApiServer, type StoreEvent } from "@fleetkit/clustercache/testing";
 *
 * await using server = await SimulatedApiServer.start({ name: "recorded" });
 * const events: StoreEvent[] = [];
 * const unsubscribe = server.store.subscribe((event) => events.push(event));
 * const configmaps = server.typeOf("", "configmaps")!;
 * const cm = server.store.create(configmaps, { metadata: { namespace: "default", name: "a" } });
 * server.store.update(configmaps, { ...cm, data: { x: "1" } });
 * server.store.delete(configmaps, "default", "a");
 * unsubscribe();
 * assert.deepEqual(events.map((e) => `${e.type} ${e.resource}`), [
 *   "ADDED configmaps",
 *   "MODIFIED configmaps",
 *   "DELETED configmaps",
 * ]);
 * ```
 */
export interface StoreEvent {
  /** The version the change was stamped with. */
  readonly resourceVersion: number;
  /** What happened. */
  readonly type: "ADDED" | "MODIFIED" | "DELETED";
  /** `group/plural` of the changed object (`plural` for the core group). */
  readonly resource: string;
  /** The object after the change; for DELETED, its last state stamped with the deletion version. */
  readonly object: KubeObject;
  /** The object before the change (MODIFIED and DELETED). */
  readonly previous?: KubeObject;
}

/**
 * Options for writes.
 *
 * @example Seeding an object with a status, as a controller would have written it
 * ```ts
 * import assert from "node:assert/strict";
 * import { SimulatedApiServer, type StoreWriteOptions } from "@fleetkit/clustercache/testing";
 *
 * await using server = await SimulatedApiServer.start({ name: "seeded" });
 * const deployments = server.typeOf("apps", "deployments")!;
 * const options: StoreWriteOptions = { keepStatus: true, fieldManager: "kube-controller-manager" };
 * const created = server.store.create(deployments, {
 *   metadata: { namespace: "default", name: "web" },
 *   spec: { replicas: 2 },
 *   status: { readyReplicas: 2 },
 * }, options);
 * assert.deepEqual(created.status, { readyReplicas: 2 });
 * ```
 */
export interface StoreWriteOptions {
  /** `"status"` writes only `.status`; otherwise status changes are ignored for kinds with a status subresource. */
  subresource?: "status";
  /** Keep `.status` given on create (the simulator's own seeding does; API clients do not). */
  keepStatus?: boolean;
  /** Persist nothing (`dryRun=All`). */
  dryRun?: boolean;
  /** Who writes: recorded in `metadata.managedFields`, as kube-apiserver does (absent: not recorded). */
  fieldManager?: string;
  /** `"Apply"` for server-side apply, else `"Update"`. */
  operation?: "Apply" | "Update";
  /** The managed fields server-side apply computed (other writes compute their own). */
  managedFields?: ManagedFieldsEntry[];
}

/**
 * Preconditions of a delete.
 *
 * @example Deleting only the object that was read
 * ```ts
 * import assert from "node:assert/strict";
 * import { type DeletePreconditions, SimulatedApiServer } from "@fleetkit/clustercache/testing";
 *
 * await using server = await SimulatedApiServer.start({ name: "careful" });
 * const configmaps = server.typeOf("", "configmaps")!;
 * const read = server.store.create(configmaps, { metadata: { namespace: "default", name: "a" } });
 * server.store.update(configmaps, { ...read, data: { changed: "yes" } });
 * const preconditions: DeletePreconditions = { resourceVersion: read.metadata!.resourceVersion! };
 * assert.throws(() => server.store.delete(configmaps, "default", "a", preconditions));
 * ```
 */
export interface DeletePreconditions {
  /** Delete only the object with this UID. */
  uid?: string;
  /** Delete only at this resourceVersion. */
  resourceVersion?: string;
}

const NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789";
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** The namespaces every cluster starts with. */
export const INITIAL_NAMESPACES = ["default", "kube-system", "kube-public", "kube-node-lease"];

function keyOf(namespace: string, name: string): string {
  return namespace ? `${namespace}/${name}` : name;
}

/** What generation tracks: everything but metadata, and but status where status is a subresource. */
function specOf(object: KubeObject, type: ResourceType): string {
  const { metadata: _m, status, apiVersion: _a, kind: _k, ...rest } = object;
  return JSON.stringify(type.statusSubresource ? rest : { ...rest, status });
}

function withoutVolatile(object: KubeObject): string {
  const { resourceVersion: _rv, managedFields: _mf, ...meta } = object.metadata ?? {};
  return JSON.stringify({ ...object, metadata: meta });
}

/**
 * One resource's recent events, as kube-apiserver's watch cache keeps them: a bounded ring, so a
 * flood of writes to one kind never expires another kind's history.
 */
class History {
  readonly #size: number;
  #events: StoreEvent[] = [];
  #start = 0;
  /** Versions at or below this are gone. */
  evictedUpTo: number;

  constructor(size: number, evictedUpTo: number) {
    this.#size = size;
    this.evictedUpTo = evictedUpTo;
  }

  push(event: StoreEvent): void {
    if (this.#events.length < this.#size) {
      this.#events.push(event);
      return;
    }
    this.evictedUpTo = this.#events[this.#start]!.resourceVersion;
    this.#events[this.#start] = event;
    this.#start = (this.#start + 1) % this.#size;
  }

  /** Oldest first. */
  *events(): Generator<StoreEvent> {
    for (let i = 0; i < this.#events.length; i++) {
      yield this.#events[(this.#start + i) % this.#events.length]!;
    }
  }

  /** Newest first. */
  *newestFirst(): Generator<StoreEvent> {
    for (let i = this.#events.length - 1; i >= 0; i--) {
      yield this.#events[(this.#start + i) % this.#events.length]!;
    }
  }
}

/**
 * A per-cluster object store with history.
 *
 * @example Changing a cluster's state without HTTP
 * ```ts
 * import assert from "node:assert/strict";
 * import { SimulatedApiServer } from "@fleetkit/clustercache/testing";
 *
 * await using server = await SimulatedApiServer.start({ name: "direct" });
 * const nodes = server.typeOf("", "nodes")!;
 * const before = server.store.resourceVersion;
 * server.store.create(nodes, { metadata: { name: "node-1" }, spec: { providerID: "sim://1" } });
 * assert.equal(server.store.resourceVersion, before + 1);
 * assert.equal(server.store.list(nodes).length, 1);
 * ```
 */
export class ObjectStore {
  #rv = 0;
  /** History below this is gone for every resource (a restart that jumped). */
  #floor = 0;
  readonly #collections = new Map<string, Map<string, KubeObject>>();
  readonly #histories = new Map<string, History>();
  readonly #historySize: number;
  readonly #listeners = new Set<(event: StoreEvent) => void>();

  /**
   * Creates an empty store.
   *
   * @param historySize How many events of each resource watches and continuations can reach back
   *   (older → 410).
   */
  constructor(historySize = 1000) {
    this.#historySize = Math.max(1, historySize);
  }

  /** The latest resourceVersion issued. */
  get resourceVersion(): number {
    return this.#rv;
  }

  /**
   * Versions below this are gone from every resource's history: watching or continuing from them
   * gives 410.
   */
  get oldestReachableVersion(): number {
    let oldest = this.#floor;
    for (const history of this.#histories.values()) {
      oldest = Math.max(oldest, history.evictedUpTo);
    }
    return oldest;
  }

  /** Versions below this are gone from the history of `type`'s resource. */
  oldestReachableVersionOf(type: Pick<ResourceType, "group" | "plural">): number {
    return this.#histories.get(resourceId(type))?.evictedUpTo ?? this.#floor;
  }

  #history(resource: string): History {
    let history = this.#histories.get(resource);
    if (!history) {
      this.#histories.set(resource, history = new History(this.#historySize, this.#floor));
    }
    return history;
  }

  /** Calls `listener` synchronously after every persisted change. */
  subscribe(listener: (event: StoreEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #collection(type: ResourceType): Map<string, KubeObject> {
    const id = resourceId(type);
    let collection = this.#collections.get(id);
    if (!collection) {
      collection = new Map();
      this.#collections.set(id, collection);
    }
    return collection;
  }

  /** Reads one object in storage form, or `undefined`. */
  get(type: ResourceType, namespace: string, name: string): KubeObject | undefined {
    return this.#collections.get(resourceId(type))?.get(
      keyOf(type.namespaced ? namespace : "", name),
    );
  }

  /** Current objects of a kind (all namespaces, or one), unsorted. */
  list(type: ResourceType, namespace?: string): KubeObject[] {
    const collection = this.#collections.get(resourceId(type));
    if (!collection) return [];
    const all = [...collection.values()];
    return namespace ? all.filter((o) => o.metadata?.namespace === namespace) : all;
  }

  /** How many objects of a kind exist. */
  count(type: ResourceType): number {
    return this.#collections.get(resourceId(type))?.size ?? 0;
  }

  /**
   * The objects of a kind as they were at `resourceVersion`, rebuilt from history, or `undefined`
   * when history no longer reaches back that far (or the version is in the future).
   */
  listAt(type: ResourceType, resourceVersion: number): KubeObject[] | undefined {
    if (resourceVersion > this.#rv || resourceVersion < this.oldestReachableVersionOf(type)) {
      return undefined;
    }
    const id = resourceId(type);
    const state = new Map(this.#collections.get(id) ?? []);
    for (const event of this.#histories.get(id)?.newestFirst() ?? []) {
      if (event.resourceVersion <= resourceVersion) break;
      const key = keyOf(event.object.metadata?.namespace ?? "", event.object.metadata?.name ?? "");
      if (event.type === "ADDED") state.delete(key);
      else state.set(key, event.previous!);
    }
    return [...state.values()];
  }

  /**
   * Events of `type`'s resource after `resourceVersion`, oldest first, or `"expired"` when its
   * history no longer covers them.
   */
  eventsSince(
    type: Pick<ResourceType, "group" | "plural">,
    resourceVersion: number,
  ): StoreEvent[] | "expired" {
    if (resourceVersion < this.oldestReachableVersionOf(type)) return "expired";
    const out: StoreEvent[] = [];
    for (const event of this.#histories.get(resourceId(type))?.events() ?? []) {
      if (event.resourceVersion > resourceVersion) out.push(event);
    }
    return out;
  }

  #record(event: StoreEvent): void {
    this.#history(event.resource).push(event);
    for (const listener of this.#listeners) listener(event);
  }

  #stamp(object: KubeObject, type: ResourceType, meta: ObjectMeta): KubeObject {
    // ObjectMeta's maps and lists are omitempty: an empty one is not stored (a patch that sets
    // `annotations: {}` leaves none, as on kube-apiserver).
    const trimmed = { ...meta } as Record<string, unknown>;
    for (const field of ["labels", "annotations", "finalizers", "ownerReferences"]) {
      const value = trimmed[field];
      if (value && typeof value === "object" && Object.keys(value).length === 0) {
        delete trimmed[field];
      }
    }
    return {
      ...object,
      apiVersion: groupVersion(type.group, type.storageVersion),
      kind: type.kind,
      metadata: trimmed as ObjectMeta,
    };
  }

  #validate(type: ResourceType, name: string, namespace: string): void {
    const causes: { field: string; message: string }[] = [];
    const nameRule = type.kind === "Namespace" ? DNS_LABEL : DNS_SUBDOMAIN;
    const max = type.kind === "Namespace" ? 63 : 253;
    if (name.length > max || !nameRule.test(name)) {
      causes.push({
        field: "metadata.name",
        message: `Invalid value: "${name}": a lowercase RFC 1123 ${
          type.kind === "Namespace" ? "label" : "subdomain"
        } must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character`,
      });
    }
    if (type.namespaced && !namespace) {
      causes.push({ field: "metadata.namespace", message: "Required value" });
    }
    if (causes.length > 0) throw errors.invalid(type.kind, name, causes);
  }

  /**
   * Creates an object. Fills `uid`, `resourceVersion`, `creationTimestamp`, `generation` and a name
   * from `generateName`.
   *
   * @throws {StatusError} AlreadyExists, Invalid, or NotFound for a missing namespace.
   */
  create(type: ResourceType, input: KubeObject, options: StoreWriteOptions = {}): KubeObject {
    const meta: ObjectMeta = { ...(input.metadata ?? {}) };
    const namespace = type.namespaced ? meta.namespace ?? "" : "";
    if (!meta.name) {
      if (!meta.generateName) {
        throw errors.invalid(type.kind, "", [{
          field: "metadata.name",
          message: "Required value: name or generateName is required",
        }]);
      }
      const collection = this.#collection(type);
      do {
        let suffix = "";
        for (let i = 0; i < 5; i++) {
          suffix += NAME_CHARS[Math.floor(Math.random() * NAME_CHARS.length)];
        }
        meta.name = meta.generateName + suffix;
      } while (collection.has(keyOf(namespace, meta.name)));
    }
    this.#validate(type, meta.name, namespace);
    if (type.namespaced && !this.get(NAMESPACE_TYPE, "", namespace)) {
      throw errors.notFound("", "namespaces", namespace);
    }
    const collection = this.#collection(type);
    const key = keyOf(namespace, meta.name);
    if (collection.has(key)) throw errors.alreadyExists(type.group, type.plural, meta.name);
    if (type.namespaced) meta.namespace = namespace;
    else delete meta.namespace;
    delete meta.deletionTimestamp;
    delete meta.deletionGracePeriodSeconds;
    delete meta.managedFields;
    const managed = options.managedFields ??
      (options.fieldManager
        ? recordUpdate(undefined, input, options.fieldManager, type, options.subresource)
        : undefined);
    if (managed) meta.managedFields = managed as unknown[];
    meta.uid = crypto.randomUUID();
    meta.creationTimestamp = new Date(Math.floor(Date.now() / 1000) * 1000).toISOString().replace(
      ".000Z",
      "Z",
    );
    if (type.generation) meta.generation = 1;
    else delete meta.generation;
    const body = structuredClone(input);
    if (type.statusSubresource && !options.keepStatus) delete body.status;
    if (type.kind === "Namespace") {
      body.status = { phase: "Active" };
    }
    if (options.dryRun) return this.#stamp(body, type, { ...meta, resourceVersion: "" });
    meta.resourceVersion = String(++this.#rv);
    const object = this.#stamp(body, type, meta);
    collection.set(key, object);
    this.#record({ resourceVersion: this.#rv, type: "ADDED", resource: resourceId(type), object });
    return object;
  }

  /**
   * Replaces an object (PUT). A non-empty `metadata.resourceVersion` must match the stored one.
   * Removing the last finalizer of an object being deleted deletes it.
   *
   * @throws {StatusError} NotFound, Conflict or Invalid.
   */
  update(type: ResourceType, input: KubeObject, options: StoreWriteOptions = {}): KubeObject {
    const name = input.metadata?.name ?? "";
    const namespace = type.namespaced ? input.metadata?.namespace ?? "" : "";
    const collection = this.#collection(type);
    const key = keyOf(namespace, name);
    const current = collection.get(key);
    if (!current) throw errors.notFound(type.group, type.plural, name);
    const currentMeta = current.metadata!;
    const wanted = input.metadata?.resourceVersion;
    if (wanted && wanted !== currentMeta.resourceVersion) {
      throw errors.conflict(
        type.group,
        type.plural,
        name,
        "the object has been modified; please apply your changes to the latest version and try again",
      );
    }
    if (input.metadata?.uid && input.metadata.uid !== currentMeta.uid) {
      throw errors.conflict(
        type.group,
        type.plural,
        name,
        `Precondition failed: UID in precondition: ${input.metadata.uid}, UID in object meta: ${currentMeta.uid}`,
      );
    }
    let body: KubeObject;
    let meta: ObjectMeta;
    if (options.subresource === "status") {
      body = { ...current, status: structuredClone(input.status) };
      meta = { ...currentMeta };
    } else {
      body = structuredClone(input);
      if (type.statusSubresource) {
        if (current.status === undefined) delete body.status;
        else body.status = current.status;
      }
      meta = { ...(input.metadata ?? {}) };
      if (currentMeta.deletionTimestamp) {
        const added = (meta.finalizers ?? []).filter((f) =>
          !(currentMeta.finalizers ?? []).includes(f)
        );
        if (added.length > 0) {
          throw errors.invalid(type.kind, name, [{
            field: "metadata.finalizers",
            message: "Forbidden: no new finalizers can be added if the object is being deleted",
          }]);
        }
      }
    }
    for (
      const field of [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
        "name",
        "namespace",
      ] as const
    ) {
      if (currentMeta[field] === undefined) delete meta[field];
      else (meta as Record<string, unknown>)[field] = currentMeta[field];
    }
    if (currentMeta.managedFields) meta.managedFields = currentMeta.managedFields;
    else delete meta.managedFields;
    meta.resourceVersion = currentMeta.resourceVersion!;
    let next = this.#stamp(body, type, meta);
    if (withoutVolatile(next) === withoutVolatile(current)) return current;
    if (options.dryRun) return next;
    if (type.generation && specOf(next, type) !== specOf(current, type)) {
      meta.generation = (currentMeta.generation ?? 0) + 1;
    }
    const managed = options.managedFields ??
      (options.fieldManager
        ? recordUpdate(current, next, options.fieldManager, type, options.subresource)
        : undefined);
    if (managed) meta.managedFields = managed as unknown[];
    meta.resourceVersion = String(++this.#rv);
    next = this.#stamp(body, type, meta);
    if (currentMeta.deletionTimestamp && (meta.finalizers ?? []).length === 0) {
      collection.delete(key);
      this.#record({
        resourceVersion: this.#rv,
        type: "DELETED",
        resource: resourceId(type),
        object: next,
        previous: current,
      });
      return next;
    }
    collection.set(key, next);
    this.#record({
      resourceVersion: this.#rv,
      type: "MODIFIED",
      resource: resourceId(type),
      object: next,
      previous: current,
    });
    return next;
  }

  /**
   * Deletes an object: with finalizers it only gains a `deletionTimestamp` (MODIFIED); without, it
   * is removed (DELETED). Deleting a namespace deletes what it holds first.
   *
   * @returns The object's last state.
   * @throws {StatusError} NotFound or Conflict (failed precondition).
   */
  delete(
    type: ResourceType,
    namespace: string,
    name: string,
    preconditions: DeletePreconditions = {},
    options: StoreWriteOptions = {},
  ): KubeObject {
    const collection = this.#collection(type);
    const key = keyOf(type.namespaced ? namespace : "", name);
    const current = collection.get(key);
    if (!current) throw errors.notFound(type.group, type.plural, name);
    const meta = current.metadata!;
    if (preconditions.uid && preconditions.uid !== meta.uid) {
      throw errors.conflict(
        type.group,
        type.plural,
        name,
        `Precondition failed: UID in precondition: ${preconditions.uid}, UID in object meta: ${meta.uid}`,
      );
    }
    if (preconditions.resourceVersion && preconditions.resourceVersion !== meta.resourceVersion) {
      throw errors.conflict(
        type.group,
        type.plural,
        name,
        `Precondition failed: ResourceVersion in precondition: ${preconditions.resourceVersion}, ResourceVersion in object meta: ${meta.resourceVersion}`,
      );
    }
    if (options.dryRun) return current;
    if (type.kind === "Namespace") {
      for (const [id, objects] of this.#collections) {
        if (id === "namespaces") continue;
        for (const object of [...objects.values()]) {
          if (object.metadata?.namespace === name) this.#removeNow(id, objects, object);
        }
      }
    }
    if ((meta.finalizers ?? []).length > 0) {
      if (meta.deletionTimestamp) return current;
      const next = this.#stamp(current, type, {
        ...meta,
        deletionTimestamp: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
        deletionGracePeriodSeconds: 0,
        resourceVersion: String(++this.#rv),
      });
      collection.set(key, next);
      this.#record({
        resourceVersion: this.#rv,
        type: "MODIFIED",
        resource: resourceId(type),
        object: next,
        previous: current,
      });
      return next;
    }
    return this.#removeNow(resourceId(type), collection, current);
  }

  #removeNow(id: string, collection: Map<string, KubeObject>, current: KubeObject): KubeObject {
    const meta = current.metadata!;
    collection.delete(keyOf(meta.namespace ?? "", meta.name ?? ""));
    const gone = { ...current, metadata: { ...meta, resourceVersion: String(++this.#rv) } };
    this.#record({
      resourceVersion: this.#rv,
      type: "DELETED",
      resource: id,
      object: gone,
      previous: current,
    });
    return gone;
  }

  /**
   * Simulates an API server restart that loses or skips history.
   *
   * - `"reset"`: versions restart at 1 and every object gets a new UID (a restore into a new etcd);
   *   clients holding old versions are now "in the future".
   * - `"jump"`: the version counter jumps far ahead and history is dropped; old versions give 410.
   */
  restart(mode: "reset" | "jump"): void {
    this.#histories.clear();
    if (mode === "jump") {
      this.#rv += 1_000_000;
      this.#floor = this.#rv;
      return;
    }
    this.#rv = 0;
    this.#floor = 0;
    for (const collection of this.#collections.values()) {
      for (const [key, object] of collection) {
        collection.set(key, {
          ...object,
          metadata: {
            ...object.metadata,
            uid: crypto.randomUUID(),
            resourceVersion: String(++this.#rv),
          },
        });
      }
    }
  }
}
