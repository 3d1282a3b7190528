/**
 * Cluster keys as the reconciler holds them (`namespace/name`), checked where users hand them in.
 *
 * @module
 */

import { formatObjectKey, type ObjectKey } from "../../shared/kube_object.ts";

export function checkClusterKey(key: ObjectKey): string {
  if (
    !key || typeof key.name !== "string" || key.name === "" || typeof key.namespace !== "string"
  ) {
    throw new TypeError(
      `Invalid cluster key: expected { namespace, name } strings, got ${JSON.stringify(key)}`,
    );
  }
  return formatObjectKey(key);
}

export function parseClusterKey(key: string): ObjectKey {
  const slash = key.indexOf("/");
  return slash < 0
    ? { namespace: "", name: key }
    : { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}
