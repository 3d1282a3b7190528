/**
 * Watch delivery on the main thread: a ring queue, handler work in bounded slices, and a window of
 * unacknowledged events the worker never exceeds, however slow or async the handler.
 */
import assert from "node:assert/strict";
import type { WatchEvent } from "../mod.ts";
import { Ring, SLICE_MS, WATCH_WINDOW, WatchDispatch } from "../src/main/watches/watch_dispatch.ts";

const event = (i: number): WatchEvent => ({
  type: "add",
  object: { metadata: { name: `o-${i}`, resourceVersion: String(i) } },
});

/**
 * A worker as the protocol has it: sends while it has credit, holds the rest, and sends more as
 * acknowledgements come (in messages of up to 512 events).
 */
function fakeWorker(total: number) {
  let credit = WATCH_WINDOW;
  let next = 0;
  let dispatch: WatchDispatch | undefined;
  const send = () => {
    while (credit > 0 && next < total && dispatch) {
      const batch: WatchEvent[] = [];
      while (credit > 0 && next < total && batch.length < 512) {
        batch.push(event(next++));
        credit--;
      }
      dispatch.push(batch);
    }
  };
  return {
    attach(d: WatchDispatch) {
      dispatch = d;
      send();
    },
    ack(count: number) {
      credit += count;
      queueMicrotask(send); // a message to the worker, and its answer, later
    },
  };
}

Deno.test("Ring is a first-in first-out queue that grows", () => {
  const ring = new Ring<number>();
  for (let i = 0; i < 100; i++) ring.push(i);
  for (let i = 0; i < 50; i++) assert.equal(ring.shift(), i);
  for (let i = 100; i < 300; i++) ring.push(i);
  const out: number[] = [];
  for (let x = ring.shift(); x !== undefined; x = ring.shift()) out.push(x);
  assert.deepEqual(out, Array.from({ length: 250 }, (_, i) => i + 50));
  assert.equal(ring.size, 0);
});

Deno.test("an async handler through 50,000 events: every event once and in order, the backlog within the window", async () => {
  const total = 50_000;
  const worker = fakeWorker(total);
  const seen: number[] = [];
  const done = Promise.withResolvers<void>();
  const dispatch = new WatchDispatch(
    async (e) => {
      await Promise.resolve(); // `await client.get(...)`, minus the round trip
      seen.push(Number(e.object.metadata!.resourceVersion));
      if (seen.length === total) done.resolve();
    },
    [],
    (error) => done.reject(error),
    (count) => worker.ack(count),
  );
  worker.attach(dispatch);
  await done.promise;
  await new Promise((r) => setTimeout(r, 0)); // the last event's acknowledgement
  assert.equal(seen.length, total);
  assert.ok(seen.every((v, i) => v === i), "in order, none twice");
  assert.ok(dispatch.maxBacklog <= WATCH_WINDOW, `backlog reached ${dispatch.maxBacklog}`);
  assert.equal(dispatch.outstanding, 0, "everything handled was acknowledged");
});

Deno.test("handler work runs in slices: a timer gets its turn while 10,000 events drain", async () => {
  const total = 50_000;
  const worker = fakeWorker(total);
  // 0.1 ms a call: a slice ends by its clock after ~50 calls, far below its cap of SLICE_EVENTS.
  const spinMs = 0.1;
  let handled = 0;
  let sinceTick = 0;
  let mostBetweenTicks = 0;
  const done = Promise.withResolvers<void>();
  // A handler that resolves at once and one that is synchronous but slow-ish.
  const dispatch = new WatchDispatch(
    (e) => {
      const until = performance.now() + spinMs;
      while (performance.now() < until) { /* 100 µs of work */ }
      mostBetweenTicks = Math.max(mostBetweenTicks, ++sinceTick);
      if (++handled === total) done.resolve();
      return Number(e.object.metadata!.resourceVersion) % 2 ? Promise.resolve() : undefined;
    },
    [],
    (error) => done.reject(error),
    (count) => worker.ack(count),
  );
  let worst = 0;
  let last = performance.now();
  const ticker = setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - last);
    last = now;
    sinceTick = 0;
  }, 1);
  try {
    worker.attach(dispatch);
    await done.promise;
  } finally {
    clearInterval(ticker);
  }
  // Counted in handler calls, not milliseconds: a machine that takes the CPU away mid-slice makes
  // a gap long but a slice only shorter (it ends by the clock), so the count holds on any machine,
  // while a drain without slices runs all 10,000 between two ticks, and slices cut by count alone
  // 512.
  const perSlice = SLICE_MS / spinMs;
  assert.ok(
    mostBetweenTicks <= perSlice * 4,
    `${mostBetweenTicks} handler calls ran between two timer ticks (a slice of ${SLICE_MS} ms holds ` +
      `about ${perSlice}); the longest gap was ${worst.toFixed(1)} ms`,
  );
});

Deno.test("a stopped dispatch handles nothing more and acknowledges nothing", async () => {
  const acks: number[] = [];
  let handled = 0;
  const dispatch = new WatchDispatch(() => void handled++, [], () => {}, (n) => acks.push(n));
  dispatch.push([event(1)]);
  await new Promise((r) => setTimeout(r, 0));
  dispatch.stop();
  dispatch.push([event(2), event(3)]);
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(handled, 1);
  assert.deepEqual(acks, [1]);
});

Deno.test("a handler failing with an odd value (one String() cannot print, a thenable whose then throws) stops nothing", async () => {
  const acks: number[] = [];
  let handled = 0;
  const dispatch = new WatchDispatch(
    (e) => {
      handled++;
      const n = Number(e.object.metadata!.name!.split("-")[1]);
      if (n === 1) {
        return {
          get then() {
            throw Object.create(null);
          },
        } as unknown as Promise<void>;
      }
      if (n === 2) return Promise.reject(Object.create(null));
    },
    [],
    (error) => void String(error), // throws for a value without a prototype
    (n) => acks.push(n),
  );
  dispatch.push([event(1), event(2), event(3)]);
  await dispatch.idle();
  await new Promise((r) => setTimeout(r, 10)); // an unhandled rejection would fail the test
  assert.equal(handled, 3);
  assert.deepEqual(acks, [3]);
});

Deno.test("whenHandled() calls back once the events pushed before it are handled, not those after, never once stopped", async () => {
  const handled: number[] = [];
  const gates = new Map<number, PromiseWithResolvers<void>>();
  const dispatch = new WatchDispatch(
    (e) => {
      const i = Number(e.object.metadata!.resourceVersion);
      handled.push(i);
      return gates.get(i)?.promise;
    },
    [(e) => e.object.metadata!.name !== "o-1"], // passed over by a predicate still counts
    () => {},
    () => {},
  );
  const reached: string[] = [];
  dispatch.whenHandled(() => reached.push("empty"));
  assert.deepEqual(reached, ["empty"], "nothing pushed: at once");
  gates.set(2, Promise.withResolvers());
  dispatch.push([event(0), event(1), event(2)]);
  dispatch.whenHandled(() => reached.push(`after 2 (handled ${handled.join(",")})`));
  dispatch.push([event(3)]);
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(reached, ["empty"], "the async handler is still on 2");
  gates.get(2)!.resolve();
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(reached, ["empty", "after 2 (handled 0,2)"], "before 3 was handled");
  assert.deepEqual(handled, [0, 2, 3]);
  gates.set(4, Promise.withResolvers());
  dispatch.push([event(4)]);
  dispatch.whenHandled(() => reached.push("after 4"));
  dispatch.stop();
  gates.get(4)!.resolve();
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(reached.length, 2, "a stopped dispatch calls back no more");
});
