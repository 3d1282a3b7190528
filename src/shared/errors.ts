/**
 * The errors callers catch: {@linkcode ClusterNotConnectedError} (no connection to the workload
 * cluster: wait for the connect event instead of retrying), {@linkcode KubernetesApiError} (the API
 * server said no: NotFound, Conflict, ...) and {@linkcode ClusterCacheError} (everything else, with a
 * `code`). Bad arguments are `TypeError` or `RangeError`.
 *
 * Errors cross the worker boundary in their own wire shape ({@linkcode WireError}) so their class and
 * fields survive.
 *
 * @module
 */

import type { ObjectKey, Status } from "./kube_object.ts";

/** The message of {@linkcode ClusterNotConnectedError}, as in Cluster API. */
export const CLUSTER_NOT_CONNECTED_MESSAGE = "connection to the workload cluster is down";

/**
 * There is no connection to the workload cluster. Controllers should not retry on it: they should
 * watch a cluster source ({@linkcode ClusterCache.getClusterSource}) and act on the connect event.
 *
 * @example Telling "not connected" from other errors
 * ```ts
 * import assert from "node:assert/strict";
 * import { ClusterNotConnectedError } from "@fleetkit/clustercache";
 * import { FakeClient, FakeClusterCache } from "@fleetkit/clustercache/testing";
 *
 * const cache = new FakeClusterCache(new FakeClient(), { namespace: "default", name: "workload-1" });
 * try {
 *   cache.getClient({ namespace: "default", name: "workload-2" });
 *   assert.fail("workload-2 is not connected");
 * } catch (error) {
 *   // Not worth a retry: the cluster source's next "connect" event brings the cluster back.
 *   assert.ok(error instanceof ClusterNotConnectedError);
 *   assert.equal(error.message, "error getting client: connection to the workload cluster is down");
 * }
 * ```
 */
export class ClusterNotConnectedError extends Error {
  /** Always `"ClusterNotConnectedError"`. */
  override name = "ClusterNotConnectedError";
  /** What was being attempted, e.g. `"error getting client"`. */
  readonly operation: string;
  /** The cluster, when known. */
  readonly cluster: ObjectKey | undefined;

  /**
   * Creates the error.
   *
   * @param operation The message prefix naming the operation.
   * @param cluster The cluster.
   */
  constructor(operation: string, cluster?: ObjectKey) {
    super(`${operation}: ${CLUSTER_NOT_CONNECTED_MESSAGE}`);
    this.operation = operation;
    this.cluster = cluster;
  }
}

/**
 * The API server answered with an error `Status` (or an HTTP error without one).
 *
 * @example What the server said
 * ```ts
 * import assert from "node:assert/strict";
 * import { KubernetesApiError } from "@fleetkit/clustercache";
 * import { FakeClient } from "@fleetkit/clustercache/testing";
 *
 * const error = await new FakeClient()
 *   .get({ apiVersion: "v1", kind: "Pod" }, { namespace: "default", name: "web" })
 *   .catch((e) => e);
 * assert.ok(error instanceof KubernetesApiError);
 * assert.equal(error.code, 404);
 * assert.equal(error.reason, "NotFound");
 * assert.equal(error.message, 'pods "web" not found');
 * ```
 */
export class KubernetesApiError extends Error {
  /** Always `"KubernetesApiError"`. */
  override name = "KubernetesApiError";
  /** The Status body. */
  readonly status: Status;
  /** Seconds the server asked us to wait (`Retry-After`), if it did. */
  readonly retryAfterSeconds: number | undefined;

  /**
   * Creates the error.
   *
   * @param status The Status the server sent (or one built from the HTTP status).
   * @param retryAfterSeconds From the `Retry-After` header or `details.retryAfterSeconds`.
   */
  constructor(status: Status, retryAfterSeconds?: number) {
    super(status.message || status.reason || `the server responded with HTTP ${status.code}`);
    this.status = status;
    this.retryAfterSeconds = retryAfterSeconds ?? status.details?.retryAfterSeconds;
  }

  /** The HTTP status code. */
  get code(): number {
    return this.status.code;
  }

  /** The machine-readable reason (`NotFound`, `Conflict`, `Expired`, ...). */
  get reason(): string {
    return this.status.reason ?? "";
  }
}

/**
 * What went wrong, for a {@linkcode ClusterCacheError}.
 *
 * @example Deciding what to do from the code
 * ```ts
 * import type { ClusterCacheErrorCode } from "@fleetkit/clustercache";
 *
 * function retryable(code: ClusterCacheErrorCode): boolean {
 *   return code === "Unreachable" || code === "Timeout" || code === "CacheSyncTimeout" ||
 *     code === "WorkerFailed";
 * }
 * retryable("NoKindMatch"); // false: the cluster does not serve the kind
 * ```
 */
export type ClusterCacheErrorCode =
  /** The kubeconfig Secret is missing, lacks the `value` key, or its kubeconfig cannot be used. */
  | "InvalidKubeconfig"
  /** The API server did not answer the connection probe. */
  | "Unreachable"
  /**
   * The server presented a certificate that does not lead to the kubeconfig's certificate
   * authority (a publicly trusted one is not enough, as in client-go): nothing was sent to it.
   */
  | "UntrustedCertificate"
  /** A kind is not served by the cluster. */
  | "NoKindMatch"
  /** An informer did not sync within the sync timeout. */
  | "CacheSyncTimeout"
  /** The cluster's worker crashed or stopped answering. */
  | "WorkerFailed"
  /** A request to the API server timed out. */
  | "Timeout"
  /**
   * This process, not the cluster, was too slow to tell: a probe whose timer fired late because
   * the machine was starved of CPU. It counts as neither success nor failure.
   */
  | "Overloaded"
  /** A response was larger than allowed or not what the API server should send. */
  | "BadResponse"
  /** The field selector cannot be served from the cache (no index). */
  | "NotIndexed"
  /**
   * With sharding: this replica's ownership of the cluster lapsed (it could not renew its Lease in
   * time), so the worker refused to send a write; another replica may serve the cluster now. Worth
   * a retry: if this replica still owns it, the write goes through once it has renewed.
   */
  | "NotOwner"
  /** The ClusterCache or connection was closed. */
  | "Closed"
  /**
   * An option needs a Deno unstable feature this process does not have (the message names the flag
   * and the option to use instead).
   */
  | "UnstableFlagMissing"
  /** Anything else (the message says what). */
  | "Internal";

/**
 * A failure of the cache itself or of talking to a cluster: the `code` says which.
 *
 * @example A kind the cluster does not serve
 * ```ts
 * import assert from "node:assert/strict";
 * import { ClusterCacheError } from "@fleetkit/clustercache";
 * import { FakeClient } from "@fleetkit/clustercache/testing";
 *
 * const error = await new FakeClient()
 *   .list({ apiVersion: "example.com/v1", kind: "Widget" })
 *   .catch((e) => e);
 * assert.ok(error instanceof ClusterCacheError);
 * assert.equal(error.code, "NoKindMatch");
 * ```
 */
export class ClusterCacheError extends Error {
  /** Always `"ClusterCacheError"`. */
  override name = "ClusterCacheError";
  /** The kind of failure. */
  readonly code: ClusterCacheErrorCode;

  /**
   * Creates the error.
   *
   * @param code The kind of failure.
   * @param message What happened; never includes credentials.
   * @param options `cause`.
   */
  constructor(code: ClusterCacheErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}

/** Whether `error` is a {@linkcode KubernetesApiError} with HTTP status `code`. */
function hasCode(error: unknown, code: number): boolean {
  return error instanceof KubernetesApiError && error.code === code;
}

/**
 * Whether the API server said the object does not exist (404).
 *
 * @example Reading something that may not exist
 * ```ts
 * import assert from "node:assert/strict";
 * import { isNotFound } from "@fleetkit/clustercache";
 * import { FakeClient } from "@fleetkit/clustercache/testing";
 *
 * const client = new FakeClient();
 * const kind = { apiVersion: "v1", kind: "ConfigMap" };
 * const found = await client.get(kind, { namespace: "default", name: "missing" }).catch((error) => {
 *   if (isNotFound(error)) return undefined;
 *   throw error;
 * });
 * assert.equal(found, undefined);
 * ```
 */
export function isNotFound(error: unknown): boolean {
  return hasCode(error, 404);
}

/**
 * Whether a write lost a race (409 Conflict: stale resourceVersion).
 *
 * @example Writing from a stale copy
 * ```ts
 * import assert from "node:assert/strict";
 * import { isConflict } from "@fleetkit/clustercache";
 * import { FakeClient } from "@fleetkit/clustercache/testing";
 *
 * const kind = { apiVersion: "v1", kind: "ConfigMap" };
 * const client = new FakeClient({ objects: [{ ...kind, metadata: { namespace: "default", name: "a" } }] });
 * const copy = await client.get(kind, { namespace: "default", name: "a" });
 * await client.update({ ...copy, data: { first: "yes" } });
 * const error = await client.update({ ...copy, data: { second: "yes" } }).catch((e) => e);
 * assert.ok(isConflict(error)); // read again and retry
 * ```
 */
export function isConflict(error: unknown): boolean {
  return error instanceof KubernetesApiError && error.code === 409 && error.reason === "Conflict";
}

/**
 * Whether a create found the object already there (409 AlreadyExists).
 *
 * @example Creating twice
 * ```ts
 * import assert from "node:assert/strict";
 * import { isAlreadyExists, isConflict } from "@fleetkit/clustercache";
 * import { FakeClient } from "@fleetkit/clustercache/testing";
 *
 * const cm = { apiVersion: "v1", kind: "ConfigMap", metadata: { namespace: "default", name: "a" } };
 * const client = new FakeClient();
 * await client.create(cm);
 * const error = await client.create(cm).catch((e) => e);
 * assert.ok(isAlreadyExists(error));
 * assert.ok(!isConflict(error), "both are 409, but with different reasons");
 * ```
 */
export function isAlreadyExists(error: unknown): boolean {
  return error instanceof KubernetesApiError && error.code === 409 &&
    error.reason === "AlreadyExists";
}

/**
 * Whether credentials were refused (401).
 *
 * @example Credentials the server no longer accepts
 * ```ts
 * import assert from "node:assert/strict";
 * import { isUnauthorized, KubernetesApiError } from "@fleetkit/clustercache";
 *
 * const error = new KubernetesApiError({
 *   apiVersion: "v1",
 *   kind: "Status",
 *   metadata: {},
 *   status: "Failure",
 *   reason: "Unauthorized",
 *   code: 401,
 * });
 * assert.ok(isUnauthorized(error));
 * assert.ok(!isUnauthorized(new Error("something else")));
 * ```
 */
export function isUnauthorized(error: unknown): boolean {
  return hasCode(error, 401);
}

/**
 * Whether the request was not permitted (403).
 *
 * @example RBAC said no
 * ```ts
 * import assert from "node:assert/strict";
 * import { isForbidden, KubernetesApiError } from "@fleetkit/clustercache";
 *
 * const error = new KubernetesApiError({
 *   apiVersion: "v1",
 *   kind: "Status",
 *   metadata: {},
 *   status: "Failure",
 *   reason: "Forbidden",
 *   code: 403,
 * });
 * assert.ok(isForbidden(error));
 * assert.ok(!isForbidden(new Error("something else")));
 * ```
 */
export function isForbidden(error: unknown): boolean {
  return hasCode(error, 403);
}

/**
 * Whether a resourceVersion or continue token is too old (410 Gone / Expired).
 *
 * @example A continue token that expired
 * ```ts
 * import assert from "node:assert/strict";
 * import { isExpired, KubernetesApiError } from "@fleetkit/clustercache";
 *
 * const error = new KubernetesApiError({
 *   apiVersion: "v1",
 *   kind: "Status",
 *   metadata: {},
 *   status: "Failure",
 *   reason: "Expired",
 *   code: 410,
 * });
 * assert.ok(isExpired(error));
 * assert.ok(!isExpired(new Error("something else")));
 * ```
 */
export function isExpired(error: unknown): boolean {
  return hasCode(error, 410);
}

/**
 * Whether the server asked to slow down (429).
 *
 * @example The server asks to slow down
 * ```ts
 * import assert from "node:assert/strict";
 * import { isTooManyRequests, KubernetesApiError } from "@fleetkit/clustercache";
 *
 * const error = new KubernetesApiError({
 *   apiVersion: "v1",
 *   kind: "Status",
 *   metadata: {},
 *   status: "Failure",
 *   reason: "TooManyRequests",
 *   code: 429,
 *   details: { retryAfterSeconds: 2 },
 * });
 * assert.ok(isTooManyRequests(error));
 * assert.ok(!isTooManyRequests(new Error("something else")));
 * ```
 */
export function isTooManyRequests(error: unknown): boolean {
  return hasCode(error, 429);
}

/**
 * What went wrong, for a log line: `Name: message` for an `Error`, `String(value)` otherwise. Never
 * throws, whatever a user's callback threw or rejected with (an object without a prototype, one
 * whose `toString` or `message` getter throws).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { describeError } from "./errors.ts";
 * assert.equal(describeError(new TypeError("bad")), "TypeError: bad");
 * assert.equal(describeError(Object.create(null)), "[object Object]");
 * ```
 */
export function describeError(error: unknown): string {
  try {
    return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  } catch {
    try {
      return Object.prototype.toString.call(error);
    } catch {
      return "an unprintable value";
    }
  }
}

/** An error as it crosses between threads (structured clone keeps no classes). */
export type WireError =
  | { kind: "ClusterNotConnectedError"; operation: string; cluster?: ObjectKey }
  | { kind: "KubernetesApiError"; status: Status; retryAfterSeconds?: number }
  | { kind: "ClusterCacheError"; code: ClusterCacheErrorCode; message: string }
  | { kind: "DOMException"; name: "AbortError"; message: string }
  | { kind: "TypeError" | "RangeError" | "Error"; message: string };

/** Turns any thrown value into its wire shape. */
export function toWireError(error: unknown): WireError {
  if (error instanceof ClusterNotConnectedError) {
    return {
      kind: "ClusterNotConnectedError",
      operation: error.operation,
      ...(error.cluster ? { cluster: error.cluster } : {}),
    };
  }
  if (error instanceof KubernetesApiError) {
    return {
      kind: "KubernetesApiError",
      status: error.status,
      ...(error.retryAfterSeconds !== undefined
        ? { retryAfterSeconds: error.retryAfterSeconds }
        : {}),
    };
  }
  if (error instanceof ClusterCacheError) {
    return { kind: "ClusterCacheError", code: error.code, message: error.message };
  }
  // One timeout type reaches callers: a ClusterCacheError with code "Timeout".
  if (error instanceof DOMException && error.name === "TimeoutError") {
    return { kind: "ClusterCacheError", code: "Timeout", message: error.message };
  }
  if (error instanceof DOMException && error.name === "AbortError") {
    return { kind: "DOMException", name: "AbortError", message: error.message };
  }
  if (error instanceof TypeError) return { kind: "TypeError", message: error.message };
  if (error instanceof RangeError) return { kind: "RangeError", message: error.message };
  return { kind: "Error", message: error instanceof Error ? error.message : String(error) };
}

/** Rebuilds an error from its wire shape, with its class. */
export function fromWireError(wire: WireError): Error {
  switch (wire.kind) {
    case "ClusterNotConnectedError":
      return new ClusterNotConnectedError(wire.operation, wire.cluster);
    case "KubernetesApiError":
      return new KubernetesApiError(wire.status, wire.retryAfterSeconds);
    case "ClusterCacheError":
      return new ClusterCacheError(wire.code, wire.message);
    case "DOMException":
      return new DOMException(wire.message, wire.name);
    case "TypeError":
      return new TypeError(wire.message);
    case "RangeError":
      return new RangeError(wire.message);
    default:
      return new Error(wire.message);
  }
}
