/**
 * Main thread: a controller loop in the manner of controller-runtime's. Requests come from cluster
 * sources and watches into a rate-limiting work queue; `concurrency` workers reconcile them, never
 * the same request twice at once; a result asks for a requeue after a delay, a thrown error for a
 * retry with backoff. Stopping is graceful, with a deadline.
 *
 * @module
 */

import type { ClusterCacheApi, WatchHandle, WatchInput } from "../cluster_cache.ts";
import type { ClusterSource } from "../sources/cluster_source.ts";
import { requestIdentity } from "../sources/cluster_source.ts";
import type { WatchEvent } from "../../shared/client_types.ts";
import { ClusterCacheError, ClusterNotConnectedError, describeError } from "../../shared/errors.ts";
import { formatObjectKey, type KubeObject, type ObjectKey } from "../../shared/kube_object.ts";
import { MAX_TIMER_MS } from "../../shared/backoff.ts";
import { logger } from "../log.ts";
import type { MetricsRegistry } from "../metrics/metrics_registry.ts";
import { defaultControllerRateLimiter, type RateLimiter } from "./rate_limiter.ts";
import { type QueueObserver, RateLimitingQueue } from "./rate_limiting_queue.ts";
import { ConsistencyStore } from "./consistency.ts";
import { recordingWrites } from "../cache_writes.ts";
import { traced } from "../tracing.ts";
import type { Attributes } from "@opentelemetry/api";

/** What a reconcile asks for: nothing (done), or to run again after a delay. */
export interface ReconcileResult {
  /**
   * Run this request again after this many ms (and forget its failures): finite and not negative
   * (anything else is a reconcile error); past ~24.8 days, the timer's range, it runs then.
   */
  requeueAfterMs?: number;
}

/** What a reconcile is given besides its request. */
export interface ReconcileContext {
  /** Aborts when the controller's stop deadline passes, or the reconcile timeout does. */
  signal: AbortSignal;
  /** How many times this request failed in a row before this attempt. */
  retries: number;
}

/** Options of a {@linkcode Controller}. */
export interface ControllerOptions<R> {
  /** The controller's name: in logs and the `controller` label of its metrics. */
  name: string;
  /**
   * Reconciles one request. Return `{ requeueAfterMs }` to run again later; throw to retry with
   * backoff. A {@linkcode ClusterNotConnectedError} is not retried: the cluster source's next
   * connect event brings the request back.
   */
  reconcile: (request: R, context: ReconcileContext) => Promise<ReconcileResult | void>;
  /** Requests reconciled at once (different requests only). Default 1, as in controller-runtime. */
  concurrency?: number;
  /** Delays of retries after errors. Default {@linkcode defaultControllerRateLimiter}. */
  rateLimiter?: RateLimiter;
  /** Aborts a reconcile's signal after this many ms. Default: no timeout. */
  reconcileTimeoutMs?: number;
  /** Where the `workqueue_*` and `controller_runtime_reconcile_*` series go, e.g. `cache.metrics.registry`. */
  metrics?: MetricsRegistry;
  /** The identity of a request. Default: the same for requests with equal fields in any order. */
  identity?: (request: R) => string;
  /**
   * Read-your-writes (on by default): writes through a cluster's `getClient()` made during a
   * reconcile are remembered, and the request's next run waits (requeued every 100 ms) until that
   * cluster's cache of each written kind has reached them, so it never acts on a cache older than
   * its own writes (Kubernetes' KEP-5647). After `maxWaitMs` (default 10 s) it runs anyway and logs
   * it; resourceVersions that cannot be compared let it run at once. `false` turns it off.
   */
  readYourWrites?: boolean | { maxWaitMs?: number };
  /**
   * The workload cluster a request is for, for traces (the `k8s.cluster.name` of its reconcile
   * span). Default: the request itself when it is a `{ namespace, name }` (what cluster sources
   * produce by default).
   */
  clusterOf?: (request: R) => ObjectKey | undefined;
}

/** A reconcile span's attributes: the controller, the request, and its cluster when it names one. */
function reconcileAttributes(
  controller: string,
  key: string,
  cluster: ObjectKey | undefined,
  retries: number,
): Attributes {
  return {
    "clustercache.controller": controller,
    "clustercache.request": key,
    "clustercache.retries": retries,
    ...(cluster
      ? {
        "k8s.cluster.name": cluster.name,
        "clustercache.cluster": `${cluster.namespace}/${cluster.name}`,
      }
      : {}),
  };
}

/** The default `clusterOf`: a request that is an object key. */
function requestAsCluster(request: unknown): ObjectKey | undefined {
  const key = request as Partial<ObjectKey> | null;
  return typeof key?.name === "string" && typeof key.namespace === "string"
    ? { namespace: key.namespace, name: key.name }
    : undefined;
}

/** How soon a request whose cache is behind its own writes is tried again (Cluster API: 100 ms). */
const STALE_REQUEUE_MS = 100;

/** A watch started through {@linkcode Controller.watch}: its events become requests. */
export interface ControllerWatchInput<T extends KubeObject, R>
  extends Omit<WatchInput<T>, "handler"> {
  /** The requests an event asks for; `undefined` or `[]` for none. */
  map: (event: WatchEvent<T>) => R | readonly R[] | undefined;
}

/** Options of {@linkcode Controller.stop}. */
export interface StopOptions {
  /**
   * How long running reconciles may take to finish (ms); then their signals abort and `stop`
   * returns without them. Default 30 s, controller-runtime's graceful shutdown timeout;
   * `Infinity` waits for them however long they take.
   */
  timeoutMs?: number;
}

const SECONDS_BUCKETS = [
  1e-8,
  1e-7,
  1e-6,
  1e-5,
  1e-4,
  1e-3,
  0.01,
  0.1,
  1,
  10,
  100,
  1000,
];

function observer(registry: MetricsRegistry, name: string): QueueObserver {
  const labels = { name, controller: name };
  const labelNames = ["name", "controller"];
  const depth = registry.gauge("workqueue_depth", "Current depth of workqueue", labelNames);
  const adds = registry.counter(
    "workqueue_adds_total",
    "Total number of adds handled by workqueue",
    labelNames,
  );
  const queued = registry.histogram(
    "workqueue_queue_duration_seconds",
    "How long in seconds an item stays in workqueue before being requested",
    labelNames,
    SECONDS_BUCKETS,
  );
  const worked = registry.histogram(
    "workqueue_work_duration_seconds",
    "How long in seconds processing an item from workqueue takes.",
    labelNames,
    SECONDS_BUCKETS,
  );
  const retries = registry.counter(
    "workqueue_retries_total",
    "Total number of retries handled by workqueue",
    labelNames,
  );
  depth.set(labels, 0);
  adds.inc(labels, 0);
  retries.inc(labels, 0);
  return {
    added: () => adds.inc(labels),
    depth: (items) => depth.set(labels, items),
    queued: (seconds) => queued.observe(labels, seconds),
    worked: (seconds) => worked.observe(labels, seconds),
    retried: () => retries.inc(labels),
  };
}

/**
 * Reconciles requests from cluster sources and watches with bounded concurrency, per-request
 * serialisation, rate-limited retries and graceful shutdown.
 *
 * @example One reconcile per connected cluster, stopped gracefully
 * ```ts
 * import assert from "node:assert/strict";
 * import { type ObjectKey } from "@fleetkit/clustercache";
 * import { Controller } from "@fleetkit/clustercache/controller";
 * import { FakeClient, FakeClusterCache } from "@fleetkit/clustercache/testing";
 *
 * const cluster = { namespace: "default", name: "workload-1" };
 * const cache = new FakeClusterCache(new FakeClient(), cluster);
 * const seen: string[] = [];
 * await using controller = new Controller<ObjectKey>({
 *   name: "hello",
 *   concurrency: 4,
 *   reconcile: async (request) => {
 *     const nodes = await cache.getReader(request).list({ apiVersion: "v1", kind: "Node" });
 *     seen.push(`${request.name}: ${nodes.items.length} nodes`);
 *   },
 * });
 * controller.watchClusters(cache.getClusterSource("hello"));
 * controller.start();
 * await controller.idle();
 * assert.deepEqual(seen, ["workload-1: 0 nodes"]);
 * ```
 */
export class Controller<R> implements AsyncDisposable {
  /** The controller's name. */
  readonly name: string;
  readonly #reconcile: ControllerOptions<R>["reconcile"];
  readonly #concurrency: number;
  readonly #timeoutMs: number | undefined;
  readonly #queue: RateLimitingQueue<R>;
  readonly #log = logger("controller");
  readonly #running = new Map<string, AbortController>();
  readonly #workers: Promise<void>[] = [];
  readonly #sources: { source: ClusterSource<R>; unsubscribe: () => void }[] = [];
  /** Watch handles by cluster, then name: a disconnect ends them, stop() stops them. */
  readonly #watches = new Map<string, Map<string, WatchHandle>>();
  readonly #idle: (() => void)[] = [];
  readonly #reconciles: ((result: string) => void) | undefined;
  readonly #uncollect: (() => void) | undefined;
  readonly #clusterOf: (request: R) => ObjectKey | undefined;
  /** Writes of each request's last runs, for read-your-writes (`undefined`: turned off). */
  readonly #consistency: ConsistencyStore | undefined;
  readonly #staleSkips: ((kind: string) => void) | undefined;
  #started = false;
  #stopping: Promise<void> | undefined;

  /**
   * Creates the controller; nothing is reconciled before {@linkcode Controller.start}, but requests
   * are queued from the start.
   *
   * @throws {TypeError} For a missing name or reconcile function.
   * @throws {RangeError} For a concurrency that is not a positive integer.
   */
  constructor(options: ControllerOptions<R>) {
    if (typeof options?.name !== "string" || options.name === "") {
      throw new TypeError("controller name must be a non-empty string");
    }
    if (typeof options.reconcile !== "function") {
      throw new TypeError("controller reconcile must be a function");
    }
    const concurrency = options.concurrency ?? 1;
    if (!Number.isInteger(concurrency) || concurrency < 1) {
      throw new RangeError(`controller concurrency must be a positive integer, got ${concurrency}`);
    }
    const timeout = options.reconcileTimeoutMs;
    if (timeout !== undefined && !(timeout > 0)) {
      throw new RangeError(`controller reconcileTimeoutMs must be positive, got ${timeout}`);
    }
    this.name = options.name;
    this.#reconcile = options.reconcile;
    this.#concurrency = concurrency;
    this.#timeoutMs = timeout;
    const identity = options.identity ?? requestIdentity;
    this.#clusterOf = options.clusterOf ?? requestAsCluster;
    const ryw = options.readYourWrites ?? true;
    const maxWaitMs = typeof ryw === "object" ? ryw.maxWaitMs ?? 10_000 : 10_000;
    if (!(maxWaitMs >= 0)) {
      throw new RangeError(`controller readYourWrites.maxWaitMs must be >= 0, got ${maxWaitMs}`);
    }
    this.#consistency = ryw === false ? undefined : new ConsistencyStore(maxWaitMs);
    const registry = options.metrics;
    this.#queue = new RateLimitingQueue(
      identity,
      options.rateLimiter ?? defaultControllerRateLimiter(),
      registry ? observer(registry, this.name) : undefined,
    );
    if (registry) {
      const labels = { controller: this.name };
      const total = registry.counter(
        "controller_runtime_reconcile_total",
        "Total number of reconciliations per controller",
        ["controller", "result"],
      );
      for (const result of ["success", "error", "requeue_after"]) {
        total.inc({ ...labels, result }, 0);
      }
      this.#reconciles = (result) => total.inc({ ...labels, result });
      const skips = registry.counter(
        "clustercache_stale_cache_skips_total",
        "Reconciles put off because a cluster's cache had not yet seen the request's own writes.",
        ["controller", "kind"],
      );
      this.#staleSkips = (kind) => skips.inc({ ...labels, kind });
      const unfinished = registry.gauge(
        "workqueue_unfinished_work_seconds",
        "How many seconds of work has been done that is in progress and hasn't been observed by work_duration.",
        ["name", "controller"],
      );
      const longest = registry.gauge(
        "workqueue_longest_running_processor_seconds",
        "How many seconds has the longest running processor for workqueue been running.",
        ["name", "controller"],
      );
      this.#uncollect = registry.onCollect(() => {
        const { unfinishedSeconds, longestSeconds } = this.#queue.inProgress();
        unfinished.set({ name: this.name, controller: this.name }, unfinishedSeconds);
        longest.set({ name: this.name, controller: this.name }, longestSeconds);
      });
    }
  }

  /** Queues a request (once, however often it is queued before it runs). */
  enqueue(request: R): void {
    this.#queue.add(request);
  }

  /** Queues a request after `ms`. */
  enqueueAfter(request: R, ms: number): void {
    this.#queue.addAfter(request, ms);
  }

  /**
   * Reconciles the requests of a cluster source: every connect, disconnect and probe-failure event.
   * The controller owns the source from now on and closes it when it stops.
   *
   * @returns The controller, for chaining.
   */
  watchClusters(source: ClusterSource<R>): this {
    this.#checkOpen("watchClusters");
    // Watches of an old connection end with it (each handle lets go of itself when done); those a
    // reconcile made on the new one before this event arrived are still to be stopped with us.
    const unsubscribe = source.subscribe((request) => this.enqueue(request));
    this.#sources.push({ source, unsubscribe });
    return this;
  }

  /**
   * Watches a kind in a workload cluster; every event queues the requests `map` returns. Call it
   * from a reconcile: a name already watched on the connection is a no-op, and a reconnect forgets
   * the watch, so the next reconcile after a connect watches again. Stopping the controller stops it.
   *
   * @throws {ClusterNotConnectedError} When the cluster is not connected.
   * @throws {ClusterCacheError} `Closed` after {@linkcode Controller.stop}.
   */
  async watch<T extends KubeObject = KubeObject>(
    cache: Pick<ClusterCacheApi, "watch">,
    cluster: ObjectKey,
    input: ControllerWatchInput<T, R>,
  ): Promise<WatchHandle> {
    this.#checkOpen("watch");
    if (typeof input?.map !== "function") throw new TypeError("watch map must be a function");
    const { map, ...rest } = input;
    const handle = await cache.watch<T>(cluster, {
      ...rest,
      handler: (event) => {
        const requests = map(event);
        if (requests === undefined) return;
        if (Array.isArray(requests)) { for (const request of requests) this.enqueue(request); }
        else this.enqueue(requests as R);
      },
    });
    if (this.#stopping) {
      handle.stop();
      throw new ClusterCacheError("Closed", `controller ${this.name} stopped`);
    }
    const key = formatObjectKey(cluster);
    let handles = this.#watches.get(key);
    if (!handles) this.#watches.set(key, handles = new Map());
    // A name watched again (every reconcile does) is the same watch: kept once, not once a call.
    if (handles.get(input.name)?.done === handle.done) return handle;
    handles.set(input.name, handle);
    // A watch that ends (its Cluster deleted, its connection gone) is let go of at once.
    void handle.done.then(() => {
      const current = this.#watches.get(key);
      if (current?.get(input.name) !== handle) return;
      current.delete(input.name);
      if (current.size === 0) this.#watches.delete(key);
    });
    return handle;
  }

  /** Starts `concurrency` workers. Calling it again does nothing. */
  start(): void {
    this.#checkOpen("start");
    if (this.#started) return;
    this.#started = true;
    for (let i = 0; i < this.#concurrency; i++) this.#workers.push(this.#work());
  }

  /**
   * Resolves when nothing is queued, running or waiting for a delay (tests and demos use it; a
   * request that keeps failing keeps it waiting).
   */
  idle(): Promise<void> {
    if (this.#isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /** Whether {@linkcode Controller.stop} was called. */
  get stopped(): boolean {
    return this.#stopping !== undefined;
  }

  /**
   * Stops: sources and watches end, queued requests are dropped, and running reconciles get until
   * the deadline to finish. Past it, their signals abort and `stop` returns without waiting more.
   * A negative or non-numeric `timeoutMs` is refused (a rejected `RangeError`).
   */
  stop(options: StopOptions = {}): Promise<void> {
    const timeoutMs = options.timeoutMs ?? 30_000;
    if (typeof timeoutMs !== "number" || !(timeoutMs >= 0)) {
      return Promise.reject(new RangeError(`stop timeoutMs must be >= 0, got ${timeoutMs}`));
    }
    this.#stopping ??= this.#shutdown(timeoutMs);
    return this.#stopping;
  }

  /** Same as {@linkcode Controller.stop} with its defaults. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  async #shutdown(timeoutMs: number): Promise<void> {
    for (const { source, unsubscribe } of this.#sources.splice(0)) {
      unsubscribe();
      source.close();
    }
    for (const handles of this.#watches.values()) {
      for (const handle of handles.values()) handle.stop();
    }
    this.#watches.clear();
    this.#uncollect?.();
    const drained = this.#queue.shutDown();
    let timer: ReturnType<typeof setTimeout> | undefined;
    // Infinity waits for them, however long; a finite wait past a timer's range is as good.
    const deadline = new Promise<"deadline">((resolve) => {
      if (timeoutMs !== Infinity) {
        timer = setTimeout(() => resolve("deadline"), Math.min(timeoutMs, MAX_TIMER_MS));
      }
    });
    const outcome = await Promise.race([drained.then(() => "drained" as const), deadline]);
    clearTimeout(timer);
    if (outcome === "deadline") {
      this.#log.warn("Reconciles still running at the stop deadline were abandoned", {
        controller: this.name,
        running: [...this.#running.keys()],
        timeoutMs,
      });
      for (const abort of this.#running.values()) {
        abort.abort(new ClusterCacheError("Closed", `controller ${this.name} stopped`));
      }
    } else {
      await Promise.all(this.#workers);
    }
    this.#consistency?.clear();
    this.#notifyIdle(true);
  }

  #checkOpen(operation: string): void {
    if (this.#stopping) {
      throw new ClusterCacheError("Closed", `controller ${this.name} stopped: cannot ${operation}`);
    }
  }

  async #work(): Promise<void> {
    for (;;) {
      const next = await this.#queue.get();
      if (!next) return;
      try {
        await this.#process(next.key, next.item);
      } catch { /* its bookkeeping (a log sink that threw): the worker goes on, the key is done */ }
    }
  }

  async #process(key: string, request: R): Promise<void> {
    const abort = new AbortController();
    this.#running.set(key, abort);
    const timer = this.#timeoutMs === undefined ? undefined : setTimeout(
      () =>
        abort.abort(
          new ClusterCacheError("Timeout", `reconcile timed out after ${this.#timeoutMs}ms`),
        ),
      this.#timeoutMs,
    );
    try {
      if (!(await this.#cacheCaughtUp(key, request))) return;
      const retries = this.#queue.numRequeues(request);
      const result = await traced(
        `reconcile ${this.name}`,
        () => reconcileAttributes(this.name, key, this.#clusterOf(request), retries),
        () =>
          this.#runRecordingWrites(
            key,
            () => this.#reconcile(request, { signal: abort.signal, retries }),
          ),
      );
      const after = result?.requeueAfterMs;
      if (
        after !== undefined && (typeof after !== "number" || !(after >= 0) || after === Infinity)
      ) {
        throw new RangeError(`reconcile returned requeueAfterMs ${String(after)}`);
      }
      this.#queue.forget(request);
      if (after !== undefined && after > 0) {
        this.#queue.addAfter(request, after);
        this.#reconciles?.("requeue_after");
      } else this.#reconciles?.("success");
    } catch (error) {
      this.#reconciles?.("error");
      if (error instanceof ClusterNotConnectedError) {
        // Not worth a retry: the cluster source's next connect event brings the request back.
        this.#queue.forget(request);
        this.#log.debug("Reconcile skipped: cluster not connected", {
          controller: this.name,
          request: key,
        });
      } else if (!this.#stopping) {
        this.#queue.addRateLimited(request); // first: a log sink that throws must not lose it
        this.#log.error("Reconciler error", {
          controller: this.name,
          request: key,
          error: describeError(error),
        });
      }
    } finally {
      clearTimeout(timer);
      this.#running.delete(key);
      this.#queue.done(key);
      this.#notifyIdle(false);
    }
  }

  /**
   * Read-your-writes: `false` (and requeued shortly) when a cache is behind what the request's last
   * run wrote. Not a failure: no backoff, no error count.
   */
  async #cacheCaughtUp(key: string, request: R): Promise<boolean> {
    if (!this.#consistency) return true;
    const readiness = await this.#consistency.check(key, Date.now());
    if (readiness.ready && readiness.gaveUp) {
      this.#log.warn("Reconciling on a cache still older than the request's own writes", {
        controller: this.name,
        request: key,
        kind: readiness.gaveUp.kind,
        waitedMs: readiness.gaveUp.waitedMs,
      });
    }
    if (readiness.ready) return true;
    this.#staleSkips?.(readiness.kind);
    if (!this.#stopping) this.#queue.addAfter(request, STALE_REQUEUE_MS);
    return false;
  }

  #runRecordingWrites<T>(key: string, run: () => Promise<T>): Promise<T> {
    const consistency = this.#consistency;
    if (!consistency) return run();
    return recordingWrites((write) => consistency.wrote(key, write), run);
  }

  #isIdle(): boolean {
    return this.#queue.length === 0 && this.#queue.processing === 0 && this.#queue.delayed === 0;
  }

  #notifyIdle(force: boolean): void {
    if (!force && !this.#isIdle()) return;
    for (const resolve of this.#idle.splice(0)) resolve();
  }
}
