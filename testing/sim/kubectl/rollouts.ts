/**
 * A stand-in for kube-controller-manager's Deployment and ReplicaSet controllers: when a spec
 * changes (its `generation` passes `status.observedGeneration`), the status says the rollout is
 * complete, at once, so `kubectl rollout status` and `kubectl scale --current-replicas` can follow.
 * No ReplicaSets or Pods are made. Started by the simulator on its first Deployment or ReplicaSet.
 *
 * @module
 */

import type { KubeObject } from "../../../src/shared/kube_object.ts";
import type { ObjectStore, StoreEvent } from "../object_store.ts";
import type { ResourceType } from "../resource_types.ts";

const now = () => new Date().toISOString().replace(/\.\d+Z$/, "Z");

function deploymentStatus(object: KubeObject, replicas: number, previous: Record<string, unknown>) {
  const time = now();
  const condition = (type: string, reason: string, message: string) => {
    const before =
      (previous.conditions as { type: string; lastTransitionTime?: string }[] | undefined)
        ?.find((c) => c.type === type);
    return {
      type,
      status: "True",
      lastUpdateTime: time,
      lastTransitionTime: before?.lastTransitionTime ?? time,
      reason,
      message,
    };
  };
  return {
    observedGeneration: object.metadata!.generation,
    replicas,
    updatedReplicas: replicas,
    ...(replicas > 0 ? { readyReplicas: replicas, availableReplicas: replicas } : {}),
    conditions: [
      condition("Available", "MinimumReplicasAvailable", "Deployment has minimum availability."),
      condition(
        "Progressing",
        "NewReplicaSetAvailable",
        `ReplicaSet "${object.metadata!.name}" has successfully progressed.`,
      ),
    ],
  };
}

function replicaSetStatus(object: KubeObject, replicas: number) {
  return {
    observedGeneration: object.metadata!.generation,
    replicas,
    ...(replicas > 0
      ? { fullyLabeledReplicas: replicas, readyReplicas: replicas, availableReplicas: replicas }
      : {}),
  };
}

/**
 * Completes rollouts of the Deployments and ReplicaSets in `store`.
 *
 * @returns A function that stops it.
 */
export function completeRollouts(store: ObjectStore, types: readonly ResourceType[]): () => void {
  const deployments = types.find((t) => t.group === "apps" && t.plural === "deployments");
  const replicaSets = types.find((t) => t.group === "apps" && t.plural === "replicasets");
  let stopped = false;
  const settle = (type: ResourceType, namespace: string, name: string) => {
    if (stopped) return;
    const object = store.get(type, namespace, name);
    const generation = object?.metadata?.generation;
    const status = (object?.status ?? {}) as Record<string, unknown>;
    if (!object || generation === undefined || object.metadata?.deletionTimestamp) return;
    if (status.observedGeneration === generation) return;
    const replicas = ((object.spec ?? {}) as { replicas?: number }).replicas ?? 1;
    store.update(type, {
      ...object,
      status: type === deployments
        ? deploymentStatus(object, replicas, status)
        : replicaSetStatus(object, replicas),
    }, { subresource: "status", fieldManager: "kube-controller-manager", operation: "Update" });
  };
  const unsubscribe = store.subscribe((event: StoreEvent) => {
    if (event.type === "DELETED") return;
    const type = event.resource === "apps/deployments"
      ? deployments
      : event.resource === "apps/replicasets"
      ? replicaSets
      : undefined;
    if (!type) return;
    const { namespace = "", name = "" } = event.object.metadata ?? {};
    // After the write that woke us has been delivered, as a controller's own write would be.
    setTimeout(() => settle(type, namespace, name), 0);
  });
  // Like a controller's first list: what was written before it started is settled too.
  for (const type of [deployments, replicaSets]) {
    for (const object of type ? store.list(type) : []) {
      const { namespace = "", name = "" } = object.metadata ?? {};
      setTimeout(() => settle(type!, namespace, name), 0);
    }
  }
  return () => {
    stopped = true;
    unsubscribe();
  };
}
