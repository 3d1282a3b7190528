/**
 * Server-side apply's field ownership, as kube-apiserver keeps it in `metadata.managedFields`: who
 * owns which fields, conflicts when an applier would change another manager's field (unless it
 * forces), and removal of fields an applier stops applying that nobody else owns.
 *
 * Fields are leaves of the object: map keys all the way down, lists as one field each (kube-apiserver
 * merges some built-in lists by key; atomic lists are what custom resources and most fields have).
 *
 * @module
 */

import type { KubeObject } from "../../src/shared/kube_object.ts";
import { groupVersion, type ResourceType } from "./resource_types.ts";
import { errors } from "./status.ts";

type Json = unknown;
type Path = string[];

/**
 * One entry of `metadata.managedFields`, as kube-apiserver writes it.
 *
 * @example Who owns `data.a`
 * ```ts
 * import type { ManagedFieldsEntry } from "@fleetkit/clustercache/testing";
 *
 * const entry: ManagedFieldsEntry = {
 *   manager: "alice",
 *   operation: "Apply",
 *   apiVersion: "v1",
 *   time: "2026-12-03T00:00:00Z",
 *   fieldsType: "FieldsV1",
 *   fieldsV1: { "f:data": { "f:a": {} } },
 * };
 * ```
 */
export interface ManagedFieldsEntry {
  /** The field manager. */
  manager: string;
  /** `Apply` for server-side apply, `Update` for other writes. */
  operation: "Apply" | "Update";
  /** The version the fields are described in. */
  apiVersion: string;
  /** When the manager last wrote (RFC 3339). */
  time: string;
  /** Always `FieldsV1`. */
  fieldsType: "FieldsV1";
  /** The owned fields: `{"f:data": {"f:a": {}}}`. */
  fieldsV1: Record<string, unknown>;
  /** `status` for writes through the status subresource. */
  subresource?: string;
}

const IGNORED_METADATA = new Set([
  "name",
  "namespace",
  "uid",
  "resourceVersion",
  "generation",
  "creationTimestamp",
  "deletionTimestamp",
  "deletionGracePeriodSeconds",
  "managedFields",
  "selfLink",
]);

function isMap(value: Json): value is Record<string, Json> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function leaves(value: Json, prefix: Path, out: Path[]): void {
  if (isMap(value) && Object.keys(value).length > 0) {
    for (const [k, v] of Object.entries(value)) leaves(v, [...prefix, k], out);
  } else {
    out.push(prefix);
  }
}

/** The fields an object sets (what an applier claims, or what a write touched). */
export function fieldsOf(object: KubeObject, type: ResourceType, subresource?: string): Path[] {
  const out: Path[] = [];
  for (const [key, value] of Object.entries(object)) {
    if (key === "apiVersion" || key === "kind") continue;
    if (type.statusSubresource && (key === "status") !== (subresource === "status")) continue;
    if (key === "metadata" && isMap(value)) {
      for (const [k, v] of Object.entries(value)) {
        if (!IGNORED_METADATA.has(k)) leaves(v, ["metadata", k], out);
      }
      continue;
    }
    leaves(value, [key], out);
  }
  return out;
}

const id = (path: Path) => JSON.stringify(path);

function valueAt(object: Json, path: Path): Json {
  let at: Json = object;
  for (const key of path) {
    if (!isMap(at)) return undefined;
    at = at[key];
  }
  return at;
}

function removeAt(object: Record<string, Json>, path: Path): void {
  const parents: Record<string, Json>[] = [];
  let at: Json = object;
  for (const key of path.slice(0, -1)) {
    if (!isMap(at)) return;
    parents.push(at);
    at = at[key];
  }
  if (!isMap(at)) return;
  delete at[path.at(-1)!];
  // Maps left empty by the removal go too, as kube-apiserver prunes them.
  for (let i = path.length - 2; i >= 0; i--) {
    const parent = parents[i]!;
    const child = parent[path[i]!];
    if (isMap(child) && Object.keys(child).length === 0) delete parent[path[i]!];
    else break;
  }
}

function same(a: Json, b: Json): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Paths to the FieldsV1 form: `{"f:data": {"f:a": {}}}`. */
export function toFieldsV1(paths: Path[]): Record<string, unknown> {
  const root: Record<string, Record<string, unknown>> = {};
  for (const path of paths) {
    let at: Record<string, unknown> = root;
    for (const key of path) at = (at[`f:${key}`] ??= {}) as Record<string, unknown>;
  }
  return root;
}

/** The FieldsV1 form to paths (its leaves). */
export function fromFieldsV1(fields: Record<string, unknown>, prefix: Path = []): Path[] {
  const out: Path[] = [];
  for (const [key, value] of Object.entries(fields)) {
    if (!key.startsWith("f:")) continue;
    const path = [...prefix, key.slice(2)];
    const children = isMap(value) ? fromFieldsV1(value as Record<string, unknown>, path) : [];
    if (children.length === 0) out.push(path);
    else out.push(...children);
  }
  return out;
}

function entries(object: KubeObject | undefined): ManagedFieldsEntry[] {
  return structuredClone(
    (object?.metadata?.managedFields ?? []) as unknown as ManagedFieldsEntry[],
  );
}

function entry(
  manager: string,
  operation: "Apply" | "Update",
  type: ResourceType,
  paths: Path[],
  subresource?: string,
): ManagedFieldsEntry {
  return {
    manager,
    operation,
    apiVersion: groupVersion(type.group, type.storageVersion),
    time: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
    fieldsType: "FieldsV1",
    fieldsV1: toFieldsV1(paths),
    ...(subresource ? { subresource } : {}),
  };
}

function withPaths(list: ManagedFieldsEntry[], mine: ManagedFieldsEntry): ManagedFieldsEntry[] {
  const kept = list.filter((e) =>
    !(e.manager === mine.manager && e.operation === mine.operation &&
      e.subresource === mine.subresource) && fromFieldsV1(e.fieldsV1).length > 0
  );
  return fromFieldsV1(mine.fieldsV1).length > 0 ? [...kept, mine] : kept;
}

/**
 * The managed fields after a non-apply write by `manager`: it owns what it changed, and nobody
 * else does any more.
 */
export function recordUpdate(
  previous: KubeObject | undefined,
  next: KubeObject,
  manager: string,
  type: ResourceType,
  subresource?: string,
): ManagedFieldsEntry[] {
  const before = new Map(
    (previous ? fieldsOf(previous, type, subresource) : []).map((p) => [id(p), p]),
  );
  const after = fieldsOf(next, type, subresource);
  const changed = after.filter((p) =>
    !before.has(id(p)) || !same(valueAt(previous, p), valueAt(next, p))
  );
  const gone = new Set([...before.keys()].filter((k) => !after.some((p) => id(p) === k)));
  const touched = new Set([...changed.map(id), ...gone]);
  const list = entries(previous).map((e) => ({
    ...e,
    fieldsV1: toFieldsV1(fromFieldsV1(e.fieldsV1).filter((p) => !touched.has(id(p)))),
  }));
  const mine = list.find((e) =>
    e.manager === manager && e.operation === "Update" && e.subresource === subresource
  );
  const owned = [...(mine ? fromFieldsV1(mine.fieldsV1) : []), ...changed];
  if (owned.length === 0 && !mine) return list.filter((e) => fromFieldsV1(e.fieldsV1).length > 0);
  return withPaths(list, entry(manager, "Update", type, owned, subresource));
}

function mergeApplied(current: Json, config: Json): Json {
  if (!isMap(current) || !isMap(config)) return structuredClone(config);
  const out: Record<string, Json> = { ...current };
  for (const [k, v] of Object.entries(config)) out[k] = mergeApplied(current[k], v);
  return out;
}

/** How kube-apiserver names a conflicting manager (fieldmanager's printManager). */
function describeManager(owner: ManagedFieldsEntry): string {
  let text = JSON.stringify(owner.manager);
  if (owner.subresource) text += ` with subresource ${JSON.stringify(owner.subresource)}`;
  if (owner.operation !== "Update") return text;
  return owner.time
    ? `${text} using ${owner.apiVersion} at ${owner.time}`
    : `${text} using ${owner.apiVersion}`;
}

/**
 * Server-side apply of `config` by `manager` onto `current`: the merged object and its managed
 * fields.
 *
 * @throws {StatusError} 409 Conflict naming each field another manager owns with another value,
 *   unless `force`.
 */
export function applyConfig(
  current: KubeObject,
  config: KubeObject,
  manager: string,
  force: boolean,
  type: ResourceType,
  subresource?: string,
): { object: KubeObject; managedFields: ManagedFieldsEntry[] } {
  const applied = fieldsOf(config, type, subresource);
  const list = entries(current);
  const conflicts: { owner: ManagedFieldsEntry; path: Path }[] = [];
  for (const other of list) {
    if (other.manager === manager) continue;
    const owned = new Set(fromFieldsV1(other.fieldsV1).map(id));
    for (const path of applied) {
      if (owned.has(id(path)) && !same(valueAt(current, path), valueAt(config, path))) {
        conflicts.push({ owner: other, path });
      }
    }
  }
  if (conflicts.length > 0 && !force) {
    const describe = (c: (typeof conflicts)[number]) => `.${c.path.join(".")}`;
    throw errors.applyConflict(
      conflicts.map((c) => ({
        message: `conflict with ${describeManager(c.owner)}`,
        field: describe(c),
      })),
    );
  }
  const taken = new Set(conflicts.map((c) => id(c.path)));
  const others = list.filter((e) => e.manager !== manager).map((e) => ({
    ...e,
    fieldsV1: toFieldsV1(fromFieldsV1(e.fieldsV1).filter((p) => !taken.has(id(p)))),
  }));
  const previous = list.find((e) => e.manager === manager && e.operation === "Apply");
  const appliedIds = new Set(applied.map(id));
  const ownedByOthers = new Set(others.flatMap((e) => fromFieldsV1(e.fieldsV1)).map(id));
  const object = mergeApplied(current, config) as KubeObject;
  for (const path of previous ? fromFieldsV1(previous.fieldsV1) : []) {
    if (!appliedIds.has(id(path)) && !ownedByOthers.has(id(path))) {
      removeAt(object as Record<string, Json>, path);
    }
  }
  const updates = list.filter((e) => e.manager === manager && e.operation === "Update");
  return {
    object,
    managedFields: withPaths(
      [...others, ...updates],
      entry(manager, "Apply", type, applied, subresource),
    ),
  };
}
