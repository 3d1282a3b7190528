import assert from "node:assert/strict";
import { fixture, key } from "./helpers/fixture.ts";

const CM = { apiVersion: "v1", kind: "ConfigMap" };

Deno.test("while one cluster's API server hangs, reads and watches on another keep working", async () => {
  await using f = await fixture({ clusters: 2 }, {
    // Long probe settings: the hung cluster stays "connected" (and its calls stuck) during the test.
    healthProbe: { intervalMs: 60_000, timeoutMs: 5_000, failureThreshold: 5 },
    client: { userAgent: "isolation", timeoutMs: 30_000 },
  });
  await f.connected("workload-1");
  await f.connected("workload-2");
  const hung = f.fleet.cluster("workload-1");
  await hung.hang(true);
  // A cached read on the hung cluster: its informer cannot list, so this waits (up to the sync timeout).
  let hungSettled = false;
  const hungRead = f.cache.getClient(key("workload-1")).list(CM).then(
    () => hungSettled = true,
    () => hungSettled = true,
  );
  const liveRead = f.cache.getUncachedClient(key("workload-1")).get(CM, {
    namespace: "default",
    name: "x",
  }).then(
    () => {},
    () => {},
  );

  const healthy = f.cache.getClient(key("workload-2"));
  const seen: string[] = [];
  await (await f.cache.watch(key("workload-2"), {
    name: "cms",
    kind: CM,
    handler: (e) => void seen.push(e.object.metadata!.name!),
  })).synced;
  for (let i = 0; i < 20; i++) {
    await healthy.create({ ...CM, metadata: { name: `cm-${i}`, namespace: "default" } });
  }
  const reads = await Promise.all(Array.from({ length: 200 }, () => healthy.list(CM)));
  assert.ok(reads.every((r) => r.items.length <= 20));
  while (seen.length < 20) await new Promise((r) => setTimeout(r, 10));
  assert.equal(seen.length, 20);
  assert.equal(
    hungSettled,
    false,
    "the hung cluster's read is still waiting while the other cluster served everything",
  );
  await hung.hang(false);
  await Promise.all([hungRead, liveRead]);
});
