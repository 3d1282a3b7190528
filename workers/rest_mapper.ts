/**
 * Maps kinds to resources by discovery (`/api/v1`, `/apis/<group>/<version>`), caching each group
 * version until told it may be stale (a 404 from a kind's URL: the kind may have been removed).
 *
 * @module
 */

import { ClusterCacheError, isNotFound } from "../src/shared/errors.ts";
import { type KindRef, splitApiVersion } from "../src/shared/kube_object.ts";
import type { Transport } from "./http_transport.ts";
import { untilAborted } from "./until_aborted.ts";

/** Where a kind lives. */
export interface ResourceMapping {
  group: string;
  version: string;
  kind: string;
  /** The URL segment, e.g. `deployments`. */
  plural: string;
  namespaced: boolean;
}

interface ApiResourceList {
  resources?: { name: string; kind: string; namespaced: boolean }[];
}

/**
 * Discovered lists by content, shared by every session of this worker: a pool's clusters mostly
 * serve the same built-in kinds, and each kept its own copy (verbs, short names and hashes
 * included) before. Only what mapping needs is kept. Bounded: the table starts over past
 * {@linkcode MAX_SHARED_LISTS} distinct lists.
 */
const shared = new Map<string, ApiResourceList>();
const MAX_SHARED_LISTS = 1_000;

/** The list with only what mapping reads, the same object for the same content. */
export function internResourceList(list: ApiResourceList | null): ApiResourceList {
  const resources = (list?.resources ?? []).map(({ name, kind, namespaced }) => ({
    name,
    kind,
    namespaced: namespaced === true,
  }));
  const key = JSON.stringify(resources);
  const known = shared.get(key);
  if (known) return known;
  if (shared.size >= MAX_SHARED_LISTS) shared.clear();
  const made = { resources };
  shared.set(key, made);
  return made;
}

/** Discovers and caches kind → resource mappings. */
export class RestMapper {
  readonly #transport: Transport;
  readonly #lists = new Map<string, Promise<ApiResourceList>>();

  /** @param transport The cluster's transport. */
  constructor(transport: Transport) {
    this.#transport = transport;
  }

  /**
   * Finds the resource of a kind.
   *
   * @throws {ClusterCacheError} `NoKindMatch` when the cluster does not serve it.
   */
  async mapping(kind: KindRef, signal?: AbortSignal): Promise<ResourceMapping> {
    if (
      !kind || typeof kind.apiVersion !== "string" || typeof kind.kind !== "string" || !kind.kind
    ) {
      throw new TypeError(
        `Invalid kind: expected { apiVersion, kind }, got ${JSON.stringify(kind)}`,
      );
    }
    const { group, version } = splitApiVersion(kind.apiVersion);
    const path = group ? `/apis/${group}/${version}` : `/api/${version}`;
    let pending = this.#lists.get(path);
    if (!pending) {
      // Shared by every caller, so no caller's signal cancels it (the transport's timeout bounds
      // it); each caller stops waiting on its own signal.
      pending = this.#transport.json<ApiResourceList>("GET", path).then(internResourceList);
      this.#lists.set(path, pending);
      pending.catch(() => this.#lists.delete(path));
    }
    let list: ApiResourceList;
    try {
      list = await untilAborted(pending, signal);
    } catch (error) {
      if (isNotFound(error)) {
        throw new ClusterCacheError(
          "NoKindMatch",
          `no matches for kind "${kind.kind}" in version "${kind.apiVersion}"`,
        );
      }
      throw error;
    }
    const resource = list.resources?.find((r) => r.kind === kind.kind && !r.name.includes("/"));
    if (!resource) {
      this.#lists.delete(path);
      throw new ClusterCacheError(
        "NoKindMatch",
        `no matches for kind "${kind.kind}" in version "${kind.apiVersion}"`,
      );
    }
    return {
      group,
      version,
      kind: kind.kind,
      plural: resource.name,
      namespaced: resource.namespaced,
    };
  }

  /** Forgets what was discovered for an API version (after a 404 suggests the kind is gone). */
  invalidate(apiVersion: string): void {
    const { group, version } = splitApiVersion(apiVersion);
    this.#lists.delete(group ? `/apis/${group}/${version}` : `/api/${version}`);
  }
}

/**
 * Builds a resource URL path.
 *
 * @param mapping The kind's resource.
 * @param namespace The namespace (ignored for cluster-scoped kinds; `""` lists all namespaces).
 * @param name The object name, if addressing one object.
 * @param subresource E.g. `status`.
 */
export function resourcePath(
  mapping: ResourceMapping,
  namespace: string | undefined,
  name?: string,
  subresource?: string,
): string {
  let path = mapping.group
    ? `/apis/${mapping.group}/${mapping.version}`
    : `/api/${mapping.version}`;
  if (mapping.namespaced && namespace) path += `/namespaces/${encodeURIComponent(namespace)}`;
  path += `/${mapping.plural}`;
  if (name !== undefined) path += `/${encodeURIComponent(name)}`;
  if (subresource) path += `/${subresource}`;
  return path;
}
