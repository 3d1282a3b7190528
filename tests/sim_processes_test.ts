import assert from "node:assert/strict";
import { ClusterCache } from "../mod.ts";
import { startSim } from "../testing/sim_process.ts";
import { eventually, FAST, key } from "./helpers/fixture.ts";

const NODE = { apiVersion: "v1", kind: "Node" };

async function refuses(port: number): Promise<boolean> {
  try {
    const connection = await Deno.connect({ hostname: "127.0.0.1", port });
    connection.close();
    return false;
  } catch {
    return true;
  }
}

Deno.test("a fleet spread over three simulator processes: one management cluster, one switchboard, nothing left running", async () => {
  const sim = await startSim(5, ["--clusters-per-process", "2"]);
  const ports = new Map<string, number>();
  try {
    const listed = await sim.admin("clusters") as { name: string; url: string }[];
    assert.deepEqual(
      listed.map((c) => c.name).sort(),
      ["management", "workload-1", "workload-2", "workload-3", "workload-4", "workload-5"],
    );
    for (const c of listed) ports.set(c.name, Number(new URL(c.url).port));
    await using cache = await ClusterCache.setup({ ...FAST, management: sim.management });
    const names = ["workload-1", "workload-2", "workload-3", "workload-4", "workload-5"];
    await eventually(
      () => names.every((n) => cache.getConnectionState(key(n)).connected),
      "every cluster, in every process, to connect through the one management cluster",
      30_000,
    );
    for (const name of names) {
      const nodes = await cache.getReader(key(name)).list(NODE);
      assert.deepEqual(nodes.items.map((n) => n.metadata?.name), [`${name}-control-plane`]);
    }

    // Faults reach the process that serves the cluster.
    await sim.admin("clusters/workload-5/faults", {
      method: "PATCH",
      body: JSON.stringify({ latencyMs: 40 }),
    });
    const described = await sim.admin("clusters/workload-5") as { faults: { latencyMs: number } };
    assert.equal(described.faults.latencyMs, 40);

    // A rotation there rewrites the Secret here: the cache follows it and keeps reading.
    const before = await sim.kubeconfig("workload-4");
    await sim.admin("clusters/workload-4/rotate-credentials", { method: "POST" });
    assert.notEqual(await sim.kubeconfig("workload-4"), before);
    await eventually(
      async () => {
        try {
          await cache.getUncachedClient(key("workload-4")).get(NODE, {
            name: "workload-4-control-plane",
          });
          return true;
        } catch {
          return false;
        }
      },
      "workload-4 to answer with its new credentials",
      30_000,
    );

    // Removal deregisters here and stops the cluster there.
    await sim.admin("clusters/workload-3", { method: "DELETE" });
    await eventually(
      () => !cache.getConnectionState(key("workload-3")).connected,
      "workload-3 to be gone",
      15_000,
    );
    assert.ok(await refuses(ports.get("workload-3")!));
  } finally {
    await sim[Symbol.asyncDispose]();
  }
  await eventually(
    async () => (await Promise.all([...ports.values()].map(refuses))).every(Boolean),
    "every simulator process to have stopped with the one the test started",
    15_000,
  );
});
