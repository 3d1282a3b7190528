import assert from "node:assert/strict";
import { WorkQueue } from "../src/main/reconcile/work_queue.ts";

const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));

Deno.test("a key is never processed twice at once; adds during processing run once afterwards", async () => {
  let running = 0;
  let maxRunning = 0;
  let runs = 0;
  const { promise: gate, resolve: open } = Promise.withResolvers<void>();
  const queue = new WorkQueue(async () => {
    running++;
    maxRunning = Math.max(maxRunning, running);
    runs++;
    if (runs === 1) await gate;
    running--;
    return undefined;
  }, () => 0);
  queue.add("a");
  await tick(5);
  queue.add("a");
  queue.add("a");
  queue.add("a");
  open();
  await tick(20);
  assert.equal(maxRunning, 1);
  assert.equal(runs, 2);
  await queue.stop();
});

Deno.test("different keys never wait for each other", async () => {
  const started: string[] = [];
  const { promise: never } = Promise.withResolvers<void>();
  const stuck = new AbortController();
  const queue = new WorkQueue(async (key) => {
    started.push(key);
    if (key === "stuck") {
      await Promise.race([never, new Promise((r) => stuck.signal.addEventListener("abort", r))]);
    }
    return undefined;
  }, () => 0);
  queue.add("stuck");
  queue.add("b");
  queue.add("c");
  await tick(10);
  assert.deepEqual(started.sort(), ["b", "c", "stuck"]);
  stuck.abort();
  await queue.stop();
});

Deno.test("a returned delay requeues the key; the newest delay replaces the older one", async () => {
  const runs: number[] = [];
  const queue = new WorkQueue(() => {
    runs.push(Date.now());
    return Promise.resolve(runs.length < 3 ? 20 : undefined);
  }, () => 0);
  queue.add("a");
  await tick(120);
  assert.equal(runs.length, 3);
  assert.equal(queue.delayed, 0);
  queue.addAfter("b", 10_000);
  queue.addAfter("b", 10);
  assert.equal(queue.delayed, 1);
  await tick(40);
  assert.equal(runs.length, 4);
  await queue.stop();
});

Deno.test("a throwing processor is retried after the error delay", async () => {
  let runs = 0;
  const errors: unknown[] = [];
  const queue = new WorkQueue(() => {
    runs++;
    if (runs === 1) return Promise.reject(new Error("boom"));
    return Promise.resolve(undefined);
  }, (_key, error) => {
    errors.push(error);
    return 10;
  });
  queue.add("a");
  await tick(50);
  assert.equal(runs, 2);
  assert.equal(errors.length, 1);
  await queue.stop();
});

Deno.test("stop() cancels pending timers and waits for running work", async () => {
  let finished = false;
  const queue = new WorkQueue(async () => {
    await tick(30);
    finished = true;
    return 1_000;
  }, () => 0);
  queue.add("a");
  queue.addAfter("b", 60_000);
  await tick(5);
  await queue.stop();
  assert.ok(finished);
  assert.equal(queue.delayed, 0);
});
