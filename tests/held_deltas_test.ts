import assert from "node:assert/strict";
import { HeldDeltas, MARK } from "../workers/held_deltas.ts";
import type { Delta } from "../workers/store.ts";

const obj = (name: string, rv: string) => ({
  metadata: { namespace: "ns", name, resourceVersion: rv },
});
const add = (name: string, rv: string): Delta => ({ type: "add", object: obj(name, rv) });
const update = (name: string, rv: string, old: string): Delta => ({
  type: "update",
  object: obj(name, rv),
  oldObject: obj(name, old),
});
const del = (name: string, rv: string): Delta => ({ type: "delete", object: obj(name, rv) });

function hold(...deltas: Delta[]): Delta[] {
  const held = new HeldDeltas();
  for (const d of deltas) held.push(d);
  return held.drain();
}

Deno.test("held deltas: updates merge into the add or the first update's old object", () => {
  assert.deepEqual(hold(add("a", "1"), update("a", "2", "1")), [add("a", "2")]);
  assert.deepEqual(hold(update("a", "2", "1"), update("a", "3", "2")), [update("a", "3", "1")]);
});

Deno.test("held deltas: an add then a delete is nothing; an update then a delete is a delete", () => {
  assert.deepEqual(hold(add("a", "1"), update("a", "2", "1"), del("a", "3")), []);
  assert.deepEqual(hold(update("a", "2", "1"), del("a", "3")), [del("a", "3")]);
});

Deno.test("held deltas: a delete then an add stays two deltas (a new object under the old name)", () => {
  assert.deepEqual(hold(del("a", "2"), add("a", "3"), update("a", "4", "3")), [
    del("a", "2"),
    add("a", "4"),
  ]);
  assert.deepEqual(hold(del("a", "2"), add("a", "3"), del("a", "4")), [del("a", "2")]);
});

Deno.test("held deltas: bounded by objects, in the order objects first changed", () => {
  const held = new HeldDeltas();
  for (let round = 0; round < 100; round++) {
    for (const name of ["b", "a", "c"]) {
      held.push(round === 0 ? add(name, "0") : update(name, String(round), String(round - 1)));
    }
  }
  assert.equal(held.size, 3);
  assert.deepEqual(held.drain(), [add("b", "99"), add("a", "99"), add("c", "99")]);
  assert.equal(held.size, 0);
});

Deno.test("held deltas: the mark passes once everything held before it is taken, counting for nothing", () => {
  const held = new HeldDeltas();
  held.push(add("a", "1"));
  held.push(add("b", "2"));
  held.mark();
  held.push(add("c", "3"));
  held.push(update("a", "4", "1")); // merges into a's add, before the mark
  assert.equal(held.size, 3, "the mark is not an object");
  assert.deepEqual(held.take(1), [add("a", "4")]);
  assert.deepEqual(held.take(1), [add("b", "2"), MARK], "the mark right after what preceded it");
  assert.deepEqual(held.take(1), [add("c", "3")]);
  assert.ok(held.empty);
});

Deno.test("held deltas: a mark whose objects merged away passes at take(0); firsts() and drain() skip it", () => {
  const held = new HeldDeltas();
  held.push(add("a", "1"));
  held.mark();
  held.push(update("b", "3", "2"));
  assert.deepEqual([...held.firsts()], [add("a", "1"), update("b", "3", "2")]);
  held.push(del("a", "4"));
  assert.equal(held.empty, false);
  assert.deepEqual(held.take(0), [MARK]);
  held.mark();
  assert.deepEqual(held.drain(), [update("b", "3", "2")]);
  assert.ok(held.empty);
});
