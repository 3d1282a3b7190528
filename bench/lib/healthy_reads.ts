/**
 * The reads the isolation scenarios time: cached gets of the `app` ConfigMaps of the healthy
 * clusters, round robin over clusters and objects.
 */
import type { ClusterCache, ObjectKey } from "../../mod.ts";

const CM = { apiVersion: "v1", kind: "ConfigMap" };

/** Lists each cluster's `app` ConfigMaps once, then returns one cached get per call. */
export async function healthyReads(
  cache: ClusterCache,
  clusters: readonly string[],
  key: (name: string) => ObjectKey,
): Promise<() => Promise<unknown>> {
  const targets: { cluster: string; names: string[] }[] = [];
  for (const cluster of clusters) {
    const list = await cache.getReader(key(cluster)).list(CM, { namespace: "app" });
    targets.push({ cluster, names: list.items.map((o) => o.metadata!.name!) });
  }
  let n = 0;
  return () => {
    const t = targets[n++ % targets.length]!;
    return cache.getReader(key(t.cluster)).get(CM, {
      namespace: "app",
      name: t.names[n % t.names.length]!,
    });
  };
}
