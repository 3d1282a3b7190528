/**
 * The part of `@kubernetes/client-node`'s `KubeConfig` this package uses and hands out, declared
 * structurally so the package's public types do not pull in client-node's. A client-node
 * `KubeConfig` is a `KubeConfigLike`; what `getKubeConfig` returns is a real client-node `KubeConfig`.
 *
 * @module
 */

/** A kubeconfig cluster entry, as client-node parses it. */
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

/** A kubeconfig user entry, as client-node parses it. */
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

/** A kubeconfig context entry. */
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
 * ```ts ignore
 * import { CoreV1Api, KubeConfig } from "@kubernetes/client-node";
 * const management = new KubeConfig();
 * management.loadFromDefault();
 * const cache = await ClusterCache.setup({ management, client: { userAgent: "op" } });
 * const api = cache.getKubeConfig({ namespace: "default", name: "w1" }).makeApiClient(CoreV1Api);
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
