/**
 * Legacy discovery documents (`/api`, `/apis`, `/api/v1`, `/apis/<group>/<version>`) for the kinds a
 * simulated cluster serves. Aggregated discovery is not offered: clients that ask for it accept the
 * plain documents and fall back, as they do against older servers.
 *
 * @module
 */

import { groupVersion, type ResourceType } from "./resource_types.ts";

const VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

/** `/api`: the core group's versions. */
export function apiVersions(serverAddress: string): Record<string, unknown> {
  return {
    kind: "APIVersions",
    versions: ["v1"],
    serverAddressByClientCIDRs: [{ clientCIDR: "0.0.0.0/0", serverAddress }],
  };
}

function groupDocument(group: string, types: readonly ResourceType[]): Record<string, unknown> {
  const versions = [...new Set(types.flatMap((t) => t.versions))];
  const preferred = types[0]!.versions[0]!;
  return {
    name: group,
    versions: versions.map((v) => ({ groupVersion: groupVersion(group, v), version: v })),
    preferredVersion: { groupVersion: groupVersion(group, preferred), version: preferred },
  };
}

function byGroup(types: readonly ResourceType[]): Map<string, ResourceType[]> {
  const groups = new Map<string, ResourceType[]>();
  for (const type of types) {
    if (type.group === "") continue;
    const list = groups.get(type.group) ?? [];
    list.push(type);
    groups.set(type.group, list);
  }
  return groups;
}

/** `/apis`: every named group. */
export function apiGroupList(types: readonly ResourceType[]): Record<string, unknown> {
  return {
    kind: "APIGroupList",
    apiVersion: "v1",
    groups: [...byGroup(types)].map(([group, list]) => groupDocument(group, list)),
  };
}

/** `/apis/<group>`, or `undefined` when the group is not served. */
export function apiGroup(
  types: readonly ResourceType[],
  group: string,
): Record<string, unknown> | undefined {
  const list = byGroup(types).get(group);
  return list ? { kind: "APIGroup", apiVersion: "v1", ...groupDocument(group, list) } : undefined;
}

/** `/api/v1` or `/apis/<group>/<version>`, or `undefined` when nothing is served there. */
export function apiResourceList(
  types: readonly ResourceType[],
  group: string,
  version: string,
): Record<string, unknown> | undefined {
  const served = types.filter((t) => t.group === group && t.versions.includes(version));
  if (served.length === 0) return undefined;
  const resources: Record<string, unknown>[] = [];
  for (const t of served) {
    resources.push({
      name: t.plural,
      singularName: t.singular,
      namespaced: t.namespaced,
      kind: t.kind,
      verbs: t.verbs ?? VERBS,
      ...(t.shortNames.length > 0 ? { shortNames: t.shortNames } : {}),
      ...(t.categories?.length ? { categories: t.categories } : {}),
    });
    if (t.statusSubresource) {
      resources.push({
        name: `${t.plural}/status`,
        singularName: "",
        namespaced: t.namespaced,
        kind: t.kind,
        verbs: ["get", "patch", "update"],
      });
    }
    if (t.scale) {
      resources.push({
        name: `${t.plural}/scale`,
        singularName: "",
        namespaced: t.namespaced,
        group: "autoscaling",
        version: "v1",
        kind: "Scale",
        verbs: ["get", "patch", "update"],
      });
    }
  }
  return {
    kind: "APIResourceList",
    apiVersion: "v1",
    groupVersion: groupVersion(group, version),
    resources,
  };
}

/** `GET /`: the paths the server serves. */
export function rootPaths(types: readonly ResourceType[]): Record<string, unknown> {
  const paths = new Set(["/api", "/api/v1", "/apis", "/healthz", "/livez", "/readyz", "/version"]);
  for (const t of types) {
    if (!t.group) continue;
    paths.add(`/apis/${t.group}`);
    for (const v of t.versions) paths.add(`/apis/${t.group}/${v}`);
  }
  return { paths: [...paths].sort() };
}
