/**
 * The plain-JSON shapes of Kubernetes objects as they travel over the wire, between threads and into
 * users' hands. Timestamps are RFC 3339 strings, exactly as the API server sends them (`kubectl get -o
 * json`), not `Date` objects.
 *
 * @module
 */

/**
 * Object metadata, as the API server serialises it.
 *
 * @example What the server fills in on create
 * ```ts
 * import assert from "node:assert/strict";
 * import type { ObjectMeta } from "@fleetkit/clustercache";
 * import { FakeClient } from "@fleetkit/clustercache/testing";
 *
 * const metadata: ObjectMeta = { namespace: "default", generateName: "job-", labels: { app: "a" } };
 * const created = await new FakeClient().create({ apiVersion: "v1", kind: "ConfigMap", metadata });
 * assert.match(created.metadata!.name!, /^job-/);
 * assert.ok(created.metadata!.uid && created.metadata!.resourceVersion);
 * assert.ok(created.metadata!.creationTimestamp);
 * ```
 */
export interface ObjectMeta {
  /** Name, unique within the namespace (or the cluster, for cluster-scoped kinds). */
  name?: string;
  /** Prefix the server completes into a unique name on create. */
  generateName?: string;
  /** Namespace; absent for cluster-scoped objects. */
  namespace?: string;
  /** Unique ID the server assigns on create. */
  uid?: string;
  /** Opaque version of this state, for optimistic concurrency and watches. */
  resourceVersion?: string;
  /** Incremented by the server on every spec change. */
  generation?: number;
  /** When the object was created (RFC 3339). */
  creationTimestamp?: string;
  /** When deletion was requested (RFC 3339); the object stays while finalizers remain. */
  deletionTimestamp?: string;
  /** Grace period of a requested deletion. */
  deletionGracePeriodSeconds?: number;
  /** Labels, for selection. */
  labels?: Record<string, string>;
  /** Annotations, for arbitrary metadata. */
  annotations?: Record<string, string>;
  /** Finalizers that must be removed before a deleted object goes away. */
  finalizers?: string[];
  /** Objects this object belongs to. */
  ownerReferences?: {
    apiVersion: string;
    kind: string;
    name: string;
    uid: string;
    controller?: boolean;
    blockOwnerDeletion?: boolean;
  }[];
  /** Who manages which fields (server-side apply). */
  managedFields?: unknown[];
  /** Any other metadata field. */
  [key: string]: unknown;
}

/**
 * Any Kubernetes object in its JSON form.
 *
 * @example Typing your own kinds
 * ```ts
 * import type { KubeObject } from "@fleetkit/clustercache";
 * import { FakeClient } from "@fleetkit/clustercache/testing";
 *
 * interface Deployment extends KubeObject {
 *   spec?: { replicas?: number };
 * }
 * const client = new FakeClient();
 * const created = await client.create<Deployment>({
 *   apiVersion: "apps/v1",
 *   kind: "Deployment",
 *   metadata: { namespace: "default", name: "web" },
 *   spec: { replicas: 2 },
 * });
 * const replicas: number | undefined = created.spec?.replicas;
 * ```
 */
export interface KubeObject {
  /** `group/version`, or `v1` for the core group. */
  apiVersion?: string;
  /** The kind, e.g. `Pod`. */
  kind?: string;
  /** Metadata. */
  metadata?: ObjectMeta;
  /** `spec`, `status`, `data` and the rest. */
  [key: string]: unknown;
}

/**
 * A list of objects, as returned by list calls.
 *
 * @example Paging through a live list
 * ```ts
 * import assert from "node:assert/strict";
 * import type { KubeList, KubeObject } from "@fleetkit/clustercache";
 * import { FakeClient } from "@fleetkit/clustercache/testing";
 *
 * const objects = Array.from({ length: 5 }, (_, i) => ({
 *   apiVersion: "v1",
 *   kind: "ConfigMap",
 *   metadata: { namespace: "default", name: `cm-${i}` },
 * }));
 * const client = new FakeClient({ objects });
 * const all: KubeObject[] = [];
 * let page: KubeList | undefined;
 * do {
 *   page = await client.list({ apiVersion: "v1", kind: "ConfigMap" }, {
 *     limit: 2,
 *     ...(page?.metadata.continue ? { continue: page.metadata.continue } : {}),
 *   });
 *   all.push(...page.items);
 * } while (page.metadata.continue);
 * assert.equal(all.length, 5);
 * ```
 */
export interface KubeList<T extends KubeObject = KubeObject> {
  /** `group/version` of the list. */
  apiVersion?: string;
  /** The list kind, e.g. `PodList`. */
  kind?: string;
  /** List metadata: the list's resourceVersion, and for live paged lists the continue token. */
  metadata: { resourceVersion?: string; continue?: string; remainingItemCount?: number };
  /** The objects. */
  items: T[];
}

/**
 * Identifies an object (or a cluster) within its kind: `namespace` is `""` for cluster-scoped objects.
 *
 * @example Naming a workload cluster
 * ```ts
 * import type { ObjectKey } from "@fleetkit/clustercache";
 * import { FakeClient, FakeClusterCache } from "@fleetkit/clustercache/testing";
 *
 * // The Cluster object `workload-1` in the management cluster's `default` namespace.
 * const cluster: ObjectKey = { namespace: "default", name: "workload-1" };
 * const cache = new FakeClusterCache(new FakeClient(), cluster);
 * const client = cache.getClient(cluster);
 * ```
 */
export interface ObjectKey {
  /** Namespace, or `""`. */
  namespace: string;
  /** Name. */
  name: string;
}

/**
 * Names a kind by API version and kind, e.g. `{ apiVersion: "apps/v1", kind: "Deployment" }`.
 *
 * @example Kinds as constants
 * ```ts
 * import type { KindRef } from "@fleetkit/clustercache";
 * import { FakeClient } from "@fleetkit/clustercache/testing";
 *
 * const Deployment: KindRef = { apiVersion: "apps/v1", kind: "Deployment" };
 * const deployments = await new FakeClient().list(Deployment, { namespace: "default" });
 * ```
 */
export interface KindRef {
  /** `group/version`, or `v1` for the core group. */
  apiVersion: string;
  /** The kind. */
  kind: string;
}

/**
 * The `Status` object the API server returns for errors.
 *
 * @example Reading the causes of a refusal
 * ```ts
 * import assert from "node:assert/strict";
 * import { KubernetesApiError, type Status } from "@fleetkit/clustercache";
 * import { FakeClient } from "@fleetkit/clustercache/testing";
 *
 * const error = await new FakeClient()
 *   .create({ apiVersion: "v1", kind: "ConfigMap", metadata: { namespace: "default", name: "Bad_Name" } })
 *   .catch((e) => e);
 * assert.ok(error instanceof KubernetesApiError);
 * const status: Status = error.status;
 * assert.equal(status.reason, "Invalid");
 * assert.equal(status.code, 422);
 * ```
 */
export interface Status {
  /** Always `"Status"`. */
  kind: "Status";
  /** Always `"v1"`. */
  apiVersion: "v1";
  /** List metadata (usually empty). */
  metadata: Record<string, unknown>;
  /** `"Failure"` for errors. */
  status: "Success" | "Failure";
  /** Human-readable description. */
  message?: string;
  /** Machine-readable reason: `NotFound`, `Conflict`, `Expired`, `Unauthorized`, ... */
  reason?: string;
  /** More about the object concerned. */
  details?: {
    name?: string;
    group?: string;
    kind?: string;
    uid?: string;
    causes?: { reason?: string; message?: string; field?: string }[];
    retryAfterSeconds?: number;
  };
  /** The HTTP status code. */
  code: number;
}

/** Splits `apiVersion` into group and version (`"v1"` is the core group `""`). */
export function splitApiVersion(apiVersion: string): { group: string; version: string } {
  const slash = apiVersion.indexOf("/");
  return slash < 0
    ? { group: "", version: apiVersion }
    : { group: apiVersion.slice(0, slash), version: apiVersion.slice(slash + 1) };
}

/** Formats `namespace/name` (just `name` when cluster-scoped): the cache and log key of an object. */
export function formatObjectKey(key: ObjectKey): string {
  return key.namespace ? `${key.namespace}/${key.name}` : key.name;
}

/** Reads the key of an object from its metadata. */
export function objectKeyOf(object: KubeObject): ObjectKey {
  return { namespace: object.metadata?.namespace ?? "", name: object.metadata?.name ?? "" };
}

/**
 * Checks a kind argument.
 *
 * @throws {TypeError} Unless both `apiVersion` and `kind` are non-empty strings.
 */
export function checkKind(kind: KindRef): void {
  if (
    !kind || typeof kind.apiVersion !== "string" || typeof kind.kind !== "string" ||
    !kind.apiVersion || !kind.kind
  ) {
    throw new TypeError(`Invalid kind: expected { apiVersion, kind }, got ${JSON.stringify(kind)}`);
  }
}
