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

  /**
   * @param client Holds the objects and takes the writes.
   * @param indexes The cache's indexes (`options.cache.indexes` of a ClusterCache).
   */
  constructor(client: Client, indexes: readonly CacheIndex[] = []) {
    this.#client = client;
    this.#indexes = indexes;
  }

  async #objects(kind: KindRef, options: CallOptions): Promise<IndexedObjects> {
    const all = await this.#client.list(kind, options.signal ? { signal: options.signal } : {});
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
    return {
      apiVersion: kind.apiVersion,
      kind: `${kind.kind}List`,
      metadata: paged.metadata,
      items: paged.items as T[],
    };
  }

  /** {@inheritDoc Client.create} */
  create<T extends KubeObject = KubeObject>(
    object: NoInfer<T>,
    options?: WriteOptions,
  ): Promise<T> {
    return this.#client.create<T>(object, options);
  }

  /** {@inheritDoc Client.update} */
  update<T extends KubeObject = KubeObject>(
    object: NoInfer<T>,
    options?: WriteOptions,
  ): Promise<T> {
    return this.#client.update<T>(object, options);
  }

  /** {@inheritDoc Client.patch} */
  patch<T extends KubeObject = KubeObject>(
    kind: KindRef,
    key: ObjectRef,
    patch: Patch,
    options?: WriteOptions,
  ): Promise<T> {
    return this.#client.patch<T>(kind, key, patch, options);
  }

  /** {@inheritDoc Client.delete} */
  delete(kind: KindRef, key: ObjectRef, options?: DeleteOptions): Promise<void> {
    return this.#client.delete(kind, key, options);
  }
}
