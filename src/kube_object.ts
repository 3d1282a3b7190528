/**
 * The plain-JSON shapes of Kubernetes objects as they travel over the wire, between threads and into
 * users' hands. Timestamps are RFC 3339 strings, exactly as the API server sends them (`kubectl get -o
 * json`), not `Date` objects.
 *
 * @module
 */

/** Object metadata, as the API server serialises it. */
export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  deletionGracePeriodSeconds?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  ownerReferences?: {
    apiVersion: string;
    kind: string;
    name: string;
    uid: string;
    controller?: boolean;
    blockOwnerDeletion?: boolean;
  }[];
  managedFields?: unknown[];
  [key: string]: unknown;
}

/** Any Kubernetes object in its JSON form. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
  [key: string]: unknown;
}

/** A list of objects, as returned by list calls. */
export interface KubeList<T extends KubeObject = KubeObject> {
  apiVersion?: string;
  kind?: string;
  metadata: { resourceVersion?: string; continue?: string; remainingItemCount?: number };
  items: T[];
}

/**
 * Identifies an object (or a cluster) within its kind: `namespace` is `""` for cluster-scoped objects.
 *
 * @example
 * ```ts
 * import type { ObjectKey } from "./kube_object.ts";
 * const cluster: ObjectKey = { namespace: "default", name: "workload-1" };
 * ```
 */
export interface ObjectKey {
  namespace: string;
  name: string;
}

/** Names a kind by API version and kind, e.g. `{ apiVersion: "apps/v1", kind: "Deployment" }`. */
export interface KindRef {
  apiVersion: string;
  kind: string;
}

/** The `Status` object the API server returns for errors. */
export interface Status {
  kind: "Status";
  apiVersion: "v1";
  metadata: Record<string, unknown>;
  status: "Success" | "Failure";
  message?: string;
  reason?: string;
  details?: {
    name?: string;
    group?: string;
    kind?: string;
    uid?: string;
    causes?: { reason?: string; message?: string; field?: string }[];
    retryAfterSeconds?: number;
  };
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
