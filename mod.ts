/**
 * clustercache for Deno: per-workload-cluster clients, informer caches, REST configs and health
 * probes for fleet operators, each workload cluster in its own Web Worker.
 *
 * @module
 */

export type {
  KindRef,
  KubeList,
  KubeObject,
  ObjectKey,
  ObjectMeta,
  Status,
} from "./src/kube_object.ts";
