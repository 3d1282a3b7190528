/**
 * Cluster API's conventions about a `Cluster`: its infrastructure readiness in v1beta1 and v1beta2,
 * the watch-filter label, and where its kubeconfig is kept.
 *
 * @module
 */

import type { KubeObject, ObjectKey } from "../../shared/kube_object.ts";

/** The label Cluster API puts on a Cluster's Secrets. */
export const CLUSTER_NAME_LABEL = "cluster.x-k8s.io/cluster-name";

const KUBECONFIG_SUFFIX = "-kubeconfig";

/**
 * The Secret that holds a Cluster's kubeconfig (key `value`): `<name>-kubeconfig` beside it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { kubeconfigSecret } from "./cluster_object.ts";
 * assert.deepEqual(kubeconfigSecret({ namespace: "fleet", name: "edge-1" }), {
 *   namespace: "fleet",
 *   name: "edge-1-kubeconfig",
 * });
 * ```
 */
export function kubeconfigSecret(cluster: ObjectKey): ObjectKey {
  return { namespace: cluster.namespace, name: `${cluster.name}${KUBECONFIG_SUFFIX}` };
}

/**
 * The Cluster a kubeconfig Secret belongs to (its `cluster.x-k8s.io/cluster-name` label, else its
 * name), or `undefined` for another Secret (Cluster API labels its other Secrets too).
 */
export function clusterOfKubeconfigSecret(secret: KubeObject): ObjectKey | undefined {
  const name = secret.metadata?.name ?? "";
  if (!name.endsWith(KUBECONFIG_SUFFIX)) return undefined;
  return {
    namespace: secret.metadata?.namespace ?? "",
    name: secret.metadata?.labels?.[CLUSTER_NAME_LABEL] ?? name.slice(0, -KUBECONFIG_SUFFIX.length),
  };
}

/** The label `watchFilterValue` is compared with. */
export const WATCH_FILTER_LABEL = "cluster.x-k8s.io/watch-filter";

/**
 * Whether the Cluster's infrastructure is ready: `status.initialization.infrastructureProvisioned` in
 * v1beta2, `status.infrastructureReady` in v1beta1 (missing counts as not ready).
 */
export function infrastructureReady(cluster: KubeObject): boolean {
  const status = (cluster.status ?? {}) as {
    infrastructureReady?: unknown;
    initialization?: { infrastructureProvisioned?: unknown };
  };
  if ((cluster.apiVersion ?? "").endsWith("/v1beta1")) return status.infrastructureReady === true;
  return status.initialization?.infrastructureProvisioned === true;
}

/**
 * Whether a Cluster passes the watch filter: an empty value lets everything through, otherwise the
 * label must equal it.
 */
export function passesWatchFilter(cluster: KubeObject, watchFilterValue: string): boolean {
  if (!watchFilterValue) return true;
  return cluster.metadata?.labels?.[WATCH_FILTER_LABEL] === watchFilterValue;
}
