import assert from "node:assert/strict";
import { ClusterNotConnectedError } from "../mod.ts";
import { eventually, fixture, key } from "./helpers/fixture.ts";

const Node = { apiVersion: "v1", kind: "Node" };
const Pod = { apiVersion: "v1", kind: "Pod" };

Deno.test("stale reads: a reader that asked reads a hung cluster's last cache, told how fresh it is; others get ClusterNotConnectedError", async () => {
  await using f = await fixture({ clusters: 2 }, { staleCacheMs: 60_000 });
  await f.connected("workload-1");
  await f.connected("workload-2");
  const asked = key("workload-1");
  const notAsked = key("workload-2");
  const stale = f.cache.getReader(asked, { allowStale: true });
  const fresh = await stale.list(Node);
  assert.equal(fresh.freshness.connected, true);
  assert.equal(fresh.items.length, 1);
  await f.cache.getReader(notAsked).list(Node);

  await f.fleet.cluster("workload-1").hang(true);
  await f.fleet.cluster("workload-2").hang(true);
  await eventually(
    () =>
      !f.cache.getConnectionState(asked).connected &&
      !f.cache.getConnectionState(notAsked).connected,
    "both to be disconnected",
  );

  const last = await stale.list(Node);
  assert.equal(last.items.length, 1, "the last cache");
  assert.equal(last.freshness.connected, false);
  assert.ok(last.freshness.disconnectedSince! <= Date.now());
  assert.equal(last.freshness.resourceVersion, fresh.freshness.resourceVersion);
  assert.equal((await stale.get(Node, { name: last.items[0]!.metadata!.name! })).kind, "Node");
  // Only what it held: a kind it never cached is not made up.
  await assert.rejects(stale.list(Pod));
  // The default stays Cluster API's.
  assert.throws(() => f.cache.getReader(asked), ClusterNotConnectedError);
  // A cluster nobody asked stale reads of keeps nothing.
  assert.throws(() => f.cache.getReader(notAsked, { allowStale: true }), ClusterNotConnectedError);

  await f.fleet.cluster("workload-1").hang(false);
  await f.connected("workload-1", 15_000);
  const again = await stale.list(Node);
  assert.equal(again.freshness.connected, true);
});

Deno.test("stale reads are bounded in time: past staleCacheMs the last cache is let go", async () => {
  await using f = await fixture({ clusters: 1 }, { staleCacheMs: 500 });
  await f.connected("workload-1");
  const cluster = key("workload-1");
  const stale = f.cache.getReader(cluster, { allowStale: true });
  await stale.list(Node);
  await f.fleet.cluster("workload-1").hang(true);
  await eventually(() => !f.cache.getConnectionState(cluster).connected, "a disconnect");
  assert.equal((await stale.list(Node)).freshness.connected, false);
  await eventually(async () => {
    try {
      await stale.list(Node);
      return false;
    } catch (error) {
      return error instanceof ClusterNotConnectedError;
    }
  }, "the last cache to be let go");
  await f.fleet.cluster("workload-1").hang(false);
});
