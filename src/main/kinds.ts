/**
 * The kinds operators name most often, so code says `kinds.Node` instead of spelling out
 * `{ apiVersion: "v1", kind: "Node" }` (both sides: plain data).
 *
 * @module
 */

import type { KindRef } from "../shared/kube_object.ts";

/**
 * Built-in Kubernetes kinds and Cluster API's `Cluster` (v1beta2), as {@linkcode KindRef}s.
 *
 * @example Listing Nodes and watching Pods without spelling out kinds
 * ```ts
 * import assert from "node:assert/strict";
 * import { kinds } from "@fleetkit/clustercache";
 * import { FakeClient } from "@fleetkit/clustercache/testing";
 *
 * const client = new FakeClient({ objects: [{ ...kinds.Node, metadata: { name: "node-1" } }] });
 * const nodes = await client.list(kinds.Node);
 * assert.equal(nodes.items.length, 1);
 * assert.deepEqual(kinds.Deployment, { apiVersion: "apps/v1", kind: "Deployment" });
 * ```
 */
export const kinds = {
  Namespace: { apiVersion: "v1", kind: "Namespace" },
  Node: { apiVersion: "v1", kind: "Node" },
  Pod: { apiVersion: "v1", kind: "Pod" },
  Service: { apiVersion: "v1", kind: "Service" },
  ConfigMap: { apiVersion: "v1", kind: "ConfigMap" },
  Secret: { apiVersion: "v1", kind: "Secret" },
  ServiceAccount: { apiVersion: "v1", kind: "ServiceAccount" },
  Event: { apiVersion: "v1", kind: "Event" },
  PersistentVolume: { apiVersion: "v1", kind: "PersistentVolume" },
  PersistentVolumeClaim: { apiVersion: "v1", kind: "PersistentVolumeClaim" },
  Deployment: { apiVersion: "apps/v1", kind: "Deployment" },
  ReplicaSet: { apiVersion: "apps/v1", kind: "ReplicaSet" },
  StatefulSet: { apiVersion: "apps/v1", kind: "StatefulSet" },
  DaemonSet: { apiVersion: "apps/v1", kind: "DaemonSet" },
  Job: { apiVersion: "batch/v1", kind: "Job" },
  CronJob: { apiVersion: "batch/v1", kind: "CronJob" },
  Lease: { apiVersion: "coordination.k8s.io/v1", kind: "Lease" },
  CustomResourceDefinition: {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
  },
  Cluster: { apiVersion: "cluster.x-k8s.io/v1beta2", kind: "Cluster" },
} as const satisfies Record<string, KindRef>;
