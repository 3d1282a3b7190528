/**
 * Cluster sources: how controllers hear that a workload cluster connected, disconnected, or has not
 * been probed successfully for a while. Unlike Cluster API's (an unbuffered channel that blocks the
 * reconciler until someone reads), a source here never blocks anything: requests wait in a bounded,
 * de-duplicated queue until consumed.
 *
 * @module
 */

import type { KubeObject, ObjectKey } from "../../shared/kube_object.ts";

/** The default request of a cluster source: the Cluster's own key. */
export function clusterKeyOf(cluster: KubeObject): ObjectKey[] {
  return [{ namespace: cluster.metadata?.namespace ?? "", name: cluster.metadata?.name ?? "" }];
}

/**
 * The identity two requests share when they are the same (merged in the queue): a key's
 * `namespace/name`, a string itself, anything else its JSON with keys sorted, so
 * `{ name, namespace }` and `{ namespace, name }` are one request.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { requestIdentity } from "./cluster_source.ts";
 * assert.equal(
 *   requestIdentity({ name: "a", namespace: "ns" }),
 *   requestIdentity({ namespace: "ns", name: "a" }),
 * );
 * ```
 */
export function requestIdentity(request: unknown): string {
  if (typeof request === "string") return `s:${request}`;
  const key = request as { namespace?: unknown; name?: unknown } | null;
  if (
    key && typeof key === "object" && typeof key.name === "string" &&
    typeof key.namespace === "string" && Object.keys(key).length === 2
  ) {
    return `k:${key.namespace}/${key.name}`;
  }
  return `j:${
    JSON.stringify(request, (_k, v) =>
      v && typeof v === "object" && !Array.isArray(v)
        ? Object.fromEntries(
          Object.entries(v).sort(([a], [b]) =>
            a < b ? -1 : a > b ? 1 : 0
          ),
        )
        : v)
  }`;
}

/**
 * Why a source was notified about a cluster.
 *
 * @example Keeping a set of connected clusters
 * ```ts
 * import assert from "node:assert/strict";
 * import type { ClusterEvent } from "@fleetkit/clustercache";
 * import { FakeClient, FakeClusterCache } from "@fleetkit/clustercache/testing";
 *
 * const cache = new FakeClusterCache(new FakeClient(), { namespace: "default", name: "workload-1" });
 * const connected = new Set<string>();
 * const source = cache.getClusterSource("status", (c) => [c.metadata!.name!]);
 * source.subscribe((name: string, event: ClusterEvent) => {
 *   // Both "disconnect" and "connect" can be in one event (a rotated kubeconfig): use `connected`.
 *   if (event.connected) connected.add(name);
 *   else connected.delete(name);
 * });
 * assert.deepEqual([...connected], ["workload-1"]);
 * cache.trigger(["disconnect"]); // what a failed health probe causes
 * assert.equal(connected.size, 0);
 * source.close();
 * ```
 */
export interface ClusterEvent {
  /** The cluster. */
  cluster: ObjectKey;
  /**
   * `"connect"`, `"disconnect"`, `"health probe didn't succeed since more than 5m0s"`, ...
   * Connects and disconnects come in the order they happened; both can be in one event (a
   * kubeconfig rotation or a crashed worker is `["disconnect", "connect"]`).
   */
  reasons: readonly string[];
  /** Whether the cluster is connected after the reconcile that sent this event. */
  connected: boolean;
  /** When (epoch ms). */
  time: number;
}

/**
 * Options of {@linkcode ClusterSource}.
 *
 * @example Hearing about clusters whose probes failed for a minute
 * ```ts
 * import type { ClusterSourceOptions } from "@fleetkit/clustercache";
 * import { FakeClient, FakeClusterCache } from "@fleetkit/clustercache/testing";
 *
 * const cache = new FakeClusterCache(new FakeClient(), { namespace: "default", name: "workload-1" });
 * const options: ClusterSourceOptions = { watchForProbeFailure: [60_000], queueLimit: 10_000 };
 * const source = cache.getClusterSource("machine-health", (c) => [c.metadata!.name!], options);
 * source.subscribe((_name, event) => {
 *   // event.reasons: ["health probe didn't succeed since more than 1m0s"] after a minute of failures
 * });
 * source.close();
 * ```
 */
export interface ClusterSourceOptions {
  /**
   * Also notify when the health probe has not succeeded for each of these durations (ms), like Cluster
   * API's `WatchForProbeFailure`.
   */
  watchForProbeFailure?: number[];
  /**
   * Also notify, once per duration (ms), when a kind's informer has been failing that long
   * (reason `watch of <apiVersion> <Kind> failing since more than <d>`): the cluster stays
   * connected and its other kinds healthy, but this kind's cache is not to be trusted.
   */
  watchForKindFailure?: number[];
  /** Most requests waiting in the queue; the oldest are dropped beyond it (and logged). Default 100,000. */
  queueLimit?: number;
}

/**
 * A stream of reconcile requests produced from cluster events: iterate it (`for await`) or
 * {@linkcode ClusterSource.subscribe} to it.
 *
 * @example Reacting to connects
 * ```ts
 * import assert from "node:assert/strict";
 * import { KubeConfig } from "@kubernetes/client-node";
 * import { ClusterCache, type ObjectKey } from "@fleetkit/clustercache";
 * import { SimulatedFleet } from "@fleetkit/clustercache/testing";
 *
 * await using fleet = await SimulatedFleet.start({ clusters: 1 });
 * const management = new KubeConfig();
 * management.loadFromString(fleet.managementKubeconfig());
 * await using cache = await ClusterCache.setup({ management, client: { userAgent: "docs" } });
 *
 * const reconciled: string[] = [];
 * async function reconcile(cluster: ObjectKey): Promise<void> {
 *   reconciled.push(cluster.name); // e.g. watch again after a reconnect
 * }
 * const source = cache.getClusterSource("machine-controller", (cluster) => [
 *   { namespace: cluster.metadata!.namespace!, name: cluster.metadata!.name! },
 * ]);
 * setTimeout(() => source.close(), 2_000); // a controller runs until shutdown; this one briefly
 * for await (const request of source) {
 *   await reconcile(request);
 * }
 * assert.deepEqual(reconciled, ["workload-1"]);
 * ```
 */
export class ClusterSource<R = ObjectKey> implements AsyncIterable<R> {
  /** The controller this source belongs to. */
  readonly controllerName: string;
  /** Probe-failure durations (ms) this source watches for. */
  readonly probeFailureDurations: readonly number[];
  /** `watchForKindFailure`, validated. */
  readonly kindFailureDurations: readonly number[];
  readonly #queue = new Map<string, { request: R; event: ClusterEvent }>();
  readonly #limit: number;
  readonly #subscribers = new Set<(request: R, event: ClusterEvent) => void>();
  readonly #waiters: ((result: IteratorResult<R>) => void)[] = [];
  readonly #onDrop: (dropped: number) => void;
  readonly #onSubscriberError: (error: unknown) => void;
  readonly #onClose: () => void;
  readonly #lastSent = new Map<string, number>();
  #closed = false;
  #dropped = 0;

  /**
   * Creates a source (use `ClusterCache.getClusterSource` rather than this).
   *
   * @param controllerName Name of the consuming controller (for logs).
   * @param options Probe-failure durations and queue limit.
   * @param hooks Called when requests are dropped, a subscriber throws, or the source closes.
   */
  constructor(
    controllerName: string,
    options: ClusterSourceOptions = {},
    hooks: {
      onDrop?: (dropped: number) => void;
      onSubscriberError?: (error: unknown) => void;
      onClose?: () => void;
    } = {},
  ) {
    this.controllerName = controllerName;
    this.probeFailureDurations = [...(options.watchForProbeFailure ?? [])];
    this.kindFailureDurations = [...(options.watchForKindFailure ?? [])];
    this.#limit = Math.max(1, options.queueLimit ?? 100_000);
    this.#onDrop = hooks.onDrop ?? (() => {});
    this.#onSubscriberError = hooks.onSubscriberError ?? (() => {});
    this.#onClose = hooks.onClose ?? (() => {});
  }

  /** Requests waiting to be consumed by iteration. */
  get pending(): number {
    return this.#queue.size;
  }

  /** Requests dropped because the queue was full. */
  get dropped(): number {
    return this.#dropped;
  }

  /** When this source last got an event for `clusterKey` (`ns/name`), or 0. */
  lastEventSent(clusterKey: string): number {
    return this.#lastSent.get(clusterKey) ?? 0;
  }

  /** Forgets a cluster's bookkeeping (the cluster was deleted). */
  forget(clusterKey: string): void {
    this.#lastSent.delete(clusterKey);
  }

  /** Whether this source has bookkeeping for a cluster. */
  tracks(clusterKey: string): boolean {
    return this.#lastSent.has(clusterKey);
  }

  /**
   * Delivers an event: its requests go to every subscriber at once or, when there is none, to a
   * waiting iterator or into the queue (merged with identical requests already waiting). Never
   * blocks.
   */
  deliver(clusterKey: string, requests: readonly R[], event: ClusterEvent): void {
    if (this.#closed) return;
    this.#lastSent.set(clusterKey, event.time);
    for (const request of requests) {
      if (this.#closed) return; // closed by a subscriber meanwhile
      if (this.#subscribers.size > 0) {
        for (const subscriber of this.#subscribers) this.#call(subscriber, request, event);
        continue;
      }
      const waiter = this.#waiters.shift();
      if (waiter) {
        waiter({ value: request, done: false });
        continue;
      }
      // Merged with an identical waiting request, which keeps its place but takes the latest event.
      const id = requestIdentity(request);
      const merged = this.#queue.has(id);
      this.#queue.set(id, { request, event });
      if (merged) continue;
      if (this.#queue.size > this.#limit) {
        this.#queue.delete(this.#queue.keys().next().value!);
        this.#dropped++;
        this.#onDrop(this.#dropped);
      }
    }
  }

  /**
   * Calls `handler` for every request as it is produced (synchronously, inside the reconcile; keep
   * it short). Requests that arrived while no one listened are handed to it first, before this
   * returns, so none is lost between creating the source and subscribing. While a subscriber is
   * registered, requests go to subscribers only. Returns a function that unsubscribes.
   */
  subscribe(handler: (request: R, event: ClusterEvent) => void): () => void {
    this.#subscribers.add(handler);
    const waiting = [...this.#queue.values()];
    this.#queue.clear();
    for (const { request, event } of waiting) {
      if (this.#closed) break; // closed by the subscriber meanwhile
      this.#call(handler, request, event);
    }
    return () => this.#subscribers.delete(handler);
  }

  #call(handler: (request: R, event: ClusterEvent) => void, request: R, event: ClusterEvent): void {
    try {
      // An async subscriber type-checks as one returning void: its rejection must not end the
      // process as an unhandled one.
      const result: unknown = handler(request, event);
      if (typeof (result as PromiseLike<unknown> | undefined)?.then === "function") {
        Promise.resolve(result).catch((error) => this.#subscriberFailed(error));
      }
    } catch (error) {
      this.#subscriberFailed(error);
    }
  }

  /** Reports a subscriber's failure; the hook's own must neither escape nor stop the others. */
  #subscriberFailed(error: unknown): void {
    try {
      this.#onSubscriberError(error);
    } catch { /* dropped */ }
  }

  /** Iterates requests as they arrive, until {@linkcode ClusterSource.close}. */
  [Symbol.asyncIterator](): AsyncIterator<R> {
    return {
      next: (): Promise<IteratorResult<R>> => {
        const first = this.#queue.entries().next();
        if (!first.done) {
          this.#queue.delete(first.value[0]);
          return Promise.resolve({ value: first.value[1].request, done: false });
        }
        if (this.#closed) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => this.#waiters.push(resolve));
      },
      return: (): Promise<IteratorResult<R>> => {
        this.close();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }

  /** Whether {@linkcode ClusterSource.close} was called (by its owner or by the cache closing). */
  get closed(): boolean {
    return this.#closed;
  }

  /** Ends iteration and drops waiting requests; the cache stops producing for this source. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#queue.clear();
    this.#subscribers.clear();
    for (const waiter of this.#waiters.splice(0)) waiter({ value: undefined, done: true });
    this.#onClose();
  }
}
