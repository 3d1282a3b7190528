import assert from "node:assert/strict";
import type { ClusterCacheOptions } from "../mod.ts";
import { FAST, fixture, key } from "./helpers/fixture.ts";

const kinds = [{ apiVersion: "v1", kind: "Node" }, { apiVersion: "v1", kind: "Pod" }];
const LATENCY_MS = 300;

/**
 * Reads two kinds of four slow clusters at once and returns the most lists (or WatchList streams)
 * any of their API servers saw start within one latency of each other.
 */
async function listsAtOnce(
  listBudget: NonNullable<ClusterCacheOptions["listBudget"]>,
): Promise<number> {
  await using f = await fixture({ clusters: 4 }, {
    listBudget,
    client: { ...FAST.client, timeoutMs: 15_000 },
  });
  const names = ["workload-1", "workload-2", "workload-3", "workload-4"];
  for (const name of names) await f.connected(name);
  const since = Date.now();
  for (const name of names) f.fleet.cluster(name).setFaults({ latencyMs: LATENCY_MS });
  await Promise.all(
    names.flatMap((name) => kinds.map((kind) => f.cache.getReader(key(name)).list(kind))),
  );
  const starts = names.flatMap((name) =>
    f.fleet.cluster(name).requestsSince(since, { includeWatches: true })
      .filter((r) => r.method === "GET" && /^\/api\/v1\/(nodes|pods)$/.test(r.path))
      .map((r) => r.time)
  ).sort((a, b) => a - b);
  assert.ok(starts.length >= 8, `every kind of every cluster listed: ${starts.length}`);
  let most = 0;
  for (const [i, start] of starts.entries()) {
    most = Math.max(most, starts.slice(i).filter((t) => t < start + LATENCY_MS * 0.8).length);
  }
  return most;
}

Deno.test("the list budget: eight informers of four clusters list two at a time; without it, all at once", async () => {
  assert.equal(await listsAtOnce({ concurrency: 2 }), 2);
  assert.ok(await listsAtOnce(false) > 2, "without the budget the lists start together");
});
