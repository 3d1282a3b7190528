/**
 * The watch subscriptions of one session (worker side): each a subscription to its kind's informer
 * with the filters pushed down from the main thread, flow control when the main thread falls behind,
 * and the handover of a watch between two sessions when its cluster moves to another worker.
 *
 * @module
 */

import type { WatchEvent } from "../src/shared/client_types.ts";
import type { KindRef, KubeObject } from "../src/shared/kube_object.ts";
import { compileFilters } from "../src/shared/predicates.ts";
import type {
  HandoverSnapshot,
  HandoverState,
  PushdownFilters,
  WorkerConfig,
} from "../src/shared/protocol.ts";
import { HeldDeltas } from "./held_deltas.ts";
import type { Informer } from "./informer.ts";
import type { InformerCache } from "./informer_cache.ts";
import { storeKey } from "./store.ts";

function resourceVersionOf(object: KubeObject): string {
  return object.metadata?.resourceVersion ?? "";
}

/** The cached objects a watch with these filters passes (what its initial adds are). */
function visible(informer: Informer, filters: PushdownFilters): KubeObject[] {
  const filter = compileFilters(filters);
  return [...informer.store.values()].filter((object) => filter({ type: "add", object }));
}

/** A watch handed over from another session, silent until resumed. */
interface PendingHandover {
  informer: Informer;
  filters: PushdownFilters;
  /** What the informer held when the watch began, by store key. */
  snapshot: Map<string, KubeObject>;
}

/** One session's watches. */
export class WatchSubscriptions {
  readonly #config: WorkerConfig;
  readonly #cache: InformerCache;
  readonly #emit: (watchId: number, event: WatchEvent) => void;
  readonly #watches = new Map<number, Informer>();
  readonly #held = new Map<number, HeldDeltas>();
  readonly #handovers = new Map<number, PendingHandover>();

  /** @param emit Sends a watch event to the main thread. */
  constructor(
    config: WorkerConfig,
    cache: InformerCache,
    emit: (watchId: number, event: WatchEvent) => void,
  ) {
    this.#config = config;
    this.#cache = cache;
    this.#emit = emit;
  }

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
    const informer = await this.#cache.synced(kind, signal, this.#config.cacheSyncTimeoutMs);
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

  /** Ends every subscription. */
  close(): void {
    this.#watches.clear();
    this.#held.clear();
    this.#handovers.clear();
  }
}
