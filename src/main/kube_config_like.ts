/**
 * The part of `@kubernetes/client-node`'s `KubeConfig` this package uses and hands out, declared
 * structurally so the package's public types do not pull in client-node's. A client-node
 * `KubeConfig` is a `KubeConfigLike`; what `getKubeConfig` returns is a real client-node `KubeConfig`.
 *
 * @module
 */

/**
 * A kubeconfig cluster entry, as client-node parses it.
 *
 * @example The current context's cluster
 * ```ts
 * import assert from "node:assert/strict";
 * import { KubeConfig } from "@kubernetes/client-node";
 * import type { KubeConfigCluster, KubeConfigLike } from "@fleetkit/clustercache";
 *
 * const kubeconfig = new KubeConfig();
 * kubeconfig.loadFromOptions({
 *   clusters: [{ name: "edge-1", server: "https://10.0.0.1:6443", skipTLSVerify: false }],
 *   users: [{ name: "edge-1-admin", token: "example-token" }],
 *   contexts: [{ name: "edge-1", cluster: "edge-1", user: "edge-1-admin", namespace: "apps" }],
 *   currentContext: "edge-1",
 * });
 * const like: KubeConfigLike = kubeconfig; // a client-node KubeConfig is one
 * const context = like.getContextObject(like.getCurrentContext())!;
 * const cluster: KubeConfigCluster = like.getCluster(context.cluster)!;
 * assert.equal(cluster.server, "https://10.0.0.1:6443");
 * ```
 */
export interface KubeConfigCluster {
  /** Entry name. */
  readonly name: string;
  /** API server URL. */
  readonly server: string;
  /** Base64 PEM CA bundle. */
  readonly caData?: string | undefined;
  /** Path of a PEM CA bundle. */
  caFile?: string | undefined;
  /** `insecure-skip-tls-verify` (refused by this package). */
  readonly skipTLSVerify: boolean;
  /** `tls-server-name` (refused by this package). */
  readonly tlsServerName?: string | undefined;
  /** `proxy-url`. */
  readonly proxyUrl?: string | undefined;
}

/**
 * A kubeconfig user entry, as client-node parses it.
 *
 * @example The current context's user
 * ```ts
 * import assert from "node:assert/strict";
 * import { KubeConfig } from "@kubernetes/client-node";
 * import type { KubeConfigUser, KubeConfigLike } from "@fleetkit/clustercache";
 *
 * const kubeconfig = new KubeConfig();
 * kubeconfig.loadFromOptions({
 *   clusters: [{ name: "edge-1", server: "https://10.0.0.1:6443", skipTLSVerify: false }],
 *   users: [{ name: "edge-1-admin", token: "example-token" }],
 *   contexts: [{ name: "edge-1", cluster: "edge-1", user: "edge-1-admin", namespace: "apps" }],
 *   currentContext: "edge-1",
 * });
 * const like: KubeConfigLike = kubeconfig; // a client-node KubeConfig is one
 * const context = like.getContextObject(like.getCurrentContext())!;
 * const user: KubeConfigUser = like.getUser(context.user)!;
 * assert.equal(user.exec, undefined, "exec plugins are refused");
 * ```
 */
export interface KubeConfigUser {
  /** Entry name. */
  readonly name: string;
  /** Base64 PEM client certificate. */
  readonly certData?: string | undefined;
  /** Path of a PEM client certificate. */
  certFile?: string | undefined;
  /** Base64 PEM client key. */
  readonly keyData?: string | undefined;
  /** Path of a PEM client key. */
  keyFile?: string | undefined;
  /** Bearer token. */
  readonly token?: string | undefined;
  /** An exec credential plugin (refused by this package). */
  readonly exec?: unknown;
  /** An auth provider (refused, except client-node's in-cluster `tokenFile`). */
  readonly authProvider?: unknown;
  /** Basic auth user (refused). */
  readonly username?: string | undefined;
  /** Basic auth password (refused). */
  readonly password?: string | undefined;
}

/**
 * A kubeconfig context entry.
 *
 * @example The current context
 * ```ts
 * import assert from "node:assert/strict";
 * import { KubeConfig } from "@kubernetes/client-node";
 * import type { KubeConfigContext, KubeConfigLike } from "@fleetkit/clustercache";
 *
 * const kubeconfig = new KubeConfig();
 * kubeconfig.loadFromOptions({
 *   clusters: [{ name: "edge-1", server: "https://10.0.0.1:6443", skipTLSVerify: false }],
 *   users: [{ name: "edge-1-admin", token: "example-token" }],
 *   contexts: [{ name: "edge-1", cluster: "edge-1", user: "edge-1-admin", namespace: "apps" }],
 *   currentContext: "edge-1",
 * });
 * const like: KubeConfigLike = kubeconfig; // a client-node KubeConfig is one
 * const context: KubeConfigContext = like.getContextObject(like.getCurrentContext())!;
 * assert.equal(context.namespace, "apps");
 * ```
 */
export interface KubeConfigContext {
  /** Entry name. */
  readonly name: string;
  /** Name of its cluster entry. */
  readonly cluster: string;
  /** Name of its user entry. */
  readonly user: string;
  /** Default namespace. */
  readonly namespace?: string | undefined;
}

/**
 * What this package needs of a client-node `KubeConfig`.
 *
 * @example Passing a client-node KubeConfig, and using the one `getKubeConfig` returns
 * ```ts
 * import assert from "node:assert/strict";
 * import { CoreV1Api, KubeConfig } from "@kubernetes/client-node";
 * import { ClusterCache, type KubeConfigLike } from "@fleetkit/clustercache";
 * import { SimulatedFleet } from "@fleetkit/clustercache/testing";
 *
 * await using fleet = await SimulatedFleet.start({ clusters: 1 });
 * const management: KubeConfigLike = new KubeConfig();
 * (management as KubeConfig).loadFromString(fleet.managementKubeconfig());
 * await using cache = await ClusterCache.setup({ management, client: { userAgent: "docs" } });
 * for await (const cluster of cache.getClusterSource("docs", (c) => [{
 *   namespace: c.metadata!.namespace!,
 *   name: c.metadata!.name!,
 * }])) {
 *   // The workload cluster as a client-node KubeConfig, for what the cached clients do not cover:
 *   // `core.listNamespace()`, `core.connectGetNamespacedPodExec(...)`, ...
 *   const workload = cache.getKubeConfig(cluster);
 *   const core = workload.makeApiClient(CoreV1Api);
 *   const context = workload.getContextObject(workload.getCurrentContext())!;
 *   assert.equal(workload.getCluster(context.cluster)?.server, fleet.cluster("workload-1").url);
 *   break;
 * }
 * ```
 */
export interface KubeConfigLike {
  /** Name of the current context. */
  currentContext: string;
  /** A context by name. */
  getContextObject(name: string): KubeConfigContext | null;
  /** A cluster entry by name. */
  getCluster(name: string): KubeConfigCluster | null;
  /** A user entry by name. */
  getUser(name: string): KubeConfigUser | null;
  /** Name of the current context. */
  getCurrentContext(): string;
  /** Builds a client-node API client, e.g. `makeApiClient(CoreV1Api)`. */
  makeApiClient<T extends object>(apiClientType: new (configuration: never) => T): T;
}
