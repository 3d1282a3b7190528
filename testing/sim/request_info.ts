/**
 * What a request asks for, read from its method, path and query alone, as kube-apiserver's
 * `RequestInfoFactory.NewRequestInfo` reads it (k8s.io/apiserver/pkg/endpoints/request): a resource
 * request names a verb, a group, version, namespace, resource, name and subresource; anything else
 * (discovery, `/version`, `/healthz`, `/openapi`) is a non-resource request. Pure: the simulator
 * decides what is served after, from this. Loaded by the simulator only.
 *
 * @module
 */

/** The verbs of resource requests, as authorization and audit name them. */
export type ResourceVerb =
  | "get"
  | "list"
  | "watch"
  | "create"
  | "update"
  | "patch"
  | "delete"
  | "deletecollection"
  | "proxy"
  | "";

/** A request's parts (kube-apiserver's `RequestInfo`). */
export interface RequestInfo {
  /** Whether it is for a resource (as opposed to discovery, `/version`, `/healthz`...). */
  isResourceRequest: boolean;
  /** The URL's path. */
  path: string;
  /** A resource verb; for a non-resource request the method in lower case. */
  verb: string;
  /** `api` or `apis` (empty for a non-resource request). */
  apiPrefix: string;
  /** The group (empty: the core group). */
  apiGroup: string;
  apiVersion: string;
  /** The namespace (of the namespace itself, for `namespaces/<name>`), or empty. */
  namespace: string;
  /** The resource (plural), e.g. `pods`. */
  resource: string;
  /** `status`, `scale`... or empty. */
  subresource: string;
  /** The object's name; for list and watch, `metadata.name` when the field selector requires it. */
  name: string;
  /** The path from the resource on: `resource/name/subresource/...`. */
  parts: string[];
}

const API_PREFIXES = new Set(["api", "apis"]);
const GROUPLESS_PREFIXES = new Set(["api"]);
const SPECIAL_VERBS = new Set(["proxy", "watch"]);
const SPECIAL_VERBS_NO_SUBRESOURCES = new Set(["proxy"]);
/** Subresources of a namespace: `namespaces/<name>/status` is the namespace's, not a resource. */
const NAMESPACE_SUBRESOURCES = new Set(["status", "finalize"]);
/** A name kube-apiserver accepts as one path segment (`path.IsValidPathSegmentName`). */
const VALID_SEGMENT = (name: string) =>
  name !== "." && name !== ".." && !name.includes("/") && !name.includes("%");

const METHOD_VERBS: Record<string, ResourceVerb> = {
  POST: "create",
  GET: "get",
  HEAD: "get",
  PUT: "update",
  PATCH: "patch",
  DELETE: "delete",
};

/**
 * The `watch` parameter as kube-apiserver converts a boolean query parameter
 * (`runtime.Convert_Slice_string_To_bool`): false only for "0" and "false" in any case.
 */
function watchRequested(value: string | null): boolean {
  if (value === null) return false;
  return value !== "0" && value.toLowerCase() !== "false";
}

/** The `metadata.name` a field selector requires exactly (`metadata.name=x` among its terms). */
function requiredName(fieldSelector: string | null): string | undefined {
  if (!fieldSelector) return undefined;
  for (const term of fieldSelector.split(",")) {
    const match = /^\s*metadata\.name\s*==?\s*(.*?)\s*$/.exec(term);
    if (match) return match[1];
  }
  return undefined;
}

/**
 * Reads a request as kube-apiserver does.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { requestInfo } from "./request_info.ts";
 *
 * const info = requestInfo("GET", new URL("https://k/api/v1/namespaces/ns/pods?watch=true"));
 * assert.equal(info.verb, "watch");
 * assert.equal(info.namespace, "ns");
 * assert.equal(info.resource, "pods");
 * ```
 *
 * @throws {TypeError} For a special verb with nothing after it (`/api/v1/watch`): kube-apiserver
 *   cannot tell the kind either.
 */
export function requestInfo(method: string, url: URL): RequestInfo {
  const info: RequestInfo = {
    isResourceRequest: false,
    path: url.pathname,
    verb: method.toLowerCase(),
    apiPrefix: "",
    apiGroup: "",
    apiVersion: "",
    namespace: "",
    resource: "",
    subresource: "",
    name: "",
    parts: [],
  };
  let parts = url.pathname.replace(/^\/+|\/+$/g, "").split("/").filter((p) => p !== "")
    .map((p) => decodeURIComponent(p));
  if (parts.length < 3 || !API_PREFIXES.has(parts[0]!)) return info;
  const apiPrefix = parts[0]!;
  parts = parts.slice(1);
  let apiGroup = "";
  if (!GROUPLESS_PREFIXES.has(apiPrefix)) {
    if (parts.length < 3) return info;
    apiGroup = parts[0]!;
    parts = parts.slice(1);
  }
  Object.assign(info, { isResourceRequest: true, apiPrefix, apiGroup, apiVersion: parts[0]! });
  parts = parts.slice(1);
  if (SPECIAL_VERBS.has(parts[0]!)) {
    if (parts.length < 2) {
      throw new TypeError(`unable to determine kind and namespace from url, ${url.pathname}`);
    }
    info.verb = parts[0]!;
    parts = parts.slice(1);
  } else {
    info.verb = METHOD_VERBS[method.toUpperCase()] ?? "";
  }
  if (parts[0] === "namespaces" && parts.length > 1) {
    info.namespace = parts[1]!;
    if (parts.length > 2 && !NAMESPACE_SUBRESOURCES.has(parts[2]!)) parts = parts.slice(2);
  }
  info.parts = parts;
  if (parts.length >= 3 && !SPECIAL_VERBS_NO_SUBRESOURCES.has(info.verb)) {
    info.subresource = parts[2]!;
  }
  if (parts.length >= 2) info.name = parts[1]!;
  if (parts.length >= 1) info.resource = parts[0]!;
  if (info.name === "" && info.verb === "get") {
    // A collection: list or watch, and the name a field selector requires (for authorization).
    const query = url.searchParams;
    info.verb = watchRequested(query.get("watch")) ? "watch" : "list";
    const name = requiredName(query.get("fieldSelector"));
    if (name !== undefined && VALID_SEGMENT(name)) info.name = name;
  }
  if (info.name === "" && info.verb === "delete") info.verb = "deletecollection";
  return info;
}
