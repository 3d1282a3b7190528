/**
 * Everything a worker does for its cluster: the connection probe and pod check at init, the health
 * probe, informers started on first cached read, live reads and writes, and watch subscriptions.
 *
 * @module
 */

import type { Transform } from "../src/shared/cache_options.ts";
import type { Patch, WatchEvent } from "../src/shared/client_types.ts";
import { starved } from "../src/shared/probe_verdict.ts";
import {
  type IndexFunction,
  indexFunction,
  ModuleFunctions,
  page,
  selectCached,
} from "../src/shared/cache_query.ts";
import { ClusterCacheError, isNotFound, KubernetesApiError } from "../src/shared/errors.ts";
import type { KindRef, KubeList, KubeObject, ObjectKey } from "../src/shared/kube_object.ts";
import { compileFilters } from "../src/shared/predicates.ts";
import {
  type HandoverSnapshot,
  type HandoverState,
  type InitResult,
  kindKey,
  type PressureReport,
  type PushdownFilters,
  type WireDeleteOptions,
  type WireListOptions,
  type WireWriteOptions,
  type WorkerConfig,
  type WorkerStats,
} from "../src/shared/protocol.ts";
import { Transport } from "./http_transport.ts";
import { HeldDeltas } from "./held_deltas.ts";
import { RequestStats } from "./request_stats.ts";
import { Informer } from "./informer.ts";
import type { LoadMeter } from "./load_meter.ts";
import { storeKey } from "./store.ts";
import { describe } from "./reflector.ts";
import { type ResourceMapping, resourcePath, RestMapper } from "./rest_mapper.ts";
import type { WorkerLog } from "./worker_log.ts";

const PATCH_CONTENT_TYPES: Record<Patch["type"], string> = {
  merge: "application/merge-patch+json",
  strategic: "application/strategic-merge-patch+json",
  json: "application/json-patch+json",
  apply: "application/apply-patch+yaml",
};

function qualifiedResource(mapping: ResourceMapping): string {
  return mapping.group ? `${mapping.plural}.${mapping.group}` : mapping.plural;
}

function notFound(mapping: ResourceMapping, name: string): KubernetesApiError {
  return new KubernetesApiError({
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message: `${qualifiedResource(mapping)} "${name}" not found`,
    reason: "NotFound",
    details: { name, group: mapping.group, kind: mapping.plural },
    code: 404,
  });
}

function stripManagedFields(object: KubeObject): KubeObject {
  if (!object.metadata?.managedFields) return object;
  const { managedFields: _dropped, ...metadata } = object.metadata;
  return { ...object, metadata };
}

function resourceVersionOf(object: KubeObject): string {
  return object.metadata?.resourceVersion ?? "";
}

/** The cached objects a watch with these filters passes (what its initial adds are). */
function visible(informer: Informer, filters: PushdownFilters): KubeObject[] {
  const filter = compileFilters(filters);
  return [...informer.store.values()].filter((object) => filter({ type: "add", object }));
}

function sameKind(a: KindRef, b: KindRef): boolean {
  return a.apiVersion === b.apiVersion && a.kind === b.kind;
}

/** What a session's runtime reports through. */
export interface RuntimeHooks {
  log: WorkerLog;
  /** Sends a watch event to the main thread. */
  emit(watchId: number, event: WatchEvent): void;
  /** Reports informer counters. */
  count(kind: string, event: "list" | "watchRestart" | "error"): void;
  /** Measures the session's work (and marks it as the one running). */
  meter: LoadMeter;
  /** Sends a pressure report to the main thread. */
  report(pressure: PressureReport): void;
}

/**
 * A pooled session holds back a list too big for a shared worker this long, waiting to be moved to a
 * worker of its own (which lists instead); then lists anyway.
 */
const BIG_LIST_HOLD_MS = 30_000;

/** A watch handed over from another session, silent until resumed. */
interface PendingHandover {
  informer: Informer;
  filters: PushdownFilters;
  /** What the informer held when the watch began, by store key. */
  snapshot: Map<string, KubeObject>;
}

/** One cluster, as its worker serves it. */
export class ClusterRuntime {
  readonly #config: WorkerConfig;
  readonly #log: WorkerLog;
  readonly #emit: (watchId: number, event: WatchEvent) => void;
  readonly #count: (kind: string, event: "list" | "watchRestart" | "error") => void;
  readonly #meter: LoadMeter;
  readonly #report: (pressure: PressureReport) => void;
  readonly #heldStarts = new Set<ReturnType<typeof setTimeout>>();
  #transport: Transport;
  #mapper: RestMapper;
  readonly #informers = new Map<string, Informer>();
  readonly #watches = new Map<number, Informer>();
  readonly #held = new Map<number, HeldDeltas>();
  readonly #handovers = new Map<number, PendingHandover>();
  readonly #modules = new ModuleFunctions();
  #closed = false;

  constructor(config: WorkerConfig, hooks: RuntimeHooks) {
    this.#config = config;
    this.#log = hooks.log;
    this.#emit = hooks.emit;
    this.#count = hooks.count;
    this.#meter = hooks.meter;
    this.#report = hooks.report;
    this.#transport = this.#newTransport(config.rest);
    this.#mapper = new RestMapper(this.#transport);
  }

  #newTransport(rest: WorkerConfig["rest"]): Transport {
    return new Transport(
      rest,
      this.#config.maxResponseBytes,
      this.#recordRequest,
      (work) => this.#meter.measure(work),
    );
  }

  /** Objects held by every informer (for the load meter). */
  objectCount(): number {
    let count = 0;
    for (const informer of this.#informers.values()) count += informer.store.size;
    return count;
  }

  readonly #requests = new RequestStats();
  readonly #reported = new Map<string, { relists: number; resourceVersion: string | undefined }>();
  readonly #recordRequest = (verb: string, code: string, seconds: number) =>
    this.#requests.record(verb, code, seconds);

  /** What changed since the last call: request counts and latency, informer relists and versions. */
  takeStats(): WorkerStats {
    const informers: WorkerStats["informers"] = [];
    for (const [kind, informer] of this.#informers) {
      const now = { relists: informer.relists, resourceVersion: informer.lastSyncResourceVersion };
      const before = this.#reported.get(kind);
      if (before?.relists === now.relists && before.resourceVersion === now.resourceVersion) {
        continue;
      }
      informers.push({ kind, ...now, relists: now.relists - (before?.relists ?? 0) });
      this.#reported.set(kind, now);
    }
    return { ...this.#requests.take(), informers };
  }

  /**
   * Checks the cluster answers (`GET /`), discovers core v1, and detects whether this process runs as
   * a Pod of the cluster (then switches to the in-cluster address, as Cluster API does).
   */
  async init(signal: AbortSignal): Promise<InitResult> {
    try {
      await this.probe(this.#config.probeTimeoutMs, signal);
    } catch (error) {
      // A timeout is told apart: connect admission reads it as overload.
      const timedOut = error instanceof ClusterCacheError &&
        (error.code === "Timeout" || error.code === "Overloaded");
      throw new ClusterCacheError(
        timedOut ? "Timeout" : "Unreachable",
        `cluster is not reachable: ${describe(error)}`,
      );
    }
    try {
      await this.#mapper.mapping({ apiVersion: "v1", kind: "Node" }, signal);
    } catch (error) {
      throw new ClusterCacheError("Unreachable", `error getting REST mapping: ${describe(error)}`);
    }
    const running = await this.#runningOnWorkloadCluster(signal);
    if (running && this.#config.inCluster) {
      this.#transport.close();
      this.#transport = this.#newTransport({
        ...this.#config.rest,
        server: this.#config.inCluster.server,
        caPem: this.#config.inCluster.caPem,
      });
      this.#mapper = new RestMapper(this.#transport);
      try {
        await this.probe(this.#config.probeTimeoutMs, signal);
      } catch (error) {
        throw new ClusterCacheError(
          "Unreachable",
          `cluster is not reachable: ${describe(error)} (using in-cluster config)`,
        );
      }
    }
    return { server: this.#transport.server, runningOnWorkloadCluster: running };
  }

  async #runningOnWorkloadCluster(signal: AbortSignal): Promise<boolean> {
    const pod = this.#config.podIdentity;
    if (!pod) return false;
    try {
      const found = await this.#transport.json<KubeObject>(
        "GET",
        `/api/v1/namespaces/${encodeURIComponent(pod.namespace)}/pods/${
          encodeURIComponent(pod.name)
        }`,
        { signal },
      );
      return found?.metadata?.uid === pod.uid;
    } catch (error) {
      if (isNotFound(error)) return false;
      throw new ClusterCacheError(
        "Unreachable",
        `error checking if we're running on workload cluster: ${describe(error)}`,
      );
    }
  }

  /**
   * `GET /` within `timeoutMs`, outside the QPS limiter; reports this worker's heap size too.
   *
   * @throws {ClusterCacheError} `Overloaded` when it timed out but this worker itself ran far
   *   behind its timer (starved of CPU): the cluster may well have answered in time.
   */
  async probe(timeoutMs: number, signal: AbortSignal): Promise<{ heapUsedBytes: number }> {
    const started = performance.now();
    try {
      await this.#transport.json("GET", "/", { timeoutMs, signal, limited: false });
    } catch (error) {
      const late = performance.now() - started - timeoutMs;
      if (
        error instanceof ClusterCacheError && error.code === "Timeout" && starved(late, timeoutMs)
      ) {
        throw new ClusterCacheError(
          "Overloaded",
          `GET / timed out, but this worker ran ${Math.round(late)}ms behind its timer`,
        );
      }
      throw error;
    }
    return { heapUsedBytes: Deno.memoryUsage().heapUsed };
  }

  // ------------------------------------------------------------------ cache

  async #transformFor(kind: KindRef): Promise<((object: KubeObject) => KubeObject) | undefined> {
    const byObject = this.#config.cache.byObject.find((b) => sameKind(b.kind, kind));
    const transform: Transform | undefined = byObject?.transform ??
      this.#config.cache.defaultTransform;
    if (transform === undefined) return undefined;
    if (transform === "stripManagedFields") return stripManagedFields;
    const fn = await this.#modules.load(transform);
    return (object) => fn(object) as KubeObject;
  }

  async #indexesFor(kind: KindRef): Promise<IndexFunction[]> {
    const out: IndexFunction[] = [];
    for (const index of this.#config.cache.indexes) {
      if (!sameKind(index.kind, kind)) continue;
      const extract = index.extract;
      out.push(
        indexFunction(
          index,
          "fieldPath" in extract ? undefined : await this.#modules.load(extract),
        ),
      );
    }
    return out;
  }

  async #informer(kind: KindRef, signal: AbortSignal): Promise<Informer> {
    const key = kindKey(kind);
    const existing = this.#informers.get(key);
    if (existing) return existing;
    await this.#mapper.mapping(kind, signal); // fail fast for kinds the cluster does not serve
    const [transform, indexes] = await Promise.all([
      this.#transformFor(kind),
      this.#indexesFor(kind),
    ]);
    const raced = this.#informers.get(key);
    if (raced) return raced;
    if (this.#closed) throw new ClusterCacheError("Closed", "the connection was closed");
    const byObject = this.#config.cache.byObject.find((b) => sameKind(b.kind, kind));
    const informer = new Informer(
      kind,
      this.#mapper,
      this.#transport,
      {
        pageSize: this.#config.pageSize,
        watchList: this.#config.watchList,
        watchRequestTimeoutMs: this.#config.watchRequestTimeoutMs,
        watchIdleTimeoutMs: this.#config.watchIdleTimeoutMs,
        maxEventBytes: this.#config.maxResponseBytes,
        backoff: this.#config.backoff,
        indexes,
        ...(byObject?.labelSelector ? { labelSelector: byObject.labelSelector } : {}),
        ...(byObject?.fieldSelector ? { fieldSelector: byObject.fieldSelector } : {}),
        ...(transform ? { transform } : {}),
        ...(this.#config.cache.syncPeriodMs
          ? { syncPeriodMs: this.#config.cache.syncPeriodMs }
          : {}),
        measure: (work, events) => this.#meter.measure(work, events),
      },
      this.#log,
      (event) => this.#count(key, event),
    );
    this.#informers.set(key, informer);
    const count = this.#config.dedicated || byObject?.labelSelector || byObject?.fieldSelector
      ? undefined
      : await this.#objectsOnServer(kind, signal);
    if (this.#closed) throw new ClusterCacheError("Closed", "the connection was closed");
    if (count !== undefined && count > this.#config.pressure.objects) {
      // Listing it here would stall every neighbour: ask for a worker of its own, which lists it.
      const report = this.#meter.raise(`a list of ${count} ${kind.kind} objects`);
      if (report) this.#report(report);
      const timer = setTimeout(() => {
        this.#heldStarts.delete(timer);
        this.#log.warn("A big list waited for a worker of its own in vain; listing here", {
          kind: key,
          objects: count,
        });
        informer.start();
      }, BIG_LIST_HOLD_MS);
      this.#heldStarts.add(timer);
      return informer;
    }
    informer.start();
    this.#log.debug("Started informer", { kind: key });
    return informer;
  }

  /**
   * How many objects of a kind the cluster holds (`limit=1`: the server counts the rest), or
   * `undefined` when it does not say.
   */
  async #objectsOnServer(kind: KindRef, signal: AbortSignal): Promise<number | undefined> {
    try {
      const mapping = await this.#mapper.mapping(kind, signal);
      const page = await this.#transport.json<KubeList>("GET", resourcePath(mapping, undefined), {
        query: { limit: 1 },
        signal,
      });
      const remaining = page?.metadata?.remainingItemCount;
      return typeof remaining === "number" ? remaining + (page?.items?.length ?? 0) : undefined;
    } catch {
      return undefined; // the informer will tell
    }
  }

  /**
   * The kind's informer once synced, waiting at most `timeoutMs` (the informer keeps syncing after
   * that: the next read may succeed).
   */
  async #synced(kind: KindRef, signal: AbortSignal, timeoutMs: number): Promise<Informer> {
    const informer = await this.#informer(kind, signal);
    if (informer.synced) return informer;
    const timeout = AbortSignal.timeout(timeoutMs);
    try {
      await informer.waitForSync(AbortSignal.any([signal, timeout]));
    } catch (error) {
      if (timeout.aborted && !signal.aborted) {
        const last = informer.lastError ? ` (last error: ${informer.lastError})` : "";
        throw new ClusterCacheError(
          "CacheSyncTimeout",
          `error when waiting for cache to sync: ${
            kindKey(kind)
          } did not sync within ${timeoutMs}ms; it keeps syncing${last}`,
        );
      }
      throw error;
    }
    return informer;
  }

  /**
   * A cached read waits for the informer no longer than a live read would take (Cluster API wraps
   * cached Get and List in the client timeout): a kind that never syncs must not hang reconciles.
   */
  #forRead(kind: KindRef, signal: AbortSignal): Promise<Informer> {
    return this.#synced(kind, signal, this.#config.rest.timeoutMs);
  }

  #cached(kind: KindRef, cached: boolean): boolean {
    return cached && !this.#config.cache.disableFor.some((k) => sameKind(k, kind));
  }

  /** Reads one object, from the cache or live. */
  async get(
    kind: KindRef,
    key: ObjectKey,
    cached: boolean,
    signal: AbortSignal,
  ): Promise<KubeObject> {
    if (!this.#cached(kind, cached)) {
      const mapping = await this.#mapper.mapping(kind, signal);
      const object = await this.#live<KubeObject>(
        "GET",
        resourcePath(mapping, key.namespace, key.name),
        kind,
        { signal },
      );
      return this.#withKind(object, kind);
    }
    const informer = await this.#forRead(kind, signal);
    const mapping = await this.#mapper.mapping(kind, signal);
    // A namespace given for a cluster-scoped kind is ignored, as the API server (and a live get) do.
    const storeKey = mapping.namespaced && key.namespace
      ? `${key.namespace}/${key.name}`
      : key.name;
    const object = informer.store.get(storeKey);
    if (!object) throw notFound(mapping, key.name);
    return object;
  }

  /** Lists objects, from the cache (all at once) or live (paged when asked). */
  async list(
    kind: KindRef,
    options: WireListOptions,
    cached: boolean,
    signal: AbortSignal,
  ): Promise<KubeList> {
    const listKind = { apiVersion: kind.apiVersion, kind: `${kind.kind}List` };
    if (!this.#cached(kind, cached)) {
      const mapping = await this.#mapper.mapping(kind, signal);
      const list = await this.#live<KubeList>(
        "GET",
        resourcePath(mapping, options.namespace),
        kind,
        {
          signal,
          query: {
            labelSelector: options.labelSelector || undefined,
            fieldSelector: options.fieldSelector || undefined,
            limit: options.limit,
            continue: options.continue,
          },
        },
      );
      return { ...listKind, ...list, items: list.items.map((o) => this.#withKind(o, kind)) };
    }
    const informer = await this.#forRead(kind, signal);
    const mapping = await this.#mapper.mapping(kind, signal);
    const { namespace, ...rest } = options;
    const selected = selectCached(
      informer.store,
      mapping.namespaced && namespace ? { ...rest, namespace } : rest,
    );
    return { ...listKind, ...page(selected, options) };
  }

  // ------------------------------------------------------------------ live writes

  #withKind(object: KubeObject, kind: KindRef): KubeObject {
    if (object.apiVersion && object.kind) return object;
    return { apiVersion: kind.apiVersion, kind: kind.kind, ...object };
  }

  async #live<T>(
    method: string,
    path: string,
    kind: KindRef,
    options: {
      signal: AbortSignal;
      query?: Record<string, string | number | boolean | undefined>;
      body?: unknown;
      contentType?: string;
    },
  ): Promise<T> {
    try {
      return await this.#transport.json<T>(method, path, options);
    } catch (error) {
      // A 404 without an object name is "no such resource": the kind may be gone; rediscover next time.
      if (
        error instanceof KubernetesApiError && error.code === 404 && !error.status.details?.name
      ) {
        this.#mapper.invalidate(kind.apiVersion);
      }
      throw error;
    }
  }

  #writeQuery(options: WireWriteOptions): Record<string, string | undefined> {
    return {
      ...(options.dryRun ? { dryRun: "All" } : {}),
      ...(options.fieldManager ? { fieldManager: options.fieldManager } : {}),
    };
  }

  #kindOf(object: KubeObject, what: string): KindRef {
    if (typeof object?.apiVersion !== "string" || typeof object.kind !== "string") {
      throw new TypeError(`Cannot ${what} an object without apiVersion and kind`);
    }
    return { apiVersion: object.apiVersion, kind: object.kind };
  }

  #namespaceOf(
    mapping: ResourceMapping,
    namespace: string | undefined,
    what: string,
  ): string | undefined {
    if (mapping.namespaced && !namespace) {
      throw new TypeError(`Cannot ${what} a namespaced ${mapping.kind} without metadata.namespace`);
    }
    return mapping.namespaced ? namespace : undefined;
  }

  /** Creates an object. */
  async create(
    object: KubeObject,
    options: WireWriteOptions,
    signal: AbortSignal,
  ): Promise<KubeObject> {
    const kind = this.#kindOf(object, "create");
    const mapping = await this.#mapper.mapping(kind, signal);
    const namespace = this.#namespaceOf(mapping, object.metadata?.namespace, "create");
    const created = await this.#live<KubeObject>("POST", resourcePath(mapping, namespace), kind, {
      signal,
      body: object,
      query: this.#writeQuery(options),
    });
    return this.#withKind(created, kind);
  }

  /** Replaces an object (or its status). */
  async update(
    object: KubeObject,
    options: WireWriteOptions,
    signal: AbortSignal,
  ): Promise<KubeObject> {
    const kind = this.#kindOf(object, "update");
    const name = object.metadata?.name;
    if (!name) throw new TypeError("Cannot update an object without metadata.name");
    const mapping = await this.#mapper.mapping(kind, signal);
    const namespace = this.#namespaceOf(mapping, object.metadata?.namespace, "update");
    const updated = await this.#live<KubeObject>(
      "PUT",
      resourcePath(mapping, namespace, name, options.subresource),
      kind,
      { signal, body: object, query: this.#writeQuery(options) },
    );
    return this.#withKind(updated, kind);
  }

  /** Patches an object. */
  async patch(
    kind: KindRef,
    key: ObjectKey,
    patch: Patch,
    options: WireWriteOptions,
    signal: AbortSignal,
  ): Promise<KubeObject> {
    const contentType = PATCH_CONTENT_TYPES[patch?.type];
    if (!contentType) throw new TypeError(`Unknown patch type ${JSON.stringify(patch?.type)}`);
    const mapping = await this.#mapper.mapping(kind, signal);
    const namespace = this.#namespaceOf(mapping, key.namespace, "patch");
    const query: Record<string, string | undefined> = this.#writeQuery(options);
    if (patch.type === "apply") {
      query.fieldManager = patch.fieldManager;
      if (patch.force) query.force = "true";
    }
    const patched = await this.#live<KubeObject>(
      "PATCH",
      resourcePath(mapping, namespace, key.name, options.subresource),
      kind,
      { signal, body: patch.patch, contentType, query },
    );
    return this.#withKind(patched, kind);
  }

  /** Deletes an object. */
  async delete(
    kind: KindRef,
    key: ObjectKey,
    options: WireDeleteOptions,
    signal: AbortSignal,
  ): Promise<null> {
    const mapping = await this.#mapper.mapping(kind, signal);
    const namespace = this.#namespaceOf(mapping, key.namespace, "delete");
    const body: Record<string, unknown> = { kind: "DeleteOptions", apiVersion: "v1" };
    if (options.propagationPolicy) body.propagationPolicy = options.propagationPolicy;
    if (options.preconditions) body.preconditions = options.preconditions;
    if (options.gracePeriodSeconds !== undefined) {
      body.gracePeriodSeconds = options.gracePeriodSeconds;
    }
    await this.#live("DELETE", resourcePath(mapping, namespace, key.name), kind, {
      signal,
      body,
      query: options.dryRun ? { dryRun: "All" } : {},
    });
    return null;
  }

  // ------------------------------------------------------------------ watches

  /**
   * Subscribes a watch once the kind's informer has synced; emits initial adds, then changes. With
   * `handover`, emits nothing until {@linkcode ClusterRuntime.resume} and answers with the snapshot
   * that would have been the initial adds.
   */
  async watch(
    watchId: number,
    kind: KindRef,
    filters: PushdownFilters,
    handover: boolean,
    signal: AbortSignal,
  ): Promise<HandoverSnapshot | null> {
    const informer = await this.#synced(kind, signal, this.#config.cacheSyncTimeoutMs);
    if (this.#watches.has(watchId) || this.#handovers.has(watchId)) {
      throw new RangeError(`Watch ${watchId} already exists`);
    }
    if (handover) {
      const snapshot = new Map<string, KubeObject>();
      for (const object of visible(informer, filters)) snapshot.set(storeKey(object), object);
      this.#handovers.set(watchId, { informer, filters, snapshot });
      return [...snapshot].map(([key, object]) => [key, resourceVersionOf(object)]);
    }
    this.#subscribe(watchId, informer, filters, true);
    return null;
  }

  #subscribe(
    watchId: number,
    informer: Informer,
    filters: PushdownFilters,
    initial: boolean,
  ): void {
    this.#watches.set(watchId, informer);
    informer.subscribe(watchId, filters, (delta) => this.#deliver(watchId, delta), initial);
  }

  #deliver(watchId: number, delta: WatchEvent): void {
    const held = this.#held.get(watchId);
    if (held) held.push(delta);
    else this.#emit(watchId, delta);
  }

  /**
   * Starts a handed-over watch: tells its handler what changed since what it saw on the old session
   * (adds, updates with the object it saw as `oldObject`, deletes), through the watch's filters, then
   * every change from now on. Nothing is told twice; nothing is missed.
   */
  resume(watchId: number, state: HandoverState): null {
    const pending = this.#handovers.get(watchId);
    if (!pending) throw new RangeError(`Watch ${watchId} is not being handed over`);
    this.#handovers.delete(watchId);
    const { informer, filters, snapshot } = pending;
    const seen = new Map(state.seen);
    const sent = new Map(state.objects.map((object) => [storeKey(object), object]));
    const before = (key: string) => sent.get(key) ?? snapshot.get(key);
    const filter = compileFilters(filters);
    const deltas: WatchEvent[] = [];
    const present = new Set<string>();
    for (const object of visible(informer, filters)) {
      const key = storeKey(object);
      present.add(key);
      const version = seen.get(key);
      const oldObject = version === undefined ? undefined : before(key);
      if (version === undefined || !oldObject) deltas.push({ type: "add", object });
      else if (version !== resourceVersionOf(object)) {
        deltas.push({ type: "update", object, oldObject });
      }
    }
    for (const key of seen.keys()) {
      const object = present.has(key) ? undefined : before(key);
      if (object) deltas.push({ type: "delete", object });
    }
    this.#subscribe(watchId, informer, filters, false);
    for (const delta of deltas) if (filter(delta)) this.#deliver(watchId, delta);
    return null;
  }

  /** Uses a rotated bearer token from now on (watches in flight keep theirs until they restart). */
  setToken(token: string): null {
    this.#transport.setToken(token);
    return null;
  }

  /**
   * Ends a watch subscription. With `handover` (the new session's snapshot), first sends what was
   * held back, then answers with what the handler has seen and, in full, the objects the snapshot
   * lacks or holds at another resourceVersion.
   */
  unwatch(watchId: number, handover?: HandoverSnapshot): HandoverState | null {
    const informer = this.#watches.get(watchId);
    this.#handovers.delete(watchId);
    if (!informer) return handover ? { seen: [], objects: [] } : null;
    if (handover) this.flow(watchId, false);
    const filters = informer.filtersOf(watchId);
    informer.unsubscribe(watchId);
    this.#watches.delete(watchId);
    this.#held.delete(watchId);
    if (!handover) return null;
    const theirs = new Map(handover);
    const seen: HandoverSnapshot = [];
    const objects: KubeObject[] = [];
    for (const object of visible(informer, filters)) {
      const key = storeKey(object);
      const version = resourceVersionOf(object);
      seen.push([key, version]);
      if (theirs.get(key) !== version) objects.push(object);
    }
    return { seen, objects };
  }

  /** The kinds whose informers run. */
  kinds(): KindRef[] {
    return [...this.#informers.values()].map((informer) => informer.kind);
  }

  /** Starts these kinds' informers and waits for each to sync (a moved session warms up). */
  async warm(kinds: KindRef[], signal: AbortSignal): Promise<null> {
    await Promise.all(
      kinds.map((kind) => this.#synced(kind, signal, this.#config.cacheSyncTimeoutMs)),
    );
    return null;
  }

  /**
   * Pauses a watch (its deltas are held, merged per object: bounded by the number of objects) or
   * resumes it (what was held goes out first, in order).
   */
  flow(watchId: number, paused: boolean): void {
    if (!this.#watches.has(watchId)) return;
    if (paused) {
      if (!this.#held.has(watchId)) this.#held.set(watchId, new HeldDeltas());
      return;
    }
    const held = this.#held.get(watchId);
    this.#held.delete(watchId);
    for (const delta of held?.drain() ?? []) this.#emit(watchId, delta);
  }

  /** Stops every informer and closes the HTTP client. */
  close(): void {
    this.#closed = true;
    for (const timer of this.#heldStarts) clearTimeout(timer);
    this.#heldStarts.clear();
    for (const informer of this.#informers.values()) informer.stop();
    this.#informers.clear();
    this.#watches.clear();
    this.#handovers.clear();
    this.#transport.close();
  }
}
