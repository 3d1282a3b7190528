import assert from "node:assert/strict";
import { ClusterNotConnectedError, kinds, type ObjectKey } from "../mod.ts";
import { Controller, ExponentialFailureRateLimiter } from "../src/main/controller/mod.ts";
import { MetricsRegistry } from "../src/main/metrics/mod.ts";
import { RateLimitingQueue } from "../src/main/controller/rate_limiting_queue.ts";
import { FakeClient, FakeClusterCache } from "../testing/mod.ts";
import { eventually } from "./helpers/fixture.ts";

const fast = () => new ExponentialFailureRateLimiter(1, 20);
const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

Deno.test("queue: an item added while processing is handed out again after done, never twice at once", async () => {
  const queue = new RateLimitingQueue<string>((s) => s, fast());
  queue.add("a");
  queue.add("a");
  queue.add("b");
  assert.equal(queue.length, 2, "a queued item is not queued twice");
  const first = await queue.get();
  assert.equal(first?.key, "a");
  queue.add("a"); // while processing: dirty, not queued
  assert.equal(queue.length, 1);
  assert.equal((await queue.get())?.key, "b");
  queue.done("b");
  assert.equal(queue.length, 0, "a is still being processed");
  queue.done("a");
  assert.equal(queue.length, 1);
  assert.equal((await queue.get())?.key, "a");
  queue.done("a");
  const drained = queue.shutDown();
  assert.equal(await queue.get(), undefined);
  await drained;
});

Deno.test("queue: the shortest pending delay wins; shutDown waits for items being processed", async () => {
  const queue = new RateLimitingQueue<string>((s) => s, fast());
  queue.addAfter("a", 10_000);
  queue.addAfter("a", 10);
  queue.addAfter("a", 5_000); // later than the pending one: ignored
  assert.equal(queue.delayed, 1);
  const item = await queue.get();
  assert.equal(item?.key, "a");
  let drained = false;
  const stopping = queue.shutDown().then(() => drained = true);
  await wait(5);
  assert.equal(drained, false, "a is still being processed");
  queue.add("b");
  assert.equal(queue.length, 0, "no adds after shutdown");
  queue.done("a");
  await stopping;
  assert.equal(drained, true);
});

Deno.test("controller: one request never runs twice at once; different ones run up to the concurrency", async () => {
  let running = 0;
  let most = 0;
  const perKey = new Map<string, number>();
  const runs: string[] = [];
  await using controller = new Controller<string>({
    name: "serial",
    concurrency: 3,
    reconcile: async (key) => {
      running++;
      most = Math.max(most, running);
      perKey.set(key, (perKey.get(key) ?? 0) + 1);
      assert.equal(perKey.get(key), 1, `${key} ran twice at once`);
      runs.push(key);
      await wait(10);
      perKey.set(key, perKey.get(key)! - 1);
      running--;
    },
  });
  controller.start();
  for (let i = 0; i < 10; i++) controller.enqueue(`k${i}`);
  await wait(2);
  controller.enqueue("k0"); // while k0 runs: once more afterwards
  controller.enqueue("k0");
  await controller.idle();
  assert.equal(most, 3);
  assert.equal(runs.filter((k) => k === "k0").length, 2);
  assert.equal(runs.length, 11);
});

Deno.test("controller: errors retry with backoff and a retry count; success forgets; requeueAfterMs runs again", async () => {
  const attempts: number[] = [];
  let requeued = 0;
  await using controller = new Controller<ObjectKey>({
    name: "retry",
    rateLimiter: fast(),
    reconcile: (request, { retries }) => {
      if (request.name === "flaky") {
        attempts.push(retries);
        if (attempts.length < 4) return Promise.reject(new Error("boom"));
        return Promise.resolve();
      }
      requeued++;
      return Promise.resolve(requeued < 3 ? { requeueAfterMs: 5 } : undefined);
    },
  });
  controller.start();
  controller.enqueue({ namespace: "a", name: "flaky" });
  controller.enqueue({ name: "again", namespace: "a" });
  await controller.idle();
  assert.deepEqual(attempts, [0, 1, 2, 3]);
  assert.equal(requeued, 3);
});

Deno.test("controller: ClusterNotConnectedError is not retried (the connect event brings the request back)", async () => {
  let calls = 0;
  await using controller = new Controller<string>({
    name: "not-connected",
    rateLimiter: fast(),
    reconcile: () => {
      calls++;
      return Promise.reject(new ClusterNotConnectedError("error getting client"));
    },
  });
  controller.start();
  controller.enqueue("x");
  await controller.idle();
  await wait(30);
  assert.equal(calls, 1);
});

Deno.test("controller: stop lets running reconciles finish, drops queued ones, and refuses new work", async () => {
  const done: string[] = [];
  let release = () => {};
  const gate = new Promise<void>((resolve) => release = resolve);
  let started = false;
  const controller = new Controller<string>({
    name: "graceful",
    reconcile: async (key) => {
      started = true;
      await gate;
      done.push(key);
    },
  });
  controller.start();
  controller.enqueue("running");
  controller.enqueue("queued");
  await eventually(() => started, "the first reconcile");
  const stopping = controller.stop();
  release();
  await stopping;
  assert.deepEqual(done, ["running"]);
  controller.enqueue("late");
  await wait(40);
  assert.deepEqual(done, ["running"]);
  assert.throws(() => controller.start(), /stopped/);
});

Deno.test("controller: past the stop deadline, running reconciles are aborted and stop returns", async () => {
  let aborted = false;
  const controller = new Controller<string>({
    name: "deadline",
    reconcile: (_key, { signal }) =>
      new Promise<void>((resolve) => {
        signal.addEventListener("abort", () => {
          aborted = true;
          resolve();
        });
      }),
  });
  controller.start();
  controller.enqueue("stuck");
  await wait(5);
  const started = performance.now();
  await controller.stop({ timeoutMs: 50 });
  assert.ok(aborted);
  assert.ok(performance.now() - started < 5_000);
});

Deno.test("controller: reconcileTimeoutMs aborts a reconcile, which is then retried", async () => {
  const reasons: string[] = [];
  await using controller = new Controller<string>({
    name: "timeout",
    rateLimiter: fast(),
    reconcileTimeoutMs: 20,
    reconcile: (_key, { signal, retries }) => {
      if (retries > 0) return Promise.resolve();
      return new Promise((_resolve, reject) => {
        signal.addEventListener("abort", () => {
          reasons.push(String(signal.reason));
          reject(signal.reason);
        });
      });
    },
  });
  controller.start();
  controller.enqueue("slow");
  await controller.idle();
  assert.equal(reasons.length, 1);
  assert.match(reasons[0]!, /timed out after 20ms/);
});

Deno.test("controller: driven by a cluster source and watches; its watches stop with it", async () => {
  const cluster = { namespace: "default", name: "workload-1" };
  const client = new FakeClient();
  const cache = new FakeClusterCache(client, cluster);
  const reconciled: string[] = [];
  const controller = new Controller<ObjectKey>({
    name: "driven",
    reconcile: async (request) => {
      reconciled.push(request.name);
      await controller.watch(cache, request, {
        name: "configmaps",
        kind: kinds.ConfigMap,
        map: () => request,
      });
    },
  });
  controller.watchClusters(cache.getClusterSource("driven"));
  controller.start();
  await eventually(() => reconciled.length === 1, "the connect event");
  await controller.idle();
  assert.deepEqual(cache.watches, ["configmaps"]);
  await client.create({ ...kinds.ConfigMap, metadata: { namespace: "default", name: "x" } });
  await cache.settled();
  await controller.idle();
  assert.deepEqual(reconciled, ["workload-1", "workload-1"], "a write reached the controller");
  await controller.stop();
  assert.deepEqual(cache.watches, [], "the controller's watch stopped with it");
  await client.create({ ...kinds.ConfigMap, metadata: { namespace: "default", name: "y" } });
  await cache.settled();
  cache.trigger(["disconnect", "connect"]);
  await wait(10);
  assert.equal(reconciled.length, 2, "nothing reaches a stopped controller");
  await assert.rejects(
    controller.watch(cache, cluster, { name: "late", kind: kinds.Pod, map: () => cluster }),
    /stopped/,
  );
});

Deno.test("controller: workqueue and reconcile metrics, labelled by controller", async () => {
  const metrics = new MetricsRegistry();
  let fail = true;
  await using controller = new Controller<string>({
    name: "measured",
    metrics,
    rateLimiter: fast(),
    reconcile: () => {
      if (fail) {
        fail = false;
        return Promise.reject(new Error("once"));
      }
      return Promise.resolve();
    },
  });
  controller.start();
  controller.enqueue("a");
  await controller.idle();
  const text = await metrics.metrics();
  const value = (series: string) => {
    const line = text.split("\n").find((l) => l.startsWith(series + " "));
    assert.ok(line, `${series} in\n${text}`);
    return Number(line.slice(series.length + 1));
  };
  const labels = '{name="measured",controller="measured"}';
  assert.equal(value(`workqueue_adds_total${labels}`), 2);
  assert.equal(value(`workqueue_retries_total${labels}`), 1);
  assert.equal(value(`workqueue_depth${labels}`), 0);
  assert.equal(value(`workqueue_work_duration_seconds_count${labels}`), 2);
  assert.equal(value(`workqueue_queue_duration_seconds_count${labels}`), 2);
  assert.equal(value(`workqueue_unfinished_work_seconds${labels}`), 0);
  assert.equal(value(`workqueue_longest_running_processor_seconds${labels}`), 0);
  assert.equal(
    value('controller_runtime_reconcile_total{controller="measured",result="error"}'),
    1,
  );
  assert.equal(
    value('controller_runtime_reconcile_total{controller="measured",result="success"}'),
    1,
  );
});

Deno.test("controller: bad options are refused with clear errors", () => {
  const reconcile = () => Promise.resolve();
  assert.throws(() => new Controller({ name: "", reconcile }), TypeError);
  assert.throws(() => new Controller({ name: "x", reconcile, concurrency: 0 }), RangeError);
  assert.throws(() => new Controller({ name: "x", reconcile, reconcileTimeoutMs: -1 }), RangeError);
});

Deno.test("controller: workqueue_adds_total counts adds as client-go does: one the queue already holds is not one", async () => {
  const metrics = new MetricsRegistry();
  const release = Promise.withResolvers<void>();
  let started = 0;
  await using controller = new Controller<string>({
    name: "dedup",
    metrics,
    rateLimiter: fast(),
    concurrency: 1,
    reconcile: async (request) => {
      started++;
      if (request === "busy") await release.promise;
    },
  });
  controller.start();
  controller.enqueue("busy"); // taken at once, and held
  await new Promise((r) => setTimeout(r, 10));
  for (let i = 0; i < 5; i++) controller.enqueue("queued"); // waits behind "busy": held once
  release.resolve();
  await controller.idle();
  assert.equal(started, 2);
  const text = await metrics.metrics();
  assert.match(text, /workqueue_adds_total\{name="dedup",controller="dedup"\} 2\n/);
});

Deno.test("controller: a watch made on a new connection before its connect event arrives still stops with the controller", async () => {
  const cluster = { namespace: "default", name: "workload-1" };
  // The cache reconciles on its own schedule: a connection swapped (a rotated kubeconfig) is told
  // to sources at the end of its reconcile, and a controller reconcile may watch on the new
  // connection before that. One fake serves the watches, another tells the event when we say.
  const cache = new FakeClusterCache(new FakeClient(), cluster);
  const events = new FakeClusterCache(new FakeClient(), cluster);
  const controller = new Controller<ObjectKey>({ name: "early", reconcile: async () => {} });
  controller.watchClusters(events.getClusterSource("early"));
  controller.start();
  await controller.watch(cache, cluster, {
    name: "on-the-new-connection",
    kind: kinds.ConfigMap,
    map: () => cluster,
  });
  events.trigger(["disconnect", "connect"]); // the swap's event, late
  await controller.idle();
  assert.deepEqual(cache.watches, ["on-the-new-connection"]);
  await controller.stop();
  assert.deepEqual(cache.watches, [], "the new connection's watch stopped with the controller");
});

Deno.test("controller: a reconcile failing with a value no log can print neither stops its worker nor escapes unhandled", async () => {
  const runs: string[] = [];
  const unhandled: unknown[] = [];
  const onUnhandled = (e: PromiseRejectionEvent) => {
    e.preventDefault();
    unhandled.push(e.reason);
  };
  globalThis.addEventListener("unhandledrejection", onUnhandled);
  try {
    await using controller = new Controller<string>({
      name: "odd-failures",
      rateLimiter: new ExponentialFailureRateLimiter(60_000, 60_000), // no retry within the test
      reconcile: (request) => {
        runs.push(request);
        if (request === "no-prototype") return Promise.reject(Object.create(null));
        if (request === "throwing-message") {
          const error = new Error("x");
          Object.defineProperty(error, "message", {
            get() {
              throw new Error("no message for you");
            },
          });
          return Promise.reject(error);
        }
        return Promise.resolve();
      },
    });
    controller.start();
    controller.enqueue("no-prototype");
    controller.enqueue("throwing-message");
    await eventually(() => runs.length === 2, "both odd failures");
    controller.enqueue("good");
    await eventually(() => runs.includes("good"), "a later request to run on the same worker");
    await wait(10);
    assert.deepEqual(unhandled, []);
  } finally {
    globalThis.removeEventListener("unhandledrejection", onUnhandled);
  }
});

Deno.test("controller: a name watched again on every reconcile is kept once, and still stops with the controller", async () => {
  const cluster = { namespace: "default", name: "workload-1" };
  const cache = new FakeClusterCache(new FakeClient(), cluster);
  // Counts what the controller hangs on each watch's done (one per watch it keeps).
  let kept = 0;
  const dones = new Map<Promise<void>, Promise<void>>();
  const counting = {
    watch: async (...args: Parameters<FakeClusterCache["watch"]>) => {
      const handle = await cache.watch(...args);
      let done = dones.get(handle.done);
      if (!done) {
        const inner = handle.done;
        done = {
          then: (...a: Parameters<Promise<void>["then"]>) => (kept++, inner.then(...a)),
        } as Promise<void>;
        dones.set(inner, done);
      }
      return { ...handle, done };
    },
  };
  const controller = new Controller<ObjectKey>({
    name: "rewatch",
    reconcile: () => Promise.resolve(),
  });
  const input = { name: "cms", kind: kinds.ConfigMap, map: () => cluster };
  for (let i = 0; i < 50; i++) await controller.watch(counting, cluster, input);
  assert.equal(kept, 1, "one watch, kept once");
  await controller.stop();
  assert.deepEqual(cache.watches, [], "the first handle, kept, stopped the watch");
});

Deno.test("controller: requeueAfterMs of Infinity is refused; a delay past a timer's range waits, not spins; stop waits with Infinity", async () => {
  const runs: string[] = [];
  let release = () => {};
  const controller = new Controller<string>({
    name: "long-delays",
    rateLimiter: new ExponentialFailureRateLimiter(60_000, 60_000),
    reconcile: (request) => {
      runs.push(request);
      if (request === "forever") return Promise.resolve({ requeueAfterMs: Infinity });
      if (request === "month") return Promise.resolve({ requeueAfterMs: 40 * 24 * 3600_000 });
      return new Promise<void>((resolve) => release = resolve);
    },
  });
  controller.start();
  controller.enqueue("forever");
  controller.enqueue("month");
  await eventually(() => runs.length >= 2, "both to run");
  await wait(100);
  assert.deepEqual(runs.sort(), ["forever", "month"], "each ran once: no 1 ms timer loop");
  controller.enqueue("slow");
  await eventually(() => runs.includes("slow"), "the slow reconcile to start");
  await assert.rejects(controller.stop({ timeoutMs: -1 }), RangeError);
  let stopped = false;
  const stopping = controller.stop({ timeoutMs: Infinity }).then(() => stopped = true);
  await wait(50);
  assert.equal(stopped, false, "Infinity waits for the running reconcile");
  release();
  await stopping;
});
