import assert from "node:assert/strict";
import { connectedCache } from "../testing/mod.ts";
import { kubectlPartsLoaded } from "../testing/sim/api_server.ts";
import { denoInfo } from "./helpers/deno_info.ts";

/** The modules `entry` loads before it runs (dynamic imports left out), per `deno info`. */
async function staticGraph(entry: string): Promise<string[]> {
  const info = await denoInfo(entry);
  const bySpecifier = new Map(info.modules.map((m) => [m.specifier, m]));
  const seen = new Set<string>();
  const pending = [...info.roots];
  while (pending.length > 0) {
    const specifier = pending.pop()!;
    if (seen.has(specifier)) continue;
    seen.add(specifier);
    for (const dependency of bySpecifier.get(specifier)?.dependencies ?? []) {
      if (!dependency.isDynamic && dependency.code) pending.push(dependency.code.specifier);
    }
  }
  return [...seen];
}

Deno.test("the simulator's kubectl-only parts are not in the static graph of ./testing", async () => {
  const modules = await staticGraph("testing/mod.ts");
  assert.ok(modules.some((m) => m.endsWith("/testing/sim/api_server.ts")));
  const kubectl = modules.filter((m) => m.includes("/testing/sim/kubectl/"));
  assert.deepEqual(kubectl, [], "loaded before any request needs them");
});

Deno.test("a cache reading, writing and watching through the simulator never loads kubectl's parts; a Table request does", async () => {
  await using docs = await connectedCache();
  const { cache, cluster, fleet } = docs;
  const ConfigMap = { apiVersion: "v1", kind: "ConfigMap" };
  const client = cache.getClient(cluster);
  await client.create({ ...ConfigMap, metadata: { namespace: "default", name: "layout" } });
  await client.patch(ConfigMap, { namespace: "default", name: "layout" }, {
    type: "merge",
    patch: { data: { a: "1" } },
  });
  const seen: string[] = [];
  const handle = await cache.watch(cluster, {
    name: "configmaps",
    kind: ConfigMap,
    handler: (event) => void seen.push(event.object.metadata!.name!),
  });
  await handle.synced;
  await cache.getUncachedClient(cluster).list({ apiVersion: "apps/v1", kind: "Deployment" });
  await client.delete(ConfigMap, { namespace: "default", name: "layout" });
  handle.stop();
  assert.ok(seen.includes("layout"));
  assert.equal(
    kubectlPartsLoaded(),
    false,
    "the library's own traffic needs none of kubectl's parts",
  );

  const server = fleet.cluster("workload-1");
  const { caPem, token } = server.credentials();
  using http = Deno.createHttpClient({ caCerts: [caPem] });
  const response = await fetch(`${server.url}/api/v1/namespaces`, {
    client: http,
    headers: {
      authorization: `Bearer ${token}`,
      accept: "application/json;as=Table;v=v1;g=meta.k8s.io",
    },
  });
  const table = await response.json() as { kind: string; rows: unknown[] };
  assert.equal(table.kind, "Table");
  assert.ok(table.rows.length > 0);
  assert.equal(kubectlPartsLoaded(), true);
});
