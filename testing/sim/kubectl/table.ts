/**
 * Server-side printing: the `meta.k8s.io/v1` `Table` kubectl asks for with
 * `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`.
 *
 * @module
 */

import type { KubeObject } from "../../../src/shared/kube_object.ts";
import type { ResourceType } from "../resource_types.ts";

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

function column(
  name: string,
  description: string,
  cell: (o: KubeObject) => string | number,
  type = "string",
): Column {
  return { name, type, format: "", description, priority: 0, cell };
}

function count(object: KubeObject, ...path: string[]): number {
  return Number(field(object, ...path) || 0);
}

function servicePorts(object: KubeObject): string {
  const ports =
    (object.spec as { ports?: { port: number; nodePort?: number; protocol?: string }[] })
      ?.ports ?? [];
  if (ports.length === 0) return "<none>";
  return ports.map((p) => `${p.port}${p.nodePort ? `:${p.nodePort}` : ""}/${p.protocol ?? "TCP"}`)
    .join(",");
}

function podReady(object: KubeObject): string {
  const containers = (object.spec as { containers?: unknown[] })?.containers ?? [];
  const statuses = (object.status as { containerStatuses?: { ready?: boolean }[] })
    ?.containerStatuses ?? [];
  return `${statuses.filter((c) => c.ready).length}/${containers.length}`;
}

function podRestarts(object: KubeObject): number {
  const statuses = (object.status as { containerStatuses?: { restartCount?: number }[] })
    ?.containerStatuses ?? [];
  return statuses.reduce((sum, c) => sum + (c.restartCount ?? 0), 0);
}

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
      return [
        NAME,
        column(
          "Ready",
          "The aggregate readiness state of this pod for accepting traffic.",
          podReady,
        ),
        status("The aggregate status of the containers in this pod.", "status", "phase"),
        column(
          "Restarts",
          "The number of times the containers in this pod have been restarted.",
          podRestarts,
          "string",
        ),
        AGE,
      ];
    case "Deployment":
      return [
        NAME,
        column(
          "Ready",
          "Number of the pod with ready state",
          (o) => `${count(o, "status", "readyReplicas")}/${count(o, "spec", "replicas")}`,
        ),
        column(
          "Up-to-date",
          "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
          (o) => count(o, "status", "updatedReplicas"),
          "integer",
        ),
        column(
          "Available",
          "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
          (o) => count(o, "status", "availableReplicas"),
          "integer",
        ),
        AGE,
      ];
    case "ReplicaSet":
      return [
        NAME,
        column(
          "Desired",
          "Replicas is the number of desired pods.",
          (o) => count(o, "spec", "replicas"),
          "integer",
        ),
        column(
          "Current",
          "Replicas is the most recently observed number of replicas.",
          (o) => count(o, "status", "replicas"),
          "integer",
        ),
        column(
          "Ready",
          "The number of ready replicas for this replica set.",
          (o) => count(o, "status", "readyReplicas"),
          "integer",
        ),
        AGE,
      ];
    case "Service":
      return [
        NAME,
        column(
          "Type",
          "type determines how the Service is exposed.",
          (o) => field(o, "spec", "type") || "ClusterIP",
        ),
        column(
          "Cluster-IP",
          "clusterIP is the IP address of the service.",
          (o) => field(o, "spec", "clusterIP") || "<none>",
        ),
        column(
          "External-IP",
          "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.",
          (o) => ((o.spec as { externalIPs?: string[] })?.externalIPs ?? []).join(",") || "<none>",
        ),
        column("Port(s)", "The ports this service exposes.", servicePorts),
        AGE,
      ];
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
