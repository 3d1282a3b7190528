/**
 * An in-memory {@linkcode Client} with the API server's semantics (resourceVersions, UIDs, generation,
 * conflicts, finalizers, selectors, patches), built on the simulated API server's store. For unit
 * tests of controllers, together with {@linkcode FakeClusterCache}.
 *
 * @module
 */

import type {
  CallOptions,
  Client,
  DeleteOptions,
  ListOptions,
  ObjectRef,
  Patch,
  WatchEvent,
  WriteOptions,
} from "../src/shared/client_types.ts";
import { ClusterCacheError, KubernetesApiError } from "../src/shared/errors.ts";
import {
  type KindRef,
  type KubeList,
  type KubeObject,
  splitApiVersion,
} from "../src/shared/kube_object.ts";
import { ObjectStore } from "./sim/object_store.ts";
import {
  BUILTIN_TYPES,
  CLUSTER_TYPE,
  groupVersion,
  resourceId,
  type ResourceType,
} from "./sim/resource_types.ts";
import {
  admit,
  matches,
  parseSelectors,
  patch as applyPatch,
  toServedVersion,
} from "./sim/rest.ts";
import { StatusError } from "./sim/status.ts";

/**
 * A kind the fake client should know besides the built-ins and Cluster API's `Cluster`.
 *
 * @example A custom resource
 * ```ts
 * import assert from "node:assert/strict";
 * import { FakeClient, type FakeKind } from "@fleetkit/clustercache/testing";
 *
 * const widgets: FakeKind = { apiVersion: "example.com/v1", kind: "Widget", namespaced: true };
 * const client = new FakeClient({ kinds: [widgets] });
 * await client.create({
 *   apiVersion: "example.com/v1",
 *   kind: "Widget",
 *   metadata: { namespace: "default", name: "w" },
 * });
 * const list = await client.list({ apiVersion: "example.com/v1", kind: "Widget" });
 * assert.equal(list.items.length, 1);
 * ```
 */
export interface FakeKind {
  /** `group/version`. */
  apiVersion: string;
  /** The kind. */
  kind: string;
  /** Lower-case plural; default: kind lower-cased plus "s". */
  plural?: string;
  /** Whether objects live in namespaces. */
  namespaced: boolean;
}

/**
 * Options of {@linkcode FakeClient}.
 *
 * @example Seeding objects in a namespace that does not exist yet
 * ```ts
 * import assert from "node:assert/strict";
 * import { FakeClient, type FakeClientOptions } from "@fleetkit/clustercache/testing";
 *
 * const options: FakeClientOptions = {
 *   objects: [{ apiVersion: "v1", kind: "ConfigMap", metadata: { namespace: "apps", name: "a" } }],
 * };
 * const client = new FakeClient(options);
 * await client.get({ apiVersion: "v1", kind: "Namespace" }, { name: "apps" }); // created for it
 * assert.equal((await client.list({ apiVersion: "v1", kind: "ConfigMap" })).items.length, 1);
 * ```
 */
export interface FakeClientOptions {
  /** Objects present from the start (namespaces are created as needed; `default` always exists). */
  objects?: KubeObject[];
  /** Extra kinds. */
  kinds?: FakeKind[];
}

function rethrow(error: unknown): never {
  if (error instanceof StatusError) {
    throw new KubernetesApiError(error.status, error.retryAfterSeconds);
  }
  throw error;
}

/**
 * An in-memory client.
 *
 * @example A controller's unit test
 * ```ts
 * import assert from "node:assert/strict";
 * import { FakeClient } from "@fleetkit/clustercache/testing";
 *
 * const kind = { apiVersion: "v1", kind: "ConfigMap" };
 * const client = new FakeClient({
 *   objects: [{ ...kind, metadata: { name: "a", namespace: "default" } }],
 * });
 * const cm = await client.get(kind, { namespace: "default", name: "a" });
 * assert.ok(cm.metadata?.resourceVersion);
 * // Assert on state through the client, or on the backing store directly.
 * assert.equal(client.store.resourceVersion, Number(cm.metadata.resourceVersion));
 * ```
 */
export class FakeClient implements Client {
  /** The backing store (read it to assert on state). */
  readonly store: ObjectStore = new ObjectStore(10_000);
  readonly #types: ResourceType[];

  /**
   * Creates a client holding `options.objects`.
   *
   * @param options Initial objects and extra kinds.
   */
  constructor(options: FakeClientOptions = {}) {
    this.#types = [
      ...BUILTIN_TYPES,
      CLUSTER_TYPE,
      ...(options.kinds ?? []).map((k): ResourceType => {
        const { group, version } = splitApiVersion(k.apiVersion);
        return {
          group,
          versions: [version],
          storageVersion: version,
          kind: k.kind,
          listKind: `${k.kind}List`,
          plural: k.plural ?? `${k.kind.toLowerCase()}s`,
          singular: k.kind.toLowerCase(),
          namespaced: k.namespaced,
          shortNames: [],
          statusSubresource: false,
          extraFieldSelectors: [],
          generation: true, // a custom resource
        };
      }),
    ];
    const namespace = this.#type({ apiVersion: "v1", kind: "Namespace" })!;
    // Like every real cluster; a fake without it would fail creates a real cluster accepts.
    this.store.create(namespace, { metadata: { name: "default" } });
    for (const object of options.objects ?? []) {
      const ns = object.metadata?.namespace;
      if (ns && !this.store.get(namespace, "", ns)) {
        this.store.create(namespace, { metadata: { name: ns } });
      }
      const type = this.#require(object as KindRef);
      try {
        this.store.create(
          type,
          admit(type, splitApiVersion(object.apiVersion!).version, object, ns ?? "", undefined),
          {
            keepStatus: true,
          },
        );
      } catch (error) {
        rethrow(error);
      }
    }
  }

  #type(kind: KindRef): ResourceType | undefined {
    const { group, version } = splitApiVersion(kind.apiVersion);
    return this.#types.find((t) =>
      t.group === group && t.kind === kind.kind && t.versions.includes(version)
    );
  }

  #require(kind: KindRef): ResourceType {
    if (typeof kind?.apiVersion !== "string" || typeof kind.kind !== "string") {
      throw new TypeError(`Invalid kind: ${JSON.stringify(kind)}`);
    }
    const type = this.#type(kind);
    if (!type) {
      throw new ClusterCacheError(
        "NoKindMatch",
        `no matches for kind "${kind.kind}" in version "${kind.apiVersion}"`,
      );
    }
    return type;
  }

  #out(type: ResourceType, version: string, object: KubeObject): KubeObject {
    return structuredClone(toServedVersion(type, object, version));
  }

  /** {@inheritDoc Reader.get} */
  get<T extends KubeObject = KubeObject>(
    kind: KindRef,
    key: ObjectRef,
    _options?: CallOptions,
  ): Promise<T> {
    const type = this.#require(kind);
    const object = this.store.get(type, key.namespace ?? "", key.name);
    if (!object) {
      return Promise.reject(
        new KubernetesApiError({
          kind: "Status",
          apiVersion: "v1",
          metadata: {},
          status: "Failure",
          message: `${
            type.group ? `${type.plural}.${type.group}` : type.plural
          } "${key.name}" not found`,
          reason: "NotFound",
          code: 404,
        }),
      );
    }
    return Promise.resolve(this.#out(type, splitApiVersion(kind.apiVersion).version, object) as T);
  }

  /**
   * Calls `listener` after every change to objects of `kind`, in the version asked for, as a watch
   * sees it. {@linkcode FakeClusterCache} uses it so that writes reach watch handlers.
   *
   * @returns Stops the calls.
   * @throws {ClusterCacheError} `NoKindMatch` for a kind this client does not know.
   */
  watchKind(kind: KindRef, listener: (event: WatchEvent) => void): () => void {
    const type = this.#require(kind);
    const id = resourceId(type);
    const version = splitApiVersion(kind.apiVersion).version;
    return this.store.subscribe((change) => {
      if (change.resource !== id) return;
      const object = this.#out(type, version, change.object);
      if (change.type === "ADDED") listener({ type: "add", object });
      else if (change.type === "DELETED") listener({ type: "delete", object });
      else {
        const oldObject = this.#out(type, version, change.previous ?? change.object);
        listener({ type: "update", object, oldObject });
      }
    });
  }

  /** {@inheritDoc Reader.list} */
  list<T extends KubeObject = KubeObject>(
    kind: KindRef,
    options: ListOptions = {},
  ): Promise<KubeList<T>> {
    try {
      const type = this.#require(kind);
      const selectors = parseSelectors(
        type,
        options.labelSelector ?? null,
        options.fieldSelector ?? null,
      );
      const version = splitApiVersion(kind.apiVersion).version;
      const items = this.store.list(type, options.namespace || undefined)
        .filter((o) => matches(o, options.namespace || undefined, selectors))
        .map((o) => this.#out(type, version, o) as T);
      return Promise.resolve({
        apiVersion: groupVersion(type.group, version),
        kind: type.listKind,
        metadata: { resourceVersion: String(this.store.resourceVersion) },
        items,
      });
    } catch (error) {
      return Promise.reject(
        error instanceof StatusError ? new KubernetesApiError(error.status) : error,
      );
    }
  }

  #write<T>(fn: () => KubeObject, type: ResourceType, version: string): Promise<T> {
    try {
      return Promise.resolve(this.#out(type, version, fn()) as T);
    } catch (error) {
      return Promise.reject(
        error instanceof StatusError ? new KubernetesApiError(error.status) : error,
      );
    }
  }

  /** {@inheritDoc Client.create} */
  create<T extends KubeObject = KubeObject>(
    object: NoInfer<T>,
    options: WriteOptions = {},
  ): Promise<T> {
    const type = this.#require(object as KindRef);
    const version = splitApiVersion(object.apiVersion!).version;
    return this.#write(
      () =>
        this.store.create(
          type,
          admit(type, version, object, object.metadata?.namespace ?? "", undefined),
          { dryRun: !!options.dryRun },
        ),
      type,
      version,
    );
  }

  /** {@inheritDoc Client.update} */
  update<T extends KubeObject = KubeObject>(
    object: NoInfer<T>,
    options: WriteOptions = {},
  ): Promise<T> {
    const type = this.#require(object as KindRef);
    const version = splitApiVersion(object.apiVersion!).version;
    return this.#write(
      () =>
        this.store.update(
          type,
          admit(type, version, object, object.metadata?.namespace ?? "", object.metadata?.name),
          {
            dryRun: !!options.dryRun,
            ...(options.subresource ? { subresource: options.subresource } : {}),
          },
        ),
      type,
      version,
    );
  }

  /** {@inheritDoc Client.patch} */
  patch<T extends KubeObject = KubeObject>(
    kind: KindRef,
    key: ObjectRef,
    patch: Patch,
    options: WriteOptions = {},
  ): Promise<T> {
    const type = this.#require(kind);
    const version = splitApiVersion(kind.apiVersion).version;
    return this.#write(
      () =>
        applyPatch(
          this.store,
          type,
          version,
          key.namespace ?? "",
          key.name,
          patch.type,
          JSON.stringify(patch.patch),
          patch.type === "apply" ? patch.fieldManager : options.fieldManager ?? null,
          {
            dryRun: !!options.dryRun,
            ...(options.subresource ? { subresource: options.subresource } : {}),
          },
        ),
      type,
      version,
    );
  }

  /** {@inheritDoc Client.delete} */
  async delete(kind: KindRef, key: ObjectRef, options: DeleteOptions = {}): Promise<void> {
    const type = this.#require(kind);
    await this.#write(
      () =>
        this.store.delete(type, key.namespace ?? "", key.name, options.preconditions ?? {}, {
          dryRun: !!options.dryRun,
        }),
      type,
      splitApiVersion(kind.apiVersion).version,
    );
  }
}
