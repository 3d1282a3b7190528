/**
 * Reading Cluster API `Cluster` objects: infrastructure readiness in v1beta1 and v1beta2, and the
 * watch-filter label.
 *
 * @module
 */

import type { KubeObject } from "../shared/kube_object.ts";

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
