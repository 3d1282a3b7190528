/**
 * A session's watch subscriptions (worker side): the window of unacknowledged events, and the
 * handover of a watch to a session whose informer is a moment behind the old one's.
 */
import assert from "node:assert/strict";
import type { WatchEvent } from "../mod.ts";
import type { KubeObject } from "../src/shared/kube_object.ts";
import type { HandoverState, PushdownFilters, WorkerConfig } from "../src/shared/protocol.ts";
import type { Informer } from "../workers/informer.ts";
import { type InformerCache, reachVersion } from "../workers/informer_cache.ts";
import { storeKey } from "../workers/store.ts";
import { WatchSubscriptions } from "../workers/watch_subscriptions.ts";

const CM = { apiVersion: "v1", kind: "ConfigMap" };
const cm = (name: string, rv: number): KubeObject => ({
  ...CM,
  metadata: { namespace: "default", name, resourceVersion: String(rv), uid: `uid-${name}` },
});

/** An informer whose store and version a test moves by hand. */
class FakeInformer {
  readonly kind = CM;
  readonly #objects = new Map<string, KubeObject>();
  readonly #subscribers = new Map<number, (delta: WatchEvent) => void>();
  lastSyncResourceVersion: string | undefined;
  readonly store = { values: () => this.#objects.values() };

  constructor(objects: KubeObject[], rv: number) {
    for (const o of objects) this.#objects.set(storeKey(o), o);
    this.lastSyncResourceVersion = String(rv);
  }

  subscribe(id: number, _f: PushdownFilters, emit: (d: WatchEvent) => void, initial = true) {
    this.#subscribers.set(id, emit);
    if (initial) { for (const object of this.#objects.values()) emit({ type: "add", object }); }
  }
  filtersOf(): PushdownFilters {
    return {};
  }
  unsubscribe(id: number) {
    return this.#subscribers.delete(id);
  }

  /** A watch event reaches this informer. */
  apply(event: WatchEvent) {
    const key = storeKey(event.object);
    if (event.type === "delete") this.#objects.delete(key);
    else this.#objects.set(key, event.object);
    this.lastSyncResourceVersion = event.object.metadata!.resourceVersion;
    for (const emit of this.#subscribers.values()) emit(event);
  }
}

function subscriptions(informer: FakeInformer) {
  const emitted: WatchEvent[] = [];
  /** Where each `synced` came: how many events had been sent before it. */
  const syncs: number[] = [];
  const cache = {
    synced: () => Promise.resolve(informer as unknown as Informer),
    reach: (i: Informer, rv: string | undefined, signal: AbortSignal) =>
      reachVersion(i, rv, signal, Date.now() + 5_000),
  } as unknown as InformerCache;
  const watches = new WatchSubscriptions(
    { cacheSyncTimeoutMs: 5_000 } as WorkerConfig,
    cache,
    {
      event: (_id, event) => void emitted.push(event),
      synced: () => void syncs.push(emitted.length),
    },
  );
  return { watches, emitted, syncs };
}

const describe = (events: WatchEvent[]) =>
  events.map((e) => `${e.type} ${e.object.metadata!.name}@${e.object.metadata!.resourceVersion}`);

Deno.test("a watch sends at most its window; acknowledgements release what waits, merged per object", async () => {
  const informer = new FakeInformer([cm("a", 1), cm("b", 2), cm("c", 3)], 3);
  const { watches, emitted } = subscriptions(informer);
  await watches.watch(1, CM, {}, 2, false, new AbortController().signal);
  assert.deepEqual(describe(emitted), ["add a@1", "add b@2"], "the window is 2");
  informer.apply({ type: "update", object: cm("a", 4), oldObject: cm("a", 1) });
  informer.apply({ type: "update", object: cm("c", 5), oldObject: cm("c", 3) });
  informer.apply({ type: "update", object: cm("a", 6), oldObject: cm("a", 4) });
  assert.equal(emitted.length, 2, "nothing more before an acknowledgement");
  watches.ack(1, 10);
  assert.deepEqual(describe(emitted.slice(2)), ["add c@5", "update a@6"]);
  assert.equal(
    (emitted[3] as { oldObject: KubeObject }).oldObject.metadata!.resourceVersion,
    "1",
    "a's update is told against the version its handler saw",
  );
});

Deno.test("handover: the new session resumes only once it reached the old one's version: no spurious delete", async () => {
  // The old session told its handler of b, created at 6; the new session's informer is at 5.
  const informer = new FakeInformer([cm("a", 5)], 5);
  const { watches, emitted } = subscriptions(informer);
  const signal = new AbortController().signal;
  const snapshot = await watches.watch(1, CM, {}, 100, true, signal);
  assert.deepEqual(snapshot, [["default/a", "5"]]);
  const state: HandoverState = {
    seen: [["default/a", "5"], ["default/b", "6"]],
    objects: [cm("b", 6)],
    resourceVersion: "6",
  };
  const resumed = watches.resume(1, state, 100, signal);
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(describe(emitted), [], "nothing is told while the new session is behind");
  informer.apply({ type: "add", object: cm("b", 6) });
  await resumed;
  informer.apply({ type: "update", object: cm("b", 7), oldObject: cm("b", 6) });
  assert.deepEqual(describe(emitted), ["update b@7"], "b was never deleted, nor added twice");
});

Deno.test("handover: never an update back in time to a version older than the handler saw", async () => {
  const informer = new FakeInformer([cm("a", 5)], 5);
  const { watches, emitted } = subscriptions(informer);
  const signal = new AbortController().signal;
  await watches.watch(1, CM, {}, 100, true, signal);
  const state: HandoverState = { seen: [["default/a", "7"]], objects: [cm("a", 7)] };
  // No version to wait for (an older peer): the per-object check still holds.
  await watches.resume(1, state, 100, signal);
  assert.deepEqual(describe(emitted), []);
  informer.apply({ type: "update", object: cm("a", 7), oldObject: cm("a", 5) });
  informer.apply({ type: "update", object: cm("a", 8), oldObject: cm("a", 7) });
  assert.deepEqual(describe(emitted).slice(-1), ["update a@8"]);
});

Deno.test("handover: an object deleted and created again under its name meanwhile is a delete and an add, not an update", async () => {
  const again = { ...cm("a", 8), metadata: { ...cm("a", 8).metadata, uid: "uid-a-again" } };
  const informer = new FakeInformer([again], 8);
  const { watches, emitted } = subscriptions(informer);
  const signal = new AbortController().signal;
  await watches.watch(1, CM, {}, 100, true, signal);
  const state: HandoverState = {
    seen: [["default/a", "5"]],
    objects: [cm("a", 5)],
    resourceVersion: "8",
  };
  await watches.resume(1, state, 100, signal);
  assert.deepEqual(describe(emitted), ["delete a@5", "add a@8"]);
  assert.equal(emitted[1]!.object.metadata!.uid, "uid-a-again");
});

Deno.test("handover: opaque versions are not waited for", async () => {
  const informer = new FakeInformer([cm("a", 5)], 5);
  informer.lastSyncResourceVersion = "opaque-1";
  const { watches, emitted } = subscriptions(informer);
  const signal = new AbortController().signal;
  await watches.watch(1, CM, {}, 100, true, signal);
  const started = performance.now();
  await watches.resume(1, { seen: [], objects: [], resourceVersion: "opaque-2" }, 100, signal);
  assert.ok(performance.now() - started < 1_000, "resumed at once");
  assert.deepEqual(describe(emitted), ["add a@5"]);
});

Deno.test("handover from a session holding deltas back: the handler's view is what it was told, not the store", async () => {
  const informer = new FakeInformer([cm("a", 1), cm("b", 2)], 2);
  const { watches, emitted } = subscriptions(informer);
  const signal = new AbortController().signal;
  await watches.watch(1, CM, {}, 2, false, signal);
  assert.equal(emitted.length, 2);
  // Beyond the window: held, never told.
  informer.apply({ type: "update", object: cm("a", 3), oldObject: cm("a", 1) });
  informer.apply({ type: "add", object: cm("c", 4) });
  informer.apply({ type: "delete", object: cm("b", 5) });
  const state = watches.unwatch(1, [])!;
  const seen = new Map(state.seen);
  assert.equal(seen.get("default/a"), "1", "a as it was told, not as the store holds it");
  assert.ok(seen.has("default/b"), "b is still there for the handler: the new session deletes it");
  assert.ok(!seen.has("default/c"), "c was never told");
  assert.equal(state.resourceVersion, "5");
});

Deno.test("a watch stopped while its informer syncs never subscribes", async () => {
  const informer = new FakeInformer([cm("a", 1)], 1);
  const syncing = Promise.withResolvers<Informer>();
  const emitted: WatchEvent[] = [];
  const watches = new WatchSubscriptions(
    { cacheSyncTimeoutMs: 5_000 } as WorkerConfig,
    { synced: () => syncing.promise } as unknown as InformerCache,
    { event: (_id, event) => void emitted.push(event), synced: () => {} },
  );
  const watching = watches.watch(1, CM, {}, 10, false, new AbortController().signal);
  assert.equal(watches.unwatch(1), null, "stopped before it subscribed");
  syncing.resolve(informer as unknown as Informer);
  assert.equal(await watching, null);
  informer.apply({ type: "add", object: cm("b", 2) });
  assert.deepEqual(emitted, [], "nothing delivered to a stopped watch");
  assert.equal(informer.unsubscribe(1), false, "not subscribed to the informer");
});

Deno.test("a watch says it synced once its last initial add left the hold, before later changes", async () => {
  const informer = new FakeInformer([cm("a", 1), cm("b", 2), cm("c", 3), cm("d", 4)], 4);
  const { watches, emitted, syncs } = subscriptions(informer);
  await watches.watch(1, CM, {}, 2, false, new AbortController().signal);
  assert.deepEqual(syncs, [], "c and d wait beyond the window: not synced yet");
  informer.apply({ type: "add", object: cm("e", 5) }); // after the initial adds
  informer.apply({ type: "update", object: cm("a", 6), oldObject: cm("a", 1) }); // a was sent
  watches.ack(1, 1);
  assert.deepEqual(describe(emitted), ["add a@1", "add b@2", "add c@3"]);
  assert.deepEqual(syncs, [], "d still waits");
  watches.ack(1, 1);
  assert.deepEqual(syncs, [4], "synced right after d, the last initial add");
  assert.deepEqual(describe(emitted).slice(4), [], "the later changes wait for their own credit");
  watches.ack(1, 10);
  assert.deepEqual(describe(emitted).slice(4), ["add e@5", "update a@6"]);
  assert.deepEqual(syncs, [4], "synced once");
});

Deno.test("a watch whose initial adds fit its window says it synced at once; one with no objects too", async () => {
  const informer = new FakeInformer([cm("a", 1), cm("b", 2)], 2);
  const { watches, syncs } = subscriptions(informer);
  await watches.watch(1, CM, {}, 2, false, new AbortController().signal);
  assert.deepEqual(syncs, [2]);
  const empty = subscriptions(new FakeInformer([], 1));
  await empty.watches.watch(1, CM, {}, 2, false, new AbortController().signal);
  assert.deepEqual(empty.syncs, [0]);
});

Deno.test("a watch whose held initial adds were deleted meanwhile says it synced at the next acknowledgement", async () => {
  const informer = new FakeInformer([cm("a", 1), cm("b", 2), cm("c", 3)], 3);
  const { watches, emitted, syncs } = subscriptions(informer);
  await watches.watch(1, CM, {}, 1, false, new AbortController().signal);
  informer.apply({ type: "delete", object: cm("b", 4) });
  informer.apply({ type: "delete", object: cm("c", 5) });
  assert.deepEqual(syncs, []);
  watches.ack(1, 1);
  assert.deepEqual(describe(emitted), ["add a@1"], "b and c were never told: nothing to tell");
  assert.deepEqual(syncs, [1]);
});

Deno.test("a resumed watch says it synced after the changes since what the old session told", async () => {
  const informer = new FakeInformer([cm("a", 2), cm("b", 3), cm("c", 4)], 4);
  const { watches, emitted, syncs } = subscriptions(informer);
  const signal = new AbortController().signal;
  await watches.watch(1, CM, {}, 0, true, signal);
  // The old session had told only of a, at 1 (b and c waited in its hold).
  await watches.resume(1, { seen: [["default/a", "1"]], objects: [cm("a", 1)] }, 2, signal);
  assert.deepEqual(describe(emitted), ["update a@2", "add b@3"]);
  assert.deepEqual(syncs, []);
  watches.ack(1, 2);
  assert.deepEqual(describe(emitted), ["update a@2", "add b@3", "add c@4"]);
  assert.deepEqual(syncs, [3]);
});
