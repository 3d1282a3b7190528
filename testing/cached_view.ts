/**
 * Main thread (tests): a {@linkcode Client} whose reads follow the rules of a ClusterCache's
 * informer caches, over any client. {@linkcode FakeClusterCache} hands it out for `getClient` and
 * `getReader`, so a controller that works against the fake works against the real cache: a field
 * selector the cache cannot serve fails here too, and an index the cache has works here too.
 *
 * @module
 */

import type { CacheIndex } from "../src/shared/cache_options.ts";
import {
  type IndexedObjects,
  indexFunction,
  ModuleFunctions,
  page,
  selectCached,
} from "../src/shared/cache_query.ts";
import type {
  CallOptions,
  Client,
  DeleteOptions,
  ListOptions,
  ObjectRef,
  Patch,
  WriteOptions,
} from "../src/shared/client_types.ts";
import type { KindRef, KubeList, KubeObject } from "../src/shared/kube_object.ts";
import { kindKey } from "../src/shared/protocol.ts";
import { wrote } from "../src/main/cache_writes.ts";

function sameKind(a: KindRef, b: KindRef): boolean {
  return a.apiVersion === b.apiVersion && a.kind === b.kind;
}

/** Objects of one kind with the cache's indexes, computed on demand (tests hold few objects). */
function indexed(
  items: KubeObject[],
  indexes: { field: string; values(object: KubeObject): string[] }[],
): IndexedObjects {
  const byField = new Map(indexes.map((index) => [index.field, index]));
  const valuesOf = (field: string, object: KubeObject) =>
    field === "metadata.namespace"
      ? [object.metadata?.namespace ?? ""]
      : byField.get(field)?.values(object) ?? [];
  return {
    hasIndex: (field) => field === "metadata.namespace" || byField.has(field),
    byIndex: (field, value) => items.filter((o) => valuesOf(field, o).includes(value)),
    indexedUnder: (field, value, object) => valuesOf(field, object).includes(value),
    values: () => items,
  };
}

/** Reads as a ClusterCache's cache answers them; writes go to the client unchanged. */
export class CachedView implements Client {
  readonly #client: Client;
  readonly #indexes: readonly CacheIndex[];
  readonly #modules = new ModuleFunctions();
  readonly #cluster: string;
  /** Kinds whose cache is paused: what reads see, and where it stopped. */
  readonly #frozen = new Map<string, { items: KubeObject[]; resourceVersion: string }>();

  /**
   * @param client Holds the objects and takes the writes.
   * @param indexes The cache's indexes (`options.cache.indexes` of a ClusterCache).
   * @param cluster The cluster it stands for (`namespace/name`).
   */
  constructor(client: Client, indexes: readonly CacheIndex[] = [], cluster = "default/cluster") {
    this.#client = client;
    this.#indexes = indexes;
    this.#cluster = cluster;
  }

  async #objects(kind: KindRef, options: CallOptions): Promise<IndexedObjects> {
    const frozen = this.#frozen.get(kindKey(kind));
    const all = frozen
      ? { items: frozen.items }
      : await this.#client.list(kind, options.signal ? { signal: options.signal } : {});
    const indexes = await Promise.all(
      this.#indexes.filter((index) => sameKind(index.kind, kind)).map(async (index) =>
        indexFunction(
          index,
          "fieldPath" in index.extract ? undefined : await this.#modules.load(index.extract),
        )
      ),
    );
    return indexed(all.items, indexes);
  }

  /** {@inheritDoc Reader.get} */
  async get<T extends KubeObject = KubeObject>(
    kind: KindRef,
    key: ObjectRef,
    options: CallOptions = {},
  ): Promise<T> {
    const objects = await this.#objects(kind, options);
    for (const object of objects.values()) {
      if (object.metadata?.name !== key.name) continue;
      // A namespace given for a cluster-scoped kind is ignored, as the cache does.
      const namespace = object.metadata?.namespace;
      if (!namespace || namespace === (key.namespace ?? "")) return object as T;
    }
    return await this.#client.get<T>(kind, key, options); // the client's own NotFound
  }

  /** {@inheritDoc Reader.list} */
  async list<T extends KubeObject = KubeObject>(
    kind: KindRef,
    options: ListOptions = {},
  ): Promise<KubeList<T>> {
    const objects = await this.#objects(kind, options);
    const namespaced = [...objects.values()].some((o) => o.metadata?.namespace);
    const { namespace, labelSelector, fieldSelector } = options;
    const selected = selectCached(objects, {
      ...(namespace && namespaced ? { namespace } : {}),
      ...(labelSelector ? { labelSelector } : {}),
      ...(fieldSelector ? { fieldSelector } : {}),
    });
    const paged = page(selected, {
      ...(options.limit ? { limit: options.limit } : {}),
      ...(options.continue ? { continue: options.continue } : {}),
    });
    const resourceVersion = await this.#versionOf(kind);
    return {
      apiVersion: kind.apiVersion,
      kind: `${kind.kind}List`,
      metadata: { ...paged.metadata, ...(resourceVersion ? { resourceVersion } : {}) },
      items: paged.items as T[],
    };
  }

  /**
   * Freezes what reads of `kind` see at what the client holds now, as an informer that stopped
   * hearing from its server would: writes still reach the client, but not the cache, until
   * {@linkcode CachedView.resume}. Its resourceVersion stays where it was (read-your-writes waits).
   */
  async pause(kind: KindRef): Promise<void> {
    const list = await this.#client.list(kind);
    this.#frozen.set(kindKey(kind), {
      items: list.items,
      resourceVersion: list.metadata?.resourceVersion ?? "0",
    });
  }

  /** Lets reads of `kind` see the client again. */
  resume(kind: KindRef): void {
    this.#frozen.delete(kindKey(kind));
  }

  /** Where this cache of `kind` is: the frozen version, or the client's newest. */
  async #versionOf(kind: KindRef): Promise<string | undefined> {
    const frozen = this.#frozen.get(kindKey(kind));
    if (frozen) return frozen.resourceVersion;
    return (await this.#client.list(kind)).metadata?.resourceVersion;
  }

  /** Tells a reconcile running now of a write, as the real cache's client does (read-your-writes). */
  #record(kind: KindRef, resourceVersion: string | undefined): void {
    wrote(() =>
      resourceVersion === undefined ? undefined : {
        cluster: this.#cluster,
        kind: { apiVersion: kind.apiVersion, kind: kind.kind },
        resourceVersion,
        cacheVersion: () => this.#versionOf(kind),
      }
    );
  }

  /** {@inheritDoc Client.create} */
  async create<T extends KubeObject = KubeObject>(
    object: NoInfer<T>,
    options?: WriteOptions,
  ): Promise<T> {
    const created = await this.#client.create<T>(object, options);
    this.#record(object as KindRef, created.metadata?.resourceVersion);
    return created;
  }

  /** {@inheritDoc Client.update} */
  async update<T extends KubeObject = KubeObject>(
    object: NoInfer<T>,
    options?: WriteOptions,
  ): Promise<T> {
    const updated = await this.#client.update<T>(object, options);
    this.#record(object as KindRef, updated.metadata?.resourceVersion);
    return updated;
  }

  /** {@inheritDoc Client.patch} */
  async patch<T extends KubeObject = KubeObject>(
    kind: KindRef,
    key: ObjectRef,
    patch: Patch,
    options?: WriteOptions,
  ): Promise<T> {
    const patched = await this.#client.patch<T>(kind, key, patch, options);
    this.#record(kind, patched.metadata?.resourceVersion);
    return patched;
  }

  /** {@inheritDoc Client.delete} */
  async delete(kind: KindRef, key: ObjectRef, options?: DeleteOptions): Promise<void> {
    await this.#client.delete(kind, key, options);
    // The client says nothing of the deletion's version: its newest is at least that.
    this.#record(kind, (await this.#client.list(kind)).metadata?.resourceVersion);
  }
}
