/**
 * An informer: a {@linkcode Reflector} filling an {@linkcode ObjectCache}, and fan-out of every change
 * to the watch subscriptions of that kind, after the filters pushed down from the main thread.
 *
 * @module
 */

import type { KindRef, KubeObject } from "../src/shared/kube_object.ts";
import { ClusterCacheError, isForbidden, isUnauthorized } from "../src/shared/errors.ts";
import { compileFilters } from "../src/shared/predicates.ts";
import type { InformerState, PushdownFilters } from "../src/shared/protocol.ts";
import { kindKey } from "../src/shared/protocol.ts";
import type { Transport } from "./http_transport.ts";
import { describe, Reflector, type ReflectorLog, type ReflectorOptions } from "./reflector.ts";
import type { RestMapper } from "./rest_mapper.ts";
import type { IndexFunction } from "../src/shared/cache_query.ts";
import { type Delta, ObjectCache, storeKey } from "./store.ts";

/** Options of one informer. */
export interface InformerOptions extends ReflectorOptions {
  /** Applied to every object before it is stored. */
  transform?: (object: KubeObject) => KubeObject;
  /** Extra indexes. */
  indexes: IndexFunction[];
  /** Re-deliver everything as updates this often. */
  syncPeriodMs?: number;
  /** Runs the informer's work on what the server sent, for the session's load meter. */
  measure?: <T>(work: () => T, events: number) => T;
}

interface Subscription {
  filter: (delta: Delta) => boolean;
  filters: PushdownFilters;
  emit: (delta: Delta) => void;
}

interface Waiter {
  resolve: () => void;
  reject: (error: unknown) => void;
}

/** One kind's informer. */
export class Informer {
  /** The kind. */
  readonly kind: KindRef;
  /** The cache. */
  readonly store: ObjectCache;
  readonly #reflector: Reflector;
  readonly #transform: ((object: KubeObject) => KubeObject) | undefined;
  readonly #subscriptions = new Map<number, Subscription>();
  readonly #waiters = new Set<Waiter>();
  readonly #abort = new AbortController();
  readonly #syncPeriodMs: number | undefined;
  readonly #onCount: (event: "list" | "watchRestart" | "error") => void;
  #resync: ReturnType<typeof setInterval> | undefined;
  #synced = false;
  #lastError: string | undefined;
  /** Since when list and watch attempts have failed without the server answering in between. */
  #failingSince: number | undefined;
  /** Whether the last failure was a refusal (retrying alone will not mend it). */
  #refused = false;
  #lastHeardAt = 0;
  #events = 0;
  #lists = 0;
  #relists = 0;

  /**
   * @param onCount Called for metrics on lists, watch restarts and errors.
   */
  constructor(
    kind: KindRef,
    mapper: RestMapper,
    transport: Transport,
    options: InformerOptions,
    log: ReflectorLog,
    onCount: (event: "list" | "watchRestart" | "error") => void,
  ) {
    this.kind = kind;
    this.#transform = options.transform;
    this.#syncPeriodMs = options.syncPeriodMs;
    this.#onCount = onCount;
    this.store = new ObjectCache(
      options.indexes,
      (field, error) =>
        log.warn("An index extractor threw; the object is not indexed", {
          kind: kind.kind,
          field,
          error: describe(error),
        }),
    );
    const measure = options.measure ?? ((work) => work());
    this.#reflector = new Reflector(kind, mapper, transport, options, {
      replace: (items) => measure(() => this.#replace(items), items.length),
      apply: (type, object) => measure(() => this.#apply(type, object), 1),
      failed: (error) => this.#failed(error),
      heard: () => {
        this.#lastHeardAt = Date.now();
        this.#lastError = undefined;
        this.#failingSince = undefined;
        this.#refused = false;
      },
      count: (event) => {
        if (event === "list" && this.#lists++ > 0) this.#relists++;
        this.#onCount(event);
      },
    }, log);
  }

  /** Lists after the first: the store was replaced because a watch could not resume. */
  get relists(): number {
    return this.#relists;
  }

  /** The last resourceVersion the store is known to be at. */
  get lastSyncResourceVersion(): string | undefined {
    return this.#reflector.lastSyncResourceVersion;
  }

  /**
   * Where the informer is, for health and metrics: a kind failing since a time never fails the
   * cluster or the other kinds, but its readers and operators should know.
   */
  state(): InformerState {
    const failing = this.#failingSince !== undefined;
    return {
      kind: kindKey(this.kind),
      phase: failing ? "failing" : this.#synced ? "synced" : "syncing",
      synced: this.#synced,
      resourceVersion: this.lastSyncResourceVersion,
      objects: this.store.size,
      events: this.#events,
      lastHeardAt: this.#lastHeardAt,
      ...(failing
        ? { failingSince: this.#failingSince, lastError: this.#lastError, refused: this.#refused }
        : {}),
    };
  }

  /** When the server last answered for it (epoch ms; 0: never): a page, an event, a bookmark. */
  get lastHeardAt(): number {
    return this.#lastHeardAt;
  }

  /** Whether it waits for the fleet's list budget. */
  get queuedForList(): boolean {
    return this.#reflector.queuedForList;
  }

  /** Whether a read or a watch waits for the informer to sync (its list goes first in the budget). */
  get awaited(): boolean {
    return this.#waiters.size > 0;
  }

  /** Whether the first list has completed. */
  get synced(): boolean {
    return this.#synced;
  }

  /** Starts the reflector (and the resync timer). */
  start(): void {
    void this.#reflector.run(this.#abort.signal);
    if (this.#syncPeriodMs && this.#syncPeriodMs > 0) {
      this.#resync = setInterval(() => {
        for (const object of this.store.values()) {
          this.#fanOut({ type: "update", object, oldObject: object });
        }
      }, this.#syncPeriodMs);
    }
  }

  /**
   * Resolves once the informer has synced. Rejects at once when the cluster refuses the kind (401,
   * 403, not served); the informer keeps retrying in the background regardless.
   */
  waitForSync(signal: AbortSignal): Promise<void> {
    if (this.#synced) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        resolve: () => {
          signal.removeEventListener("abort", onAbort);
          resolve();
        },
        reject: (error) => {
          signal.removeEventListener("abort", onAbort);
          reject(error);
        },
      };
      const onAbort = () => {
        this.#waiters.delete(waiter);
        reject(signal.reason);
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.#waiters.add(waiter);
    });
  }

  /** The last list or watch error since the last success, for messages. */
  get lastError(): string | undefined {
    return this.#lastError;
  }

  /**
   * Adds a subscription: emits an add for every cached object that passes the filter (unless not
   * `initial`), then every change. Call after {@linkcode Informer.waitForSync}.
   */
  subscribe(
    id: number,
    filters: PushdownFilters,
    emit: (delta: Delta) => void,
    initial = true,
  ): void {
    const filter = compileFilters(filters);
    this.#subscriptions.set(id, { filter, filters, emit });
    if (!initial) return;
    for (const object of this.store.values()) {
      const delta: Delta = { type: "add", object };
      if (filter(delta)) emit(delta);
    }
  }

  /** The filters a subscription was made with (none when it is unknown). */
  filtersOf(id: number): PushdownFilters {
    return this.#subscriptions.get(id)?.filters ?? {};
  }

  /** Removes a subscription. */
  unsubscribe(id: number): boolean {
    return this.#subscriptions.delete(id);
  }

  /**
   * Stops talking to the server but keeps the store (a disconnected cluster's last cache, for stale
   * reads). An informer that had not synced has nothing to serve: its waiters are rejected.
   */
  freeze(): void {
    this.#abort.abort();
    clearInterval(this.#resync);
    for (const waiter of this.#waiters) {
      waiter.reject(
        new ClusterCacheError("Closed", `the informer for ${kindKey(this.kind)} never synced`),
      );
    }
    this.#waiters.clear();
  }

  /** Stops the reflector and timers; waiters are rejected. */
  stop(): void {
    this.#abort.abort();
    clearInterval(this.#resync);
    for (const waiter of this.#waiters) {
      waiter.reject(
        new ClusterCacheError("Closed", `the informer for ${kindKey(this.kind)} was stopped`),
      );
    }
    this.#waiters.clear();
    this.#subscriptions.clear();
  }

  #prepare(object: KubeObject): KubeObject {
    return this.#transform ? this.#transform(object) : object;
  }

  #replace(items: KubeObject[]): void {
    const deltas = this.store.replace(items.map((o) => this.#prepare(o)));
    this.#lastError = undefined;
    if (!this.#synced) {
      this.#synced = true;
      for (const waiter of this.#waiters) waiter.resolve();
      this.#waiters.clear();
    }
    for (const delta of deltas) this.#fanOut(delta);
  }

  /**
   * Applies a watch event; returns `false` (and changes nothing) when the event contradicts the store:
   * a modification of an object it does not hold, or a different object (UID) under a known name.
   * A consistent server never sends those; they mean the server lost state, and only a relist helps.
   */
  #apply(type: "ADDED" | "MODIFIED" | "DELETED", object: KubeObject): boolean {
    this.#lastError = undefined;
    this.#events++;
    const prepared = this.#prepare(object);
    const stored = this.store.get(storeKey(prepared));
    const uid = prepared.metadata?.uid;
    if (type === "MODIFIED" && !stored) return false;
    if (type !== "DELETED" && stored?.metadata?.uid && uid && stored.metadata.uid !== uid) {
      return false;
    }
    const deltas = type === "DELETED"
      ? this.store.remove(storeKey(prepared), prepared)
      : this.store.upsert(prepared);
    for (const delta of deltas) this.#fanOut(delta);
    return true;
  }

  #failed(error: unknown): void {
    this.#lastError = describe(error);
    this.#failingSince ??= Date.now();
    this.#onCount("error");
    const refused = isForbidden(error) || isUnauthorized(error) ||
      (error instanceof ClusterCacheError && error.code === "NoKindMatch");
    this.#refused = refused;
    if (!this.#synced && refused) {
      for (const waiter of this.#waiters) waiter.reject(error);
      this.#waiters.clear();
    }
  }

  #fanOut(delta: Delta): void {
    for (const subscription of this.#subscriptions.values()) {
      if (subscription.filter(delta)) subscription.emit(delta);
    }
  }
}
