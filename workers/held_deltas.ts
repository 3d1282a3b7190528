/**
 * Deltas held back while the main thread is behind on a watch (worker side): merged per object the
 * way client-go's DeltaFIFO compresses them, so what waits is bounded by the number of objects, not
 * by the number of changes, and nothing the handler must see is lost: an object added and updated
 * waits as one add of its latest state, one updated twice as one update, one added and deleted
 * not at all, one deleted and added again as a delete then an add.
 *
 * A mark can wait among them: it passes once everything held before it has been taken (a new
 * watch's mark says its handler has been sent every object that existed).
 *
 * @module
 */

import type { Delta } from "./store.ts";

function keyOf(delta: Delta): string {
  const metadata = delta.object.metadata;
  return `${metadata?.namespace ?? ""}/${metadata?.name ?? ""}`;
}

/** What {@linkcode HeldDeltas.take} gives where the mark was: all held before it has been taken. */
export const MARK: unique symbol = Symbol("mark");

/** The mark's place among the objects' keys (theirs all hold a '/'). */
const MARK_KEY = "mark";

/** Merges `next` into what waits for one object (at most two deltas: a delete, then an add). */
function merge(waiting: Delta[], next: Delta): Delta[] {
  const last = waiting.at(-1);
  if (!last) return [next];
  const before = waiting.slice(0, -1);
  if (next.type === "update") {
    if (last.type === "add") return [...before, { type: "add", object: next.object }];
    if (last.type === "update") {
      return [...before, { type: "update", object: next.object, oldObject: last.oldObject }];
    }
    return [...waiting, next]; // after a delete: not expected from an informer, kept as is
  }
  if (next.type === "delete") {
    if (last.type === "add") return before; // never seen: nothing to tell
    if (last.type === "update") return [...before, { type: "delete", object: next.object }];
    return waiting; // deleted twice
  }
  // An add after a delete is a new object under the old name.
  if (last.type === "delete") return [...waiting, next];
  return [...before, next];
}

/**
 * The deltas of one watch held back (its window is used up), merged per object, in the order
 * objects first changed.
 *
 * @example An add and two updates wait as one add
 * ```ts
 * import assert from "node:assert/strict";
 * import { HeldDeltas } from "./held_deltas.ts";
 * const held = new HeldDeltas();
 * const v = (n: string) => ({ metadata: { name: "a", resourceVersion: n } });
 * held.push({ type: "add", object: v("1") });
 * held.push({ type: "update", object: v("2"), oldObject: v("1") });
 * held.push({ type: "update", object: v("3"), oldObject: v("2") });
 * assert.deepEqual(held.drain(), [{ type: "add", object: v("3") }]);
 * ```
 */
export class HeldDeltas {
  #byObject = new Map<string, Delta[]>();

  /** Objects with something waiting. */
  get size(): number {
    return this.#byObject.size - (this.#byObject.has(MARK_KEY) ? 1 : 0);
  }

  /** Whether nothing waits, not even the mark. */
  get empty(): boolean {
    return this.#byObject.size === 0;
  }

  /** Puts the mark after everything held now (moving it there if it waited already). */
  mark(): void {
    this.#byObject.delete(MARK_KEY);
    this.#byObject.set(MARK_KEY, []);
  }

  /** Holds a delta. */
  push(delta: Delta): void {
    const key = keyOf(delta);
    const merged = merge(this.#byObject.get(key) ?? [], delta);
    if (merged.length === 0) this.#byObject.delete(key);
    else this.#byObject.set(key, merged);
  }

  /** Every delta held, in order; empties the hold (the mark too). */
  drain(): Delta[] {
    const out = [...this.#byObject.values()].flat();
    this.#byObject = new Map();
    return out;
  }

  /**
   * Takes what waits for the objects that changed first, about `count` deltas (an object's delete
   * and add go together, so one more at most), in order, with {@linkcode MARK} where the mark was
   * once everything before it is taken (it counts for nothing: `take(0)` passes a mark that waits
   * first).
   */
  take(count: number): (Delta | typeof MARK)[] {
    const out: (Delta | typeof MARK)[] = [];
    let taken = 0;
    for (const [key, deltas] of this.#byObject) {
      if (key === MARK_KEY) out.push(MARK);
      else {
        if (taken >= count) break;
        out.push(...deltas);
        taken += deltas.length;
      }
      this.#byObject.delete(key);
    }
    return out;
  }

  /** The first delta held for each object (what its handler has not been told of yet). */
  firsts(): IterableIterator<Delta> {
    return this.#firsts();
  }

  *#firsts(): IterableIterator<Delta> {
    for (const [key, deltas] of this.#byObject) if (key !== MARK_KEY) yield deltas[0]!;
  }
}
