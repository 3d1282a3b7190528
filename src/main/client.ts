/**
 * The clients handed out per workload cluster: each call crosses to the cluster's worker, cached
 * reads are served from its informers, everything else goes live. A client follows its cluster: after
 * a reconnect it talks to the new connection; while disconnected its calls fail with
 * {@linkcode ClusterNotConnectedError}.
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
  WriteOptions,
} from "../shared/client_types.ts";
import {
  checkKind,
  type KindRef,
  type KubeList,
  type KubeObject,
  type ObjectKey,
} from "../shared/kube_object.ts";
import type { ResolvedOptions } from "./options.ts";
import { kindKey, type OpName, type RequestOf, type ResponseOf } from "../shared/protocol.ts";
import { SpanKind, traced } from "./tracing.ts";
import { parseClusterKey } from "./management/cluster_key.ts";
import { wrote } from "./cache_writes.ts";
import { isMovedAway, type Session } from "./sessions/session.ts";
import { ClusterCacheError } from "../shared/errors.ts";

/** What a client needs from the ClusterCache. */
export interface ClientHost {
  /** The cluster (`namespace/name`). */
  readonly cluster: string;
  /** The cluster's connection, or a ClusterNotConnectedError prefixed with `operation`. */
  connection(operation: string): { readonly session: Session };
  readonly options: ResolvedOptions;
}

const GRACE_MS = 1_000;

/** Checks and normalises an object key argument. */
export function checkKey(key: ObjectRef): ObjectKey {
  if (!key || typeof key.name !== "string" || key.name === "") {
    throw new TypeError(
      `Invalid object key: a non-empty name is required, got ${JSON.stringify(key)}`,
    );
  }
  if (key.namespace !== undefined && typeof key.namespace !== "string") {
    throw new TypeError(
      `Invalid object key: namespace must be a string, got ${JSON.stringify(key.namespace)}`,
    );
  }
  return { namespace: key.namespace ?? "", name: key.name };
}

function checkObject(object: KubeObject, what: string): void {
  if (!object || typeof object !== "object") throw new TypeError(`Cannot ${what}: not an object`);
  checkKind(object as KindRef);
}

function wire<T extends CallOptions>(options: T | undefined): Omit<T, "signal"> {
  const { signal: _signal, ...rest } = options ?? ({} as T);
  return rest;
}

/** A client over one cluster's worker. */
export class WorkerClient implements Client {
  readonly #host: ClientHost;
  readonly #cached: boolean;

  /**
   * @param host The ClusterCache side.
   * @param cached Serve get/list from the informer cache.
   */
  constructor(host: ClientHost, cached: boolean) {
    this.#host = host;
    this.#cached = cached;
  }

  /** Every call, cached reads too, is bounded by the client timeout (plus the message's way back). */
  #timeout(): number {
    return this.#host.options.client.timeoutMs + GRACE_MS;
  }

  /** A read; asked again of the cluster's new session when its cluster moved while it waited. */
  async #read<O extends "get" | "list">(
    request: RequestOf<O>,
    options: { timeoutMs: number; signal: AbortSignal | undefined; operation: string },
  ): Promise<ResponseOf<O>> {
    return await this.#traced(request, async () => {
      try {
        return await this.#host.connection(options.operation).session.call(request, options);
      } catch (error) {
        if (!isMovedAway(error)) throw error;
        return await this.#host.connection(options.operation).session.call(request, options);
      }
    });
  }

  /** A span for a call into the cluster's session: `clustercache.<op>`, with the cluster. */
  #traced<O extends OpName, T>(request: RequestOf<O>, call: () => Promise<T>): Promise<T> {
    return traced(
      `clustercache.${request.op}`,
      () => {
        const { namespace, name } = parseClusterKey(this.#host.cluster);
        const kind = "kind" in request
          ? request.kind as KindRef
          : "object" in request
          ? request.object as KindRef
          : undefined;
        return {
          "k8s.cluster.name": name,
          "clustercache.cluster": this.#host.cluster,
          "clustercache.cluster.namespace": namespace,
          "clustercache.operation": request.op,
          "clustercache.cached": "cached" in request ? request.cached === true : false,
          ...(kind ? { "clustercache.kind": kindKey(kind) } : {}),
        };
      },
      call,
      SpanKind.CLIENT,
    );
  }

  /**
   * A write. One still in flight when its cluster moved to another worker may or may not have
   * reached the server: it fails with a retryable error (`Timeout`), not as "not connected", which
   * controllers take for "wait for the connect event" and would drop.
   */
  async #write<O extends "create" | "update" | "patch" | "delete">(
    request: RequestOf<O>,
    kind: KindRef,
    options: { timeoutMs: number; signal: AbortSignal | undefined; operation: string },
  ): Promise<ResponseOf<O>> {
    try {
      const answer = await this.#traced(
        request,
        () => this.#host.connection(options.operation).session.call(request, options),
      );
      if (this.#cached) this.#recordWrite(kind, answer);
      return answer;
    } catch (error) {
      if (!isMovedAway(error)) throw error;
      throw new ClusterCacheError(
        "Timeout",
        `${options.operation}: the cluster moved to another worker while the write was in flight; it may or may not have been applied`,
      );
    }
  }

  /** Tells a reconcile running now what this write returned (read-your-writes, `cache_writes.ts`). */
  #recordWrite(kind: KindRef, answer: unknown): void {
    wrote(() => {
      // An object, or what a delete returns: `{ resourceVersion }`.
      const resourceVersion = (answer as KubeObject | null)?.metadata?.resourceVersion ??
        (answer as { resourceVersion?: string } | null)?.resourceVersion;
      if (!resourceVersion) return undefined;
      const host = this.#host;
      return {
        cluster: host.cluster,
        kind: { apiVersion: kind.apiVersion, kind: kind.kind },
        resourceVersion,
        async cacheVersion() {
          const session = host.connection("error reading the cache's progress").session;
          const progress = await session.call({ op: "kinds" }, {
            timeoutMs: host.options.client.timeoutMs,
            operation: "error reading the cache's progress",
          });
          const wanted = kindKey(kind);
          return progress.find((p) => kindKey(p.kind) === wanted)?.resourceVersion;
        },
      };
    });
  }

  /** {@inheritDoc Reader.get} */
  async get<T extends KubeObject = KubeObject>(
    kind: KindRef,
    key: ObjectRef,
    options?: CallOptions,
  ): Promise<T> {
    checkKind(kind);
    const k = checkKey(key);
    const operation = `error getting ${kind.kind} ${k.namespace ? `${k.namespace}/` : ""}${k.name}`;
    return await this.#read(
      { op: "get", kind, key: k, cached: this.#cached },
      { timeoutMs: this.#timeout(), signal: options?.signal, operation },
    ) as T;
  }

  /** {@inheritDoc Reader.list} */
  async list<T extends KubeObject = KubeObject>(
    kind: KindRef,
    options?: ListOptions,
  ): Promise<KubeList<T>> {
    checkKind(kind);
    const operation = `error listing ${kind.kind}`;
    return await this.#read(
      { op: "list", kind, options: wire(options), cached: this.#cached },
      { timeoutMs: this.#timeout(), signal: options?.signal, operation },
    ) as KubeList<T>;
  }

  /** {@inheritDoc Client.create} */
  async create<T extends KubeObject = KubeObject>(
    object: NoInfer<T>,
    options?: WriteOptions,
  ): Promise<T> {
    checkObject(object, "create");
    const operation = `error creating ${object.kind}`;
    return await this.#write(
      { op: "create", object, options: wire(options) },
      object as KindRef, // checked: it has both
      { timeoutMs: this.#timeout(), signal: options?.signal, operation },
    ) as T;
  }

  /** {@inheritDoc Client.update} */
  async update<T extends KubeObject = KubeObject>(
    object: NoInfer<T>,
    options?: WriteOptions,
  ): Promise<T> {
    checkObject(object, "update");
    const operation = `error updating ${object.kind}`;
    return await this.#write(
      { op: "update", object, options: wire(options) },
      object as KindRef,
      { timeoutMs: this.#timeout(), signal: options?.signal, operation },
    ) as T;
  }

  /** {@inheritDoc Client.patch} */
  async patch<T extends KubeObject = KubeObject>(
    kind: KindRef,
    key: ObjectRef,
    patch: Patch,
    options?: WriteOptions,
  ): Promise<T> {
    checkKind(kind);
    const k = checkKey(key);
    if (!patch || !["merge", "strategic", "json", "apply"].includes(patch.type)) {
      throw new TypeError(`Invalid patch: type must be merge, strategic, json or apply`);
    }
    if (patch.type === "apply" && !patch.fieldManager) {
      throw new TypeError("An apply patch needs a fieldManager");
    }
    const operation = `error patching ${kind.kind} ${k.name}`;
    return await this.#write(
      { op: "patch", kind, key: k, patch, options: wire(options) },
      kind,
      { timeoutMs: this.#timeout(), signal: options?.signal, operation },
    ) as T;
  }

  /** {@inheritDoc Client.delete} */
  async delete(kind: KindRef, key: ObjectRef, options?: DeleteOptions): Promise<void> {
    checkKind(kind);
    const k = checkKey(key);
    const operation = `error deleting ${kind.kind} ${k.name}`;
    await this.#write(
      { op: "delete", kind, key: k, options: wire(options) },
      kind,
      { timeoutMs: this.#timeout(), signal: options?.signal, operation },
    );
  }
}
