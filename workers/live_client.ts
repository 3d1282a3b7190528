/**
 * Live reads and writes of one session (worker side): each a request to the API server through the
 * session's HTTP client and rate limiter.
 *
 * @module
 */

import type { Patch } from "../src/shared/client_types.ts";
import { KubernetesApiError } from "../src/shared/errors.ts";
import type { KindRef, KubeList, KubeObject, ObjectKey } from "../src/shared/kube_object.ts";
import type {
  WireDeleteOptions,
  WireListOptions,
  WireWriteOptions,
} from "../src/shared/protocol.ts";
import type { Transport } from "./http_transport.ts";
import { type ResourceMapping, resourcePath, type RestMapper } from "./rest_mapper.ts";

const PATCH_CONTENT_TYPES: Record<Patch["type"], string> = {
  merge: "application/merge-patch+json",
  strategic: "application/strategic-merge-patch+json",
  json: "application/json-patch+json",
  apply: "application/apply-patch+yaml",
};

function qualifiedResource(mapping: ResourceMapping): string {
  return mapping.group ? `${mapping.plural}.${mapping.group}` : mapping.plural;
}

export function notFound(mapping: ResourceMapping, name: string): KubernetesApiError {
  return new KubernetesApiError({
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message: `${qualifiedResource(mapping)} "${name}" not found`,
    reason: "NotFound",
    details: { name, group: mapping.group, kind: mapping.plural },
    code: 404,
  });
}

export function stripManagedFields(object: KubeObject): KubeObject {
  if (!object.metadata?.managedFields) return object;
  const { managedFields: _dropped, ...metadata } = object.metadata;
  return { ...object, metadata };
}

/** The object with its apiVersion and kind (list items and some answers come without). */
export function withKind(object: KubeObject, kind: KindRef): KubeObject {
  if (object.apiVersion && object.kind) return object;
  return { apiVersion: kind.apiVersion, kind: kind.kind, ...object };
}

/** Live reads and writes. */
export class LiveClient {
  readonly #api: () => { transport: Transport; mapper: RestMapper };

  /** @param api The session's HTTP client and REST mapper (replaced when it switches servers). */
  constructor(api: () => { transport: Transport; mapper: RestMapper }) {
    this.#api = api;
  }

  /** Reads one object. */
  async get(kind: KindRef, key: ObjectKey, signal: AbortSignal): Promise<KubeObject> {
    const mapping = await this.#api().mapper.mapping(kind, signal);
    const object = await this.#live<KubeObject>(
      "GET",
      resourcePath(mapping, key.namespace, key.name),
      kind,
      { signal },
    );
    return withKind(object, kind);
  }

  /** Lists objects (paged when asked). */
  async list(kind: KindRef, options: WireListOptions, signal: AbortSignal): Promise<KubeList> {
    const listKind = { apiVersion: kind.apiVersion, kind: `${kind.kind}List` };
    const mapping = await this.#api().mapper.mapping(kind, signal);
    const list = await this.#live<KubeList>(
      "GET",
      resourcePath(mapping, options.namespace),
      kind,
      {
        signal,
        query: {
          labelSelector: options.labelSelector || undefined,
          fieldSelector: options.fieldSelector || undefined,
          limit: options.limit,
          continue: options.continue,
        },
      },
    );
    return { ...listKind, ...list, items: list.items.map((o) => withKind(o, kind)) };
  }

  async #live<T>(
    method: string,
    path: string,
    kind: KindRef,
    options: {
      signal: AbortSignal;
      query?: Record<string, string | number | boolean | undefined>;
      body?: unknown;
      contentType?: string;
    },
  ): Promise<T> {
    try {
      return await this.#api().transport.json<T>(method, path, options);
    } catch (error) {
      // A 404 without an object name is "no such resource": the kind may be gone; rediscover next time.
      if (
        error instanceof KubernetesApiError && error.code === 404 && !error.status.details?.name
      ) {
        this.#api().mapper.invalidate(kind.apiVersion);
      }
      throw error;
    }
  }

  #writeQuery(options: WireWriteOptions): Record<string, string | undefined> {
    return {
      ...(options.dryRun ? { dryRun: "All" } : {}),
      ...(options.fieldManager ? { fieldManager: options.fieldManager } : {}),
    };
  }

  #kindOf(object: KubeObject, what: string): KindRef {
    if (typeof object?.apiVersion !== "string" || typeof object.kind !== "string") {
      throw new TypeError(`Cannot ${what} an object without apiVersion and kind`);
    }
    return { apiVersion: object.apiVersion, kind: object.kind };
  }

  #namespaceOf(
    mapping: ResourceMapping,
    namespace: string | undefined,
    what: string,
  ): string | undefined {
    if (mapping.namespaced && !namespace) {
      throw new TypeError(`Cannot ${what} a namespaced ${mapping.kind} without metadata.namespace`);
    }
    return mapping.namespaced ? namespace : undefined;
  }

  /** Creates an object. */
  async create(
    object: KubeObject,
    options: WireWriteOptions,
    signal: AbortSignal,
  ): Promise<KubeObject> {
    const kind = this.#kindOf(object, "create");
    const mapping = await this.#api().mapper.mapping(kind, signal);
    const namespace = this.#namespaceOf(mapping, object.metadata?.namespace, "create");
    const created = await this.#live<KubeObject>("POST", resourcePath(mapping, namespace), kind, {
      signal,
      body: object,
      query: this.#writeQuery(options),
    });
    return withKind(created, kind);
  }

  /** Replaces an object (or its status). */
  async update(
    object: KubeObject,
    options: WireWriteOptions,
    signal: AbortSignal,
  ): Promise<KubeObject> {
    const kind = this.#kindOf(object, "update");
    const name = object.metadata?.name;
    if (!name) throw new TypeError("Cannot update an object without metadata.name");
    const mapping = await this.#api().mapper.mapping(kind, signal);
    const namespace = this.#namespaceOf(mapping, object.metadata?.namespace, "update");
    const updated = await this.#live<KubeObject>(
      "PUT",
      resourcePath(mapping, namespace, name, options.subresource),
      kind,
      { signal, body: object, query: this.#writeQuery(options) },
    );
    return withKind(updated, kind);
  }

  /** Patches an object. */
  async patch(
    kind: KindRef,
    key: ObjectKey,
    patch: Patch,
    options: WireWriteOptions,
    signal: AbortSignal,
  ): Promise<KubeObject> {
    const contentType = PATCH_CONTENT_TYPES[patch?.type];
    if (!contentType) throw new TypeError(`Unknown patch type ${JSON.stringify(patch?.type)}`);
    const mapping = await this.#api().mapper.mapping(kind, signal);
    const namespace = this.#namespaceOf(mapping, key.namespace, "patch");
    const query: Record<string, string | undefined> = this.#writeQuery(options);
    if (patch.type === "apply") {
      query.fieldManager = patch.fieldManager;
      if (patch.force) query.force = "true";
    }
    const patched = await this.#live<KubeObject>(
      "PATCH",
      resourcePath(mapping, namespace, key.name, options.subresource),
      kind,
      { signal, body: patch.patch, contentType, query },
    );
    return withKind(patched, kind);
  }

  /** Deletes an object. */
  async delete(
    kind: KindRef,
    key: ObjectKey,
    options: WireDeleteOptions,
    signal: AbortSignal,
  ): Promise<{ resourceVersion: string | undefined }> {
    const mapping = await this.#api().mapper.mapping(kind, signal);
    const namespace = this.#namespaceOf(mapping, key.namespace, "delete");
    const body: Record<string, unknown> = { kind: "DeleteOptions", apiVersion: "v1" };
    if (options.propagationPolicy) body.propagationPolicy = options.propagationPolicy;
    if (options.preconditions) body.preconditions = options.preconditions;
    if (options.gracePeriodSeconds !== undefined) {
      body.gracePeriodSeconds = options.gracePeriodSeconds;
    }
    const answer = await this.#live<KubeObject | undefined>(
      "DELETE",
      resourcePath(mapping, namespace, key.name),
      kind,
      { signal, body, query: options.dryRun ? { dryRun: "All" } : {} },
    );
    // The deleted object (at the resourceVersion of its deletion), or a Status for some kinds.
    return {
      resourceVersion: answer?.kind === "Status" ? undefined : answer?.metadata?.resourceVersion,
    };
  }
}
