/**
 * Read path: facade `get`/`list` throughput from a worker's cache vs in-process `structuredClone` of
 * the same objects (the cost any in-process cache pays to hand out a copy).
 */
import { ClusterCache, type KubeObject } from "../../mod.ts";
import { type Figure, figure } from "../lib/report.ts";
import { startBenchFleet } from "../lib/bench_fleet.ts";
import { waitFor } from "../lib/stats.ts";

const POD = { apiVersion: "v1", kind: "Pod" };

function cloneRate(objects: KubeObject[], ms: number): number {
  let ops = 0;
  const end = performance.now() + ms;
  while (performance.now() < end) {
    for (let i = 0; i < 100; i++) structuredClone(objects[(ops + i) % objects.length]);
    ops += 100;
  }
  return ops / (ms / 1000);
}

/** Round trips a second to a bare echo worker, one at a time: the floor of a call into a worker. */
async function echoRate(ms: number): Promise<number> {
  const worker = new Worker(new URL("../lib/echo_worker.ts", import.meta.url), { type: "module" });
  try {
    const roundTrip = (i: number) =>
      new Promise<void>((resolve) => {
        worker.onmessage = () => resolve();
        // About what a get asks: an operation, a kind and a key.
        worker.postMessage({ id: i, op: "get", kind: POD, key: { namespace: "app", name: "x" } });
      });
    for (let i = 0; i < 2_000; i++) await roundTrip(i); // warm-up
    let ops = 0;
    const end = performance.now() + ms;
    while (performance.now() < end) await roundTrip(ops++);
    return ops / (ms / 1000);
  } finally {
    worker.terminate();
  }
}

async function pipelined(
  concurrency: number,
  ms: number,
  op: (i: number) => Promise<unknown>,
): Promise<number> {
  let ops = 0;
  const end = performance.now() + ms;
  await Promise.all(Array.from({ length: concurrency }, async (_, lane) => {
    let i = lane;
    while (performance.now() < end) {
      await op(i);
      i += concurrency;
      ops++;
    }
  }));
  return ops / (ms / 1000);
}

export async function readPath(quick: boolean, real = false): Promise<Figure[]> {
  const ms = quick ? 1_000 : 5_000;
  await using sim = await startBenchFleet(real, 1);
  await sim.flood("workload-1", { count: 1000, kind: "pods", namespace: "app" });
  await using cache = await ClusterCache.setup({
    management: sim.management,
    client: { userAgent: "bench-read" },
  });
  const key = { namespace: "default", name: "workload-1" };
  await waitFor(() => cache.getConnectionState(key).connected, "connect", 30_000);
  const reader = cache.getReader(key);
  const all = (await reader.list(POD, { namespace: "app" })).items;
  const names = all.map((o) => o.metadata!.name!);
  const get = (i: number) => reader.get(POD, { namespace: "app", name: names[i % names.length]! });
  await pipelined(64, 300, get); // warm-up

  const clone = cloneRate(all, ms);
  const echo = await echoRate(ms);
  const sequential = await pipelined(1, ms, get);
  const concurrent = await pipelined(64, ms, get);
  const page = all.slice(0, 100);
  let listOps = 0;
  const listEnd = performance.now() + ms;
  while (performance.now() < listEnd) {
    await reader.list(POD, {
      namespace: "app",
      labelSelector: "flood=true",
      fieldSelector: `metadata.name=${names[listOps % 100]}`,
    });
    listOps++;
  }
  const listRate = listOps / (ms / 1000);
  let cloneLists = 0;
  const cloneEnd = performance.now() + ms / 3;
  while (performance.now() < cloneEnd) {
    structuredClone(page);
    cloneLists++;
  }
  const cloneListRate = cloneLists / (ms / 3000);
  const fullList = await pipelined(4, ms / 3, () => reader.list(POD, { namespace: "app" }));
  const bytes = Math.round(JSON.stringify(all[0]).length);
  const note =
    `1,000 Pods of ~${bytes} bytes of JSON (${sim.server}); baseline: structuredClone of the same objects in-process`;
  return [
    figure("read_get_ops_per_s", concurrent, "ops/s", {
      baseline: clone,
      note: `64 calls in flight; ${note}`,
    }),
    figure("read_get_ops_ratio", concurrent / clone, "x", {
      goal: ">= 1.0",
      note: "pipelined gets / in-process clones",
    }),
    figure("read_get_sequential_ops_per_s", sequential, "ops/s", {
      baseline: clone,
      note: "one call at a time",
    }),
    figure("read_roundtrip_ops_per_s", echo, "ops/s", {
      note: "a bare echo worker, one message at a time: the floor of a call into a worker",
    }),
    figure("read_get_sequential_ratio_to_roundtrip", echo / sequential, "x", {
      goal: "<= 1.5",
      note: `a sequential cached get costs ${
        (1000 / sequential).toFixed(3)
      } ms, a bare round trip ${(1000 / echo).toFixed(3)} ms`,
    }),
    figure("read_list_one_ops_per_s", listRate, "ops/s", {
      note: "cached list by name and label, sequential",
    }),
    figure("read_list_1000_per_s", fullList, "lists/s", {
      baseline: cloneListRate / 10,
      note: "whole 1,000-object namespace; baseline: clone of 1,000 objects",
    }),
  ];
}
