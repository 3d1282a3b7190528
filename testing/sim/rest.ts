/**
 * The REST semantics of one resource on a simulated API server: list (resourceVersion rules, paging
 * with consistent continuations, label and field selectors), get, create, update, patch (JSON, merge,
 * strategic merge, apply) and delete. HTTP framing lives in `api_server.ts`.
 *
 * @module
 */

import { parse as parseYaml } from "yaml";
import {
  type FieldSelector,
  matchesFields,
  parseFieldSelector,
  readFieldPath,
} from "../../src/shared/field_selector.ts";
import {
  applyJsonPatch,
  applyMergePatch,
  applyStrategicMergePatch,
  type JsonValue,
  PatchError,
} from "./json_patch.ts";
import type { KubeObject } from "../../src/shared/kube_object.ts";
import {
  type LabelSelector,
  matchesLabels,
  parseLabelSelector,
  SelectorParseError,
} from "../../src/shared/label_selector.ts";
import { listSemantics } from "./list_semantics.ts";
import { applyConfig } from "./field_manager.ts";
import type { ObjectStore, StoreWriteOptions } from "./object_store.ts";
import { groupVersion, resourceId, type ResourceType } from "./resource_types.ts";
import { errors } from "./status.ts";
import { sleep } from "../../src/shared/backoff.ts";

/** A parsed label and field selector pair, applied to list and watch results. */
export interface Selectors {
  readonly label: LabelSelector;
  readonly field: FieldSelector;
  readonly empty: boolean;
}

/**
 * Parses `labelSelector` and `fieldSelector`, allowing only the fields the kind supports.
 *
 * @throws {StatusError} 400 BadRequest for a bad selector or an unsupported field.
 */
export function parseSelectors(
  type: ResourceType,
  labelSelector: string | null,
  fieldSelector: string | null,
): Selectors {
  try {
    const label = parseLabelSelector(labelSelector ?? "");
    const field = parseFieldSelector(fieldSelector ?? "");
    const allowed = ["metadata.name", "metadata.namespace", ...type.extraFieldSelectors];
    for (const r of field.requirements) {
      if (!allowed.includes(r.field)) {
        throw errors.badRequest(
          `"${r.field}" is not a known field selector: only ${
            allowed.map((f) => `"${f}"`).join(", ")
          }`,
        );
      }
    }
    return {
      label,
      field,
      empty: label.requirements.length === 0 && field.requirements.length === 0,
    };
  } catch (error) {
    if (error instanceof SelectorParseError) throw errors.badRequest(error.message);
    throw error;
  }
}

/** Whether `object` passes the namespace restriction and selectors. */
export function matches(
  object: KubeObject,
  namespace: string | undefined,
  selectors: Selectors,
): boolean {
  if (namespace && object.metadata?.namespace !== namespace) return false;
  if (selectors.empty) return true;
  return matchesLabels(selectors.label, object.metadata?.labels) &&
    matchesFields(selectors.field, (field) => readFieldPath(object, field));
}

/** Converts a stored object to the version a request asked for. */
export function toServedVersion(
  type: ResourceType,
  object: KubeObject,
  version: string,
): KubeObject {
  if (type.convert) return type.convert(object, version);
  return object;
}

function sortKey(object: KubeObject): string {
  return `${object.metadata?.namespace ?? ""}\u0000${object.metadata?.name ?? ""}`;
}

/** Parameters of a list request. */
export interface ListRequest {
  namespace?: string | undefined;
  selectors: Selectors;
  labelSelectorText: string;
  fieldSelectorText: string;
  limit?: number | undefined;
  continue?: string | undefined;
  resourceVersion?: string | undefined;
  resourceVersionMatch?: string | undefined;
}

/** A list response before framing. */
export interface ListResult {
  items: KubeObject[];
  resourceVersion: string;
  continue?: string;
  remainingItemCount?: number;
}

interface ContinueToken {
  rv: number;
  start: string;
  created: number;
}

function encodeToken(token: ContinueToken): string {
  return btoa(JSON.stringify(token)).replace(/=+$/, "");
}

function decodeToken(text: string): ContinueToken {
  try {
    const token = JSON.parse(atob(text)) as ContinueToken;
    if (typeof token.rv === "number" && typeof token.start === "string") return token;
  } catch {
    // fall through
  }
  throw errors.badRequest(`continue key is not valid: ${text.slice(0, 40)}`);
}

/** Lists with paging; keeps sorted snapshots of large lists so continuations stay cheap. */
export class Lister {
  readonly #snapshots = new Map<string, KubeObject[]>();
  readonly #store: ObjectStore;
  readonly #waitForVersionMs: number;
  readonly #continueTtlMs: number;

  /**
   * @param store The cluster's store.
   * @param waitForVersionMs How long a request for a future resourceVersion waits before 504.
   * @param continueTtlMs How long a continue token stays valid (kube-apiserver: about 5 minutes).
   */
  constructor(store: ObjectStore, waitForVersionMs: number, continueTtlMs: number) {
    this.#store = store;
    this.#waitForVersionMs = waitForVersionMs;
    this.#continueTtlMs = continueTtlMs;
  }

  /** Waits until the store reaches `version`, or throws 504 "Too large resource version". */
  async waitForVersion(version: string, signal: AbortSignal): Promise<void> {
    const wanted = Number(version);
    if (!Number.isFinite(wanted)) {
      throw errors.badRequest(`invalid resource version "${version}"`);
    }
    if (this.#store.resourceVersion >= wanted) return;
    const deadline = Date.now() + this.#waitForVersionMs;
    while (Date.now() < deadline && !signal.aborted) {
      await sleep(50, signal);
      if (this.#store.resourceVersion >= wanted) return;
    }
    throw errors.tooLargeResourceVersion(version, this.#store.resourceVersion);
  }

  /**
   * Serves a list request.
   *
   * @throws {StatusError} 400 for invalid parameter combinations, 410 for versions or continuations
   *   history no longer covers, 504 for versions from the future.
   */
  async list(type: ResourceType, request: ListRequest, signal: AbortSignal): Promise<ListResult> {
    const semantics = listSemantics({
      resourceVersion: request.resourceVersion,
      resourceVersionMatch: request.resourceVersionMatch,
      limit: request.limit,
      continue: request.continue,
    });
    if ("invalid" in semantics) {
      if (!semantics.field) throw errors.badRequest(semantics.invalid);
      throw errors.invalid("ListOptions.meta.k8s.io", "", [
        { field: semantics.field, message: semantics.invalid },
      ]);
    }
    let rv = this.#store.resourceVersion;
    let start = "";
    let source: KubeObject[] | undefined;
    switch (semantics.kind) {
      case "MostRecent":
      case "Any":
        break;
      case "NotOlderThan":
        await this.waitForVersion(semantics.resourceVersion, signal);
        rv = this.#store.resourceVersion;
        break;
      case "Exact": {
        await this.waitForVersion(semantics.resourceVersion, signal);
        rv = Number(semantics.resourceVersion);
        source = this.#store.listAt(type, rv);
        if (!source) {
          throw errors.expired(
            `too old resource version: ${semantics.resourceVersion} (${this.#store.resourceVersion})`,
          );
        }
        break;
      }
      case "Continuation": {
        const token = decodeToken(semantics.token);
        if (Date.now() - token.created > this.#continueTtlMs) {
          throw errors.expired(
            "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
          );
        }
        rv = token.rv;
        start = token.start;
        break;
      }
    }
    // A version compaction has passed is gone, whatever this server still remembers of it.
    if (rv !== this.#store.resourceVersion && rv < this.#store.oldestReachableVersionOf(type)) {
      throw errors.expired(
        semantics.kind === "Continuation"
          ? "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter."
          : `too old resource version: ${rv} (${this.#store.resourceVersion})`,
      );
    }
    const snapshotKey = [
      resourceId(type),
      rv,
      request.namespace ?? "",
      request.labelSelectorText,
      request.fieldSelectorText,
    ].join("|");
    let sorted = this.#snapshots.get(snapshotKey);
    if (!sorted) {
      source ??= rv === this.#store.resourceVersion
        ? this.#store.list(type, request.namespace)
        : this.#store.listAt(type, rv);
      if (!source) {
        throw errors.expired(
          "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
        );
      }
      sorted = source.filter((o) => matches(o, request.namespace, request.selectors))
        .map((o) => ({ o, k: sortKey(o) }))
        .sort((a, b) => (a.k < b.k ? -1 : a.k > b.k ? 1 : 0))
        .map(({ o }) => o);
    }
    let from = 0;
    if (start) {
      let lo = 0;
      let hi = sorted.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (sortKey(sorted[mid]!) <= start) lo = mid + 1;
        else hi = mid;
      }
      from = lo;
    }
    const limit = request.limit && request.limit > 0 ? request.limit : Infinity;
    const items = sorted.slice(from, from + limit);
    const result: ListResult = { items, resourceVersion: String(rv) };
    if (from + items.length < sorted.length) {
      result.continue = encodeToken({
        rv,
        start: sortKey(items[items.length - 1]!),
        created: Date.now(),
      });
      if (request.selectors.empty) result.remainingItemCount = sorted.length - from - items.length;
      this.#remember(snapshotKey, sorted);
    }
    return result;
  }

  #remember(key: string, sorted: KubeObject[]): void {
    if (this.#snapshots.has(key)) return;
    this.#snapshots.set(key, sorted);
    while (this.#snapshots.size > 4) this.#snapshots.delete(this.#snapshots.keys().next().value!);
  }

  /** Drops cached snapshots (after a restart reuses resourceVersions). */
  clear(): void {
    this.#snapshots.clear();
  }
}

/** Parses a JSON request body into an object. */
export function parseBody(text: string): KubeObject {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw errors.badRequest(
      `the body of the request could not be decoded: ${(error as Error).message}`,
    );
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw errors.badRequest("the body of the request must be a JSON object");
  }
  return value as KubeObject;
}

/**
 * Checks a written object against the request path and converts it to storage form.
 *
 * @throws {StatusError} 400 when apiVersion, kind, namespace or name disagree with the URL.
 */
export function admit(
  type: ResourceType,
  version: string,
  body: KubeObject,
  namespace: string,
  name: string | undefined,
): KubeObject {
  const expected = groupVersion(type.group, version);
  if (body.apiVersion !== undefined && body.apiVersion !== expected) {
    throw errors.badRequest(
      `the API version in the data (${body.apiVersion}) does not match the expected API version (${expected})`,
    );
  }
  if (body.kind !== undefined && body.kind !== type.kind) {
    throw errors.badRequest(
      `the kind in the data (${body.kind}) does not match the expected kind (${type.kind})`,
    );
  }
  const object: KubeObject = {
    ...body,
    apiVersion: expected,
    kind: type.kind,
    metadata: { ...(body.metadata ?? {}) },
  };
  const meta = object.metadata!;
  // kube-apiserver's defaulting of the fields clients commonly leave out.
  if (type.group === "" && type.kind === "Secret" && !object.type) object.type = "Opaque";
  if (type.group === "" && type.kind === "Service") {
    const spec = (object.spec ??= {}) as {
      type?: string;
      clusterIP?: string;
      clusterIPs?: string[];
    };
    spec.type ??= "ClusterIP";
    // A new Service gets an address from the service range (10.96.0.0/16 here).
    if (name === undefined && spec.type !== "ExternalName" && !spec.clusterIP) {
      const [a, b] = crypto.getRandomValues(new Uint8Array(2));
      spec.clusterIP = `10.96.${a}.${Math.max(2, b!)}`;
      spec.clusterIPs = [spec.clusterIP];
    }
  }
  if (type.namespaced) {
    if (meta.namespace && meta.namespace !== namespace) {
      throw errors.badRequest(
        "the namespace of the provided object does not match the namespace sent on the request",
      );
    }
    meta.namespace = namespace;
  }
  if (name !== undefined) {
    if (meta.name && meta.name !== name) {
      throw errors.badRequest(
        `the name of the object (${meta.name}) does not match the name on the URL (${name})`,
      );
    }
    meta.name = name;
  }
  return toServedVersion(type, object, type.storageVersion);
}

/** The patch types the simulator understands, by Content-Type. */
export type PatchType = "json" | "merge" | "strategic" | "apply";

/** Maps a Content-Type to a patch type, or throws 415. */
export function patchTypeOf(contentType: string): PatchType {
  const media = contentType.split(";")[0]!.trim();
  switch (media) {
    case "application/json-patch+json":
      return "json";
    case "application/merge-patch+json":
      return "merge";
    case "application/strategic-merge-patch+json":
      return "strategic";
    case "application/apply-patch+yaml":
    case "application/apply-patch+json":
      return "apply";
    default:
      throw errors.unsupportedMediaType(media);
  }
}

/**
 * Applies a PATCH request: JSON Patch, merge patch, strategic merge patch (see
 * `applyStrategicMergePatch` for what is supported) or server-side apply (creates when missing;
 * field ownership, conflicts and removal of fields no longer applied as in `field_manager.ts`).
 *
 * @throws {StatusError} 404, 409, 415, 422 or 400 as kube-apiserver would.
 */
export function patch(
  store: ObjectStore,
  type: ResourceType,
  version: string,
  namespace: string,
  name: string,
  patchType: PatchType,
  bodyText: string,
  fieldManager: string | null,
  options: StoreWriteOptions,
  force = false,
): KubeObject {
  if (patchType === "strategic" && !type.strategicMergePatch) {
    throw errors.unsupportedMediaType("application/strategic-merge-patch+json", false);
  }
  const stored = store.get(type, namespace, name);
  let patchBody: unknown;
  try {
    patchBody = patchType === "apply" ? parseYaml(bodyText) : JSON.parse(bodyText);
  } catch (error) {
    throw errors.badRequest(
      `the body of the request could not be decoded: ${(error as Error).message}`,
    );
  }
  if (patchType === "apply") {
    if (!fieldManager) {
      throw errors.invalid("PatchOptions", "", [{
        field: "fieldManager",
        message: "Required value: is required for apply patch",
      }]);
    }
    if (patchBody === null || typeof patchBody !== "object" || Array.isArray(patchBody)) {
      throw errors.badRequest("an apply patch must be an object");
    }
    const config = admit(type, version, patchBody as KubeObject, namespace, name);
    if (!stored) {
      if (options.subresource === "status") throw errors.notFound(type.group, type.plural, name);
      return store.create(type, config, {
        ...options,
        managedFields: applyConfig({}, config, fieldManager, force, type, options.subresource)
          .managedFields,
      });
    }
    const current = toServedVersion(type, stored, version);
    const { object, managedFields } = applyConfig(
      current,
      config,
      fieldManager,
      force,
      type,
      options.subresource,
    );
    const { resourceVersion: _ignored, ...meta } = object.metadata ?? {};
    return store.update(
      type,
      admit(type, version, { ...object, metadata: meta }, namespace, name),
      { ...options, managedFields },
    );
  }
  if (!stored) throw errors.notFound(type.group, type.plural, name);
  const current = toServedVersion(type, stored, version) as JsonValue;
  let patched: JsonValue;
  try {
    switch (patchType) {
      case "json":
        patched = applyJsonPatch(current, patchBody);
        break;
      case "merge":
        patched = applyMergePatch(current, patchBody as JsonValue);
        break;
      case "strategic":
        patched = applyStrategicMergePatch(current, patchBody as JsonValue);
        break;
    }
  } catch (error) {
    if (error instanceof PatchError) {
      throw errors.invalid(type.kind, name, [{ field: "patch", message: error.message }]);
    }
    throw error;
  }
  if (patched === null || typeof patched !== "object" || Array.isArray(patched)) {
    throw errors.badRequest("the patch produced something that is not an object");
  }
  // A resourceVersion the patch itself sets acts as a precondition; otherwise it is the stored one.
  return store.update(type, admit(type, version, patched as KubeObject, namespace, name), options);
}
