/**
 * The naive baseline a TypeScript user writes today: one `@kubernetes/client-node` informer per
 * cluster, all on the main thread, reads served from the informers' in-process caches.
 */
import * as k8s from "@kubernetes/client-node";

export interface NaiveCluster {
  name: string;
  informer: k8s.Informer<k8s.KubernetesObject> & k8s.ObjectCache<k8s.KubernetesObject>;
  get(namespace: string, name: string): k8s.KubernetesObject | undefined;
}

export async function naiveInformer(
  kubeconfigText: string,
  name: string,
  kind: "configmaps" | "nodes",
  namespace?: string,
): Promise<NaiveCluster> {
  const kc = new k8s.KubeConfig();
  kc.loadFromString(kubeconfigText);
  const api = kc.makeApiClient(k8s.CoreV1Api);
  const informer = kind === "nodes"
    ? k8s.makeInformer(kc, "/api/v1/nodes", () => api.listNode())
    : k8s.makeInformer(
      kc,
      namespace ? `/api/v1/namespaces/${namespace}/configmaps` : "/api/v1/configmaps",
      () =>
        namespace
          ? api.listNamespacedConfigMap({ namespace })
          : api.listConfigMapForAllNamespaces(),
    );
  informer.on("error", () => {});
  await informer.start();
  return { name, informer, get: (ns, n) => informer.get(n, ns) };
}
