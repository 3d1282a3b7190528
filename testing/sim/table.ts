/**
 * Server-side printing: the `meta.k8s.io/v1` `Table` kubectl asks for with
 * `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`.
 *
 * @module
 */

import type { KubeObject } from "../../src/kube_object.ts";
import type { ResourceType } from "./resource_types.ts";

interface Column {
  name: string;
  type: string;
  format: string;
  description: string;
  priority: number;
  cell: (object: KubeObject, now: number) => string | number;
}

/** Renders an age the way kubectl does (`45s`, `3m12s`, `5h`, `12d`). */
export function humanAge(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 10) return s % 60 === 0 ? `${m}m` : `${m}m${s % 60}s`;
  const h = Math.floor(m / 60);
  if (h < 3) return `${m}m`;
  if (h < 8) return m % 60 === 0 ? `${h}h` : `${h}h${m % 60}m`;
  if (h < 48) return `${h}h`;
  return `${Math.floor(h / 24)}d`;
}

function age(object: KubeObject, now: number): string {
  const created = Date.parse(object.metadata?.creationTimestamp ?? "");
  return Number.isNaN(created) ? "<unknown>" : humanAge((now - created) / 1000);
}

function field(object: KubeObject, ...path: string[]): string {
  let value: unknown = object;
  for (const part of path) value = (value as Record<string, unknown> | undefined)?.[part];
  return value === undefined || value === null ? "" : String(value);
}

const NAME: Column = {
  name: "Name",
  type: "string",
  format: "name",
  description: "Name must be unique within a namespace.",
  priority: 0,
  cell: (o) => o.metadata?.name ?? "",
};
const AGE: Column = {
  name: "Age",
  type: "string",
  format: "",
  description:
    "CreationTimestamp is a timestamp representing the server time when this object was created.",
  priority: 0,
  cell: age,
};

function columnsFor(type: ResourceType): Column[] {
  const status = (description: string, ...path: string[]): Column => ({
    name: "Status",
    type: "string",
    format: "",
    description,
    priority: 0,
    cell: (o) => field(o, ...path),
  });
  switch (type.kind) {
    case "Namespace":
      return [NAME, status("The status of the namespace", "status", "phase"), AGE];
    case "Pod":
      return [NAME, status("The phase of the pod", "status", "phase"), AGE];
    case "Cluster":
      return [NAME, {
        name: "Phase",
        type: "string",
        format: "",
        description: "Cluster phase",
        priority: 0,
        cell: (o) => field(o, "status", "phase"),
      }, AGE];
    case "ConfigMap":
      return [NAME, {
        name: "Data",
        type: "integer",
        format: "",
        description: "Number of entries",
        priority: 0,
        cell: (o) => Object.keys((o.data as Record<string, unknown> | undefined) ?? {}).length,
      }, AGE];
    default:
      return [NAME, AGE];
  }
}

/**
 * Builds a Table of `objects`.
 *
 * @param includeObject `"Object"` embeds whole objects, `"None"` nothing, anything else metadata only
 *   (the server's default).
 */
export function toTable(
  type: ResourceType,
  objects: readonly KubeObject[],
  listMeta: Record<string, unknown>,
  includeObject: string | null,
  withColumns = true,
): Record<string, unknown> {
  const columns = columnsFor(type);
  const now = Date.now();
  return {
    kind: "Table",
    apiVersion: "meta.k8s.io/v1",
    metadata: listMeta,
    ...(withColumns
      ? { columnDefinitions: columns.map(({ cell: _cell, ...definition }) => definition) }
      : {}),
    rows: objects.map((object) => ({
      cells: columns.map((c) => c.cell(object, now)),
      object: includeObject === "Object" ? object : includeObject === "None" ? undefined : {
        kind: "PartialObjectMetadata",
        apiVersion: "meta.k8s.io/v1",
        metadata: object.metadata,
      },
    })),
  };
}
