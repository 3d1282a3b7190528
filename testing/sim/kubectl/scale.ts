/**
 * The `/scale` subresource of Deployments and ReplicaSets (`autoscaling/v1` Scale), as
 * kube-apiserver serves it to `kubectl scale` and autoscalers. Loaded by the simulator only.
 *
 * @module
 */

import type { KubeObject } from "../../../src/shared/kube_object.ts";
import {
  applyJsonPatch,
  applyMergePatch,
  applyStrategicMergePatch,
  type JsonValue,
  PatchError,
} from "../json_patch.ts";
import type { ObjectStore, StoreWriteOptions } from "../object_store.ts";
import type { ResourceType } from "../resource_types.ts";
import type { PatchType } from "../rest.ts";
import { errors } from "../status.ts";

interface ScaleSpec {
  replicas?: number;
}

/** The Scale of `object`: its desired and observed replicas and its selector as a string. */
export function toScale(object: KubeObject): KubeObject {
  const spec = (object.spec ?? {}) as { replicas?: number; selector?: LabelSelector };
  const status = (object.status ?? {}) as { replicas?: number };
  const meta = object.metadata ?? {};
  return {
    kind: "Scale",
    apiVersion: "autoscaling/v1",
    metadata: Object.fromEntries(
      (["name", "namespace", "uid", "resourceVersion", "creationTimestamp"] as const)
        .filter((field) => meta[field] !== undefined)
        .map((field) => [field, meta[field]]),
    ),
    spec: { replicas: spec.replicas ?? 1 },
    status: { replicas: status.replicas ?? 0, selector: selectorString(spec.selector) },
  };
}

interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: string; values?: string[] }[];
}

function selectorString(selector: LabelSelector | undefined): string {
  const parts = Object.entries(selector?.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`);
  for (const e of selector?.matchExpressions ?? []) {
    const values = [...(e.values ?? [])].sort().join(",");
    if (e.operator === "In") parts.push(`${e.key} in (${values})`);
    else if (e.operator === "NotIn") parts.push(`${e.key} notin (${values})`);
    else if (e.operator === "Exists") parts.push(e.key);
    else if (e.operator === "DoesNotExist") parts.push(`!${e.key}`);
  }
  return parts.sort().join(",");
}

/**
 * Writes a new Scale: `PUT` sends one (its resourceVersion, when set, is a precondition), `PATCH`
 * patches the current one. Only `spec.replicas` is taken.
 *
 * @returns The object's new Scale.
 */
export function writeScale(
  store: ObjectStore,
  type: ResourceType,
  namespace: string,
  name: string,
  change: { put: KubeObject } | { patch: PatchType; body: string },
  options: StoreWriteOptions,
): KubeObject {
  const current = store.get(type, namespace, name);
  if (!current) throw errors.notFound(type.group, type.plural, name);
  let scale: KubeObject;
  if ("put" in change) {
    scale = change.put;
  } else {
    if (change.patch === "apply") {
      throw errors.unsupportedMediaType("application/apply-patch+yaml", false);
    }
    let body: JsonValue;
    try {
      body = JSON.parse(change.body);
    } catch (error) {
      throw errors.badRequest(
        `the body of the request could not be decoded: ${(error as Error).message}`,
      );
    }
    const before = toScale(current) as JsonValue;
    try {
      scale = (change.patch === "json"
        ? applyJsonPatch(before, body)
        : change.patch === "merge"
        ? applyMergePatch(before, body)
        : applyStrategicMergePatch(before, body)) as KubeObject;
    } catch (error) {
      if (error instanceof PatchError) {
        throw errors.invalid("Scale", name, [{ field: "patch", message: error.message }]);
      }
      throw error;
    }
  }
  const replicas = (scale.spec as ScaleSpec | undefined)?.replicas;
  if (replicas === undefined || !Number.isInteger(replicas) || replicas < 0) {
    throw errors.invalid("Scale", name, [{
      field: "spec.replicas",
      message: `Invalid value: ${
        JSON.stringify(replicas ?? null)
      }: must be greater than or equal to 0`,
    }]);
  }
  const wanted = scale.metadata?.resourceVersion;
  const updated = store.update(type, {
    ...current,
    metadata: { ...current.metadata, ...(wanted ? { resourceVersion: wanted } : {}) },
    spec: { ...(current.spec as object), replicas },
  }, options);
  return toScale(updated);
}
