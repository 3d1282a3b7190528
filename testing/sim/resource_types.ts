/**
 * The kinds a simulated API server serves: names, scope, versions, status subresource, supported
 * field selectors and version conversion. Built-ins follow kube-apiserver; Cluster API's `Cluster` is
 * served in v1beta1 and v1beta2 from one storage, converting the fields that moved.
 *
 * @module
 */

import type { KubeObject } from "../../src/shared/kube_object.ts";

/**
 * A resource the simulated server serves, possibly in several versions.
 *
 * @example Looking up a served resource
 * ```ts
 * import assert from "node:assert/strict";
 * import { type ResourceType, SimulatedApiServer } from "@fleetkit/clustercache/testing";
 *
 * await using server = await SimulatedApiServer.start({ name: "types" });
 * const deployments: ResourceType = server.typeOf("apps", "deployments")!;
 * assert.equal(deployments.kind, "Deployment");
 * assert.ok(deployments.namespaced && deployments.statusSubresource);
 * ```
 */
export interface ResourceType {
  /** API group; `""` for core. */
  readonly group: string;
  /** Served versions, preferred first. */
  readonly versions: readonly string[];
  /** The version objects are stored in. */
  readonly storageVersion: string;
  /** The kind, e.g. `Pod`. */
  readonly kind: string;
  /** The list kind, e.g. `PodList`. */
  readonly listKind: string;
  /** Lower-case plural, the URL segment. */
  readonly plural: string;
  /** Lower-case singular. */
  readonly singular: string;
  /** Whether objects live in namespaces. */
  readonly namespaced: boolean;
  /** kubectl short names (`po`, `cm`). */
  readonly shortNames: readonly string[];
  /** Discovery categories (`all` for what `kubectl get all` lists). */
  readonly categories?: readonly string[];
  /** Verbs served; default every verb of a stored kind. The review kinds are `create` only. */
  readonly verbs?: readonly string[];
  /** Whether a `/scale` subresource (`autoscaling/v1` Scale) reads and writes `spec.replicas`. */
  readonly scale?: boolean;
  /** Whether `status` is only writable through the `/status` subresource (and `generation` tracks spec). */
  readonly statusSubresource: boolean;
  /** Field selectors supported beyond `metadata.name` and `metadata.namespace`. */
  readonly extraFieldSelectors: readonly string[];
  /**
   * Accepts strategic merge patches: built-in kinds do; custom resources answer 415, as
   * kube-apiserver does (they have no patch strategy metadata).
   */
  readonly strategicMergePatch?: boolean;
  /**
   * Tracks `metadata.generation`, bumped by changes outside metadata (and status, where status is a
   * subresource): custom resources and workload kinds (Pods, Deployments, ...) do; ConfigMaps,
   * Services, Namespaces and the like do not.
   */
  readonly generation?: boolean;
  /** Converts a stored object to a served version (identity when absent). */
  readonly convert?: (object: KubeObject, toVersion: string) => KubeObject;
}

/** `group/plural`: identifies a resource's storage regardless of version. */
export function resourceId(type: Pick<ResourceType, "group" | "plural">): string {
  return type.group ? `${type.group}/${type.plural}` : type.plural;
}

/** `group/version` (`v1` for core). */
export function groupVersion(group: string, version: string): string {
  return group ? `${group}/${version}` : version;
}

function builtin(
  group: string,
  version: string,
  kind: string,
  plural: string,
  namespaced: boolean,
  shortNames: string[],
  statusSubresource: boolean,
  extraFieldSelectors: string[] = [],
): ResourceType {
  const workload = ALL_CATEGORY_KINDS.has(kind);
  return {
    group,
    versions: [version],
    storageVersion: version,
    kind,
    listKind: `${kind}List`,
    plural,
    singular: kind.toLowerCase(),
    namespaced,
    shortNames,
    statusSubresource,
    extraFieldSelectors,
    strategicMergePatch: true,
    generation: GENERATION_KINDS.has(kind),
    ...(workload ? { categories: ["all"] } : {}),
    ...(kind === "Deployment" || kind === "ReplicaSet" ? { scale: true } : {}),
  };
}

/** Built-in kinds in the `all` category (of those the simulator serves), as kube-apiserver v1.37 lists them. */
const ALL_CATEGORY_KINDS = new Set(["Pod", "Service", "Deployment", "ReplicaSet"]);

/** Built-in kinds whose strategy tracks generation (as kube-apiserver v1.37 serves them). */
const GENERATION_KINDS = new Set([
  "Pod",
  "Deployment",
  "ReplicaSet",
  "StatefulSet",
  "DaemonSet",
  "Job",
  "CronJob",
]);

/** Core v1 Namespace. */
export const NAMESPACE_TYPE: ResourceType = builtin(
  "",
  "v1",
  "Namespace",
  "namespaces",
  false,
  ["ns"],
  true,
  ["status.phase"],
);

/**
 * The built-in kinds every simulated cluster serves.
 *
 * @example What `kubectl api-resources` would list
 * ```ts
 * import assert from "node:assert/strict";
 * import { BUILTIN_TYPES } from "@fleetkit/clustercache/testing";
 *
 * const kinds = BUILTIN_TYPES.map((t) => t.kind);
 * assert.ok(["Namespace", "Node", "Pod", "ConfigMap", "Secret", "Deployment"].every((k) => kinds.includes(k)));
 * ```
 */
export const BUILTIN_TYPES: readonly ResourceType[] = [
  NAMESPACE_TYPE,
  builtin("", "v1", "Node", "nodes", false, ["no"], true, ["spec.unschedulable"]),
  builtin("", "v1", "Pod", "pods", true, ["po"], true, [
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "status.phase",
    "status.podIP",
    "status.nominatedNodeName",
  ]),
  builtin("", "v1", "Service", "services", true, ["svc"], true, ["spec.clusterIP", "spec.type"]),
  builtin("", "v1", "ConfigMap", "configmaps", true, ["cm"], false),
  builtin("", "v1", "PodTemplate", "podtemplates", true, [], false),
  builtin("", "v1", "Secret", "secrets", true, [], false, ["type"]),
  builtin("", "v1", "Event", "events", true, ["ev"], false, [
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
  ]),
  builtin("apps", "v1", "Deployment", "deployments", true, ["deploy"], true),
  builtin("apps", "v1", "ReplicaSet", "replicasets", true, ["rs"], true, ["status.replicas"]),
  builtin("coordination.k8s.io", "v1", "Lease", "leases", true, [], false),
];

function convertCluster(object: KubeObject, toVersion: string): KubeObject {
  const out = structuredClone(object);
  const fromVersion = (object.apiVersion ?? "").split("/")[1];
  out.apiVersion = `cluster.x-k8s.io/${toVersion}`;
  if (fromVersion === toVersion) return out;
  const status = (out.status ?? {}) as Record<string, unknown>;
  if (toVersion === "v1beta1") {
    const init = (status.initialization ?? {}) as Record<string, unknown>;
    delete status.initialization;
    if (init.infrastructureProvisioned !== undefined) {
      status.infrastructureReady = init.infrastructureProvisioned;
    }
    if (init.controlPlaneInitialized !== undefined) {
      status.controlPlaneReady = init.controlPlaneInitialized;
    }
  } else {
    const init: Record<string, unknown> = {};
    if (status.infrastructureReady !== undefined) {
      init.infrastructureProvisioned = status.infrastructureReady;
    }
    if (status.controlPlaneReady !== undefined) {
      init.controlPlaneInitialized = status.controlPlaneReady;
    }
    delete status.infrastructureReady;
    delete status.controlPlaneReady;
    if (Object.keys(init).length > 0) status.initialization = init;
  }
  if (out.status !== undefined || Object.keys(status).length > 0) out.status = status;
  return out;
}

/**
 * Cluster API's `Cluster`, served as v1beta2 (storage) and v1beta1, converting
 * `status.infrastructureReady` to and from `status.initialization.infrastructureProvisioned`.
 *
 * @example A fake client that knows Clusters, in both versions
 * ```ts
 * import assert from "node:assert/strict";
 * import { CLUSTER_TYPE, FakeClient } from "@fleetkit/clustercache/testing";
 *
 * assert.deepEqual(CLUSTER_TYPE.versions, ["v1beta2", "v1beta1"]);
 * const client = new FakeClient(); // serves CLUSTER_TYPE besides the built-ins
 * await client.create({
 *   apiVersion: "cluster.x-k8s.io/v1beta2",
 *   kind: "Cluster",
 *   metadata: { namespace: "default", name: "workload-1" },
 * });
 * const old = await client.get({ apiVersion: "cluster.x-k8s.io/v1beta1", kind: "Cluster" }, {
 *   namespace: "default",
 *   name: "workload-1",
 * });
 * assert.equal(old.apiVersion, "cluster.x-k8s.io/v1beta1");
 * ```
 */
export const CLUSTER_TYPE: ResourceType = {
  group: "cluster.x-k8s.io",
  versions: ["v1beta2", "v1beta1"],
  storageVersion: "v1beta2",
  kind: "Cluster",
  listKind: "ClusterList",
  plural: "clusters",
  singular: "cluster",
  namespaced: true,
  shortNames: ["cl"],
  categories: ["cluster-api"],
  statusSubresource: true,
  extraFieldSelectors: [],
  generation: true,
  convert: convertCluster,
};

function review(group: string, kind: string, plural: string): ResourceType {
  return {
    group,
    versions: ["v1"],
    storageVersion: "v1",
    kind,
    listKind: `${kind}List`,
    plural,
    singular: kind.toLowerCase(),
    namespaced: false,
    shortNames: [],
    statusSubresource: false,
    extraFieldSelectors: [],
    verbs: ["create"],
  };
}

/**
 * The review kinds kubectl's `auth` commands create, served by every simulated cluster (answered
 * by `kubectl/reviews.ts`, never stored).
 */
export const REVIEW_TYPES: readonly ResourceType[] = [
  review("authorization.k8s.io", "SelfSubjectAccessReview", "selfsubjectaccessreviews"),
  review("authorization.k8s.io", "SelfSubjectRulesReview", "selfsubjectrulesreviews"),
  review("authentication.k8s.io", "SelfSubjectReview", "selfsubjectreviews"),
];
