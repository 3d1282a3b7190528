/**
 * The watch subscriptions of one session (worker side): each a subscription to its kind's informer
 * with the filters pushed down from the main thread, a window of events the main thread has not
 * acknowledged yet (the rest held, merged per object), and the handover of a watch between two
 * sessions when its cluster moves to another worker.
 *
 * A watch is answered once its informer has synced and it is subscribed; that it has *sent* every
 * existing object is told apart, once the last of them left the hold (the main thread's `synced`
 * waits for its handler to get through them, at the handler's pace, not within a call's timeout).
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
import { olderThan } from "../src/shared/resource_version.ts";
import { HeldDeltas, MARK } from "./held_deltas.ts";
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

/** A live subscription: what it may still send, and what waits. */
interface Subscription {
  informer: Informer;
  /** Events it may send before the main thread acknowledges more. */
  credit: number;
  /** Deltas beyond the window, merged per object. */
  held: HeldDeltas;
}

/** Where a session's watches send what they tell the main thread. */
export interface WatchOutput {
  /** Sends a watch event. */
  event(watchId: number, event: WatchEvent): void;
  /**
   * Says that the events sent so far tell the watch's handler of every object it had to be told of
   * when it began (or, resumed after a move, of every change since what the old session told it).
   */
  synced(watchId: number): void;
}

/** One session's watches. */
export class WatchSubscriptions {
  readonly #config: WorkerConfig;
  readonly #cache: InformerCache;
  readonly #output: WatchOutput;
  readonly #watches = new Map<number, Subscription>();
  readonly #handovers = new Map<number, PendingHandover>();
  /**
   * Acknowledgements that came for a watch still starting (waiting for its informer, or handed
   * over and not resumed): the main thread got through events another session sent. They widen the
   * window once it starts; dropped, they would shrink it for good.
   */
  readonly #early = new Map<number, number>();

  /** @param output Where events and syncs go (to the main thread). */
  constructor(config: WorkerConfig, cache: InformerCache, output: WatchOutput) {
    this.#config = config;
    this.#cache = cache;
    this.#output = output;
  }

  /**
   * Subscribes a watch once the kind's informer has synced; emits initial adds, then changes, at
   * most `window` before an acknowledgement, and says it synced once the last initial add is sent.
   * With `handover`, emits nothing until {@linkcode WatchSubscriptions.resume} and answers with the
   * snapshot that would have been the initial adds.
   */
  async watch(
    watchId: number,
    kind: KindRef,
    filters: PushdownFilters,
    window: number,
    handover: boolean,
    signal: AbortSignal,
  ): Promise<HandoverSnapshot | null> {
    if (this.#watches.has(watchId) || this.#handovers.has(watchId)) {
      throw new RangeError(`Watch ${watchId} already exists`);
    }
    this.#early.set(watchId, 0);
    let informer: Informer;
    try {
      informer = await this.#cache.synced(kind, signal, this.#config.cacheSyncTimeoutMs);
    } catch (error) {
      this.#early.delete(watchId);
      throw error;
    }
    // Stopped while its informer synced (unwatch forgets it): subscribing now would leak.
    if (!this.#early.has(watchId)) return handover ? [] : null;
    if (this.#watches.has(watchId) || this.#handovers.has(watchId)) {
      throw new RangeError(`Watch ${watchId} already exists`);
    }
    if (handover) {
      const snapshot = new Map<string, KubeObject>();
      for (const object of visible(informer, filters)) snapshot.set(storeKey(object), object);
      this.#handovers.set(watchId, { informer, filters, snapshot });
      return [...snapshot].map(([key, object]) => [key, resourceVersionOf(object)]);
    }
    const subscription = this.#subscribe(watchId, informer, filters, window, true);
    this.#markSynced(watchId, subscription);
    return null;
  }

  #subscribe(
    watchId: number,
    informer: Informer,
    filters: PushdownFilters,
    window: number,
    initial: boolean,
  ): Subscription {
    const early = this.#early.get(watchId) ?? 0;
    this.#early.delete(watchId);
    const subscription = { informer, credit: window + early, held: new HeldDeltas() };
    this.#watches.set(watchId, subscription);
    informer.subscribe(watchId, filters, (delta) => this.#deliver(watchId, delta), initial);
    return subscription;
  }

  /** Says the watch synced once what it holds now has been sent (at once when nothing waits). */
  #markSynced(watchId: number, subscription: Subscription): void {
    if (subscription.held.empty) this.#output.synced(watchId);
    else subscription.held.mark();
  }

  /** Sends a delta while the window allows and nothing waits before it; holds it otherwise. */
  #deliver(watchId: number, delta: WatchEvent): void {
    const subscription = this.#watches.get(watchId);
    if (!subscription) return;
    if (subscription.credit > 0 && subscription.held.empty) {
      subscription.credit--;
      this.#output.event(watchId, delta);
    } else {
      subscription.held.push(delta);
    }
  }

  /** The main thread got through `count` more events: send as many of those waiting. */
  ack(watchId: number, count: number): void {
    if (!(count > 0)) return;
    const subscription = this.#watches.get(watchId);
    if (!subscription) {
      const early = this.#early.get(watchId);
      if (early !== undefined) this.#early.set(watchId, early + count);
      return;
    }
    subscription.credit += count;
    this.#send(watchId, subscription);
  }

  /** Sends what waits, as far as the window allows, and the mark when it is reached. */
  #send(watchId: number, subscription: Subscription): void {
    if (subscription.held.empty) return;
    for (const item of subscription.held.take(Math.max(0, subscription.credit))) {
      if (item === MARK) {
        this.#output.synced(watchId);
        continue;
      }
      subscription.credit--;
      this.#output.event(watchId, item);
    }
  }

  /**
   * Starts a handed-over watch: first waits until this session's informer has reached where the
   * old one's was when it let go (a handler must never be told of a state older than one it saw: a
   * new session a moment behind would otherwise make it hear a spurious delete, or an update back
   * in time), then tells its handler what changed since what it saw on the old session (adds,
   * updates with the object it saw as `oldObject`, deletes), through the watch's filters, and says
   * it synced once those are sent, then every change from now on. Nothing is told twice; nothing
   * is missed.
   */
  async resume(
    watchId: number,
    state: HandoverState,
    window: number,
    signal: AbortSignal,
  ): Promise<null> {
    const pending = this.#handovers.get(watchId);
    if (!pending) throw new RangeError(`Watch ${watchId} is not being handed over`);
    await this.#cache.reach(pending.informer, state.resourceVersion, signal);
    if (this.#handovers.get(watchId) !== pending) return null; // stopped meanwhile
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
      else if (oldObject.metadata?.uid !== object.metadata?.uid) {
        // Deleted and created again under its name meanwhile: another object, not an update.
        deltas.push({ type: "delete", object: oldObject }, { type: "add", object });
      } else if (
        version !== resourceVersionOf(object) && !olderThan(resourceVersionOf(object), version)
      ) {
        deltas.push({ type: "update", object, oldObject });
      }
    }
    for (const key of seen.keys()) {
      const object = present.has(key) ? undefined : before(key);
      if (object) deltas.push({ type: "delete", object });
    }
    const subscription = this.#subscribe(watchId, informer, filters, window, false);
    for (const delta of deltas) if (filter(delta)) this.#deliver(watchId, delta);
    this.#markSynced(watchId, subscription);
    return null;
  }

  /**
   * Ends a watch subscription. With `handover` (the new session's snapshot), answers with what the
   * handler has been told, which is what the informer holds but for the deltas still waiting in the
   * window's hold, and, in full, the objects the snapshot lacks or holds at another version.
   */
  unwatch(watchId: number, handover?: HandoverSnapshot): HandoverState | null {
    const subscription = this.#watches.get(watchId);
    this.#handovers.delete(watchId);
    this.#early.delete(watchId);
    if (!subscription) return handover ? { seen: [], objects: [] } : null;
    const { informer, held } = subscription;
    const filters = informer.filtersOf(watchId);
    informer.unsubscribe(watchId);
    this.#watches.delete(watchId);
    if (!handover) return null;
    // What the handler was told: the store, rolled back over what it has not been told yet.
    const told = new Map<string, KubeObject>();
    for (const object of visible(informer, filters)) told.set(storeKey(object), object);
    for (const delta of held.firsts()) {
      const key = storeKey(delta.object);
      if (delta.type === "add") told.delete(key);
      else if (delta.type === "update") told.set(key, delta.oldObject ?? delta.object);
      else told.set(key, delta.object);
    }
    const theirs = new Map(handover);
    const seen: HandoverSnapshot = [];
    const objects: KubeObject[] = [];
    for (const [key, object] of told) {
      const version = resourceVersionOf(object);
      seen.push([key, version]);
      if (theirs.get(key) !== version) objects.push(object);
    }
    const resourceVersion = informer.lastSyncResourceVersion;
    return { seen, objects, ...(resourceVersion === undefined ? {} : { resourceVersion }) };
  }

  /** Ends every subscription. */
  close(): void {
    this.#watches.clear();
    this.#handovers.clear();
    this.#early.clear();
  }
}
