/**
 * The REST config of a workload cluster: where it is, how to trust it, how to authenticate, and the
 * client settings. A plain serialisable object: it is what a worker is started with, and what
 * `ClusterCache.getRESTConfig` returns.
 *
 * It holds credentials. Never log it or put it in an error message: {@linkcode describeRESTConfig}
 * renders the parts that are safe to show.
 *
 * @module
 */

/**
 * How to reach and authenticate to one cluster.
 *
 * `Deno.createHttpClient({ caCerts })` adds the CA to the process's trusted roots rather than
 * replacing them; the cache's own connections trust `caPem` alone. For a connection of yours that
 * does too, use `ClusterCache.getKubeConfig()` with client-node (Node's `https` with `ca`),
 * or `node:tls`.
 *
 * @example Calling a workload cluster's API with Deno's own fetch
 * ```ts
 * import assert from "node:assert/strict";
 * import { KubeConfig } from "@kubernetes/client-node";
 * import { ClusterCache, type RESTConfig } from "@fleetkit/clustercache";
 * import { SimulatedFleet } from "@fleetkit/clustercache/testing";
 *
 * await using fleet = await SimulatedFleet.start({ clusters: 1 });
 * const management = new KubeConfig();
 * management.loadFromString(fleet.managementKubeconfig());
 * await using cache = await ClusterCache.setup({ management, client: { userAgent: "docs" } });
 * for await (const cluster of cache.getClusterSource("docs", (c) => [{
 *   namespace: c.metadata!.namespace!,
 *   name: c.metadata!.name!,
 * }])) {
 *   const rest: RESTConfig = cache.getRESTConfig(cluster);
 *   using client = Deno.createHttpClient({
 *     caCerts: rest.caPem ? [rest.caPem] : [],
 *     ...(rest.clientCertificatePem && rest.clientKeyPem
 *       ? { cert: rest.clientCertificatePem, key: rest.clientKeyPem }
 *       : {}),
 *   });
 *   const response = await fetch(`${rest.server}/version`, {
 *     client,
 *     headers: {
 *       "user-agent": rest.userAgent,
 *       ...(rest.token ? { authorization: `Bearer ${rest.token}` } : {}),
 *     },
 *     signal: AbortSignal.timeout(rest.timeoutMs),
 *   });
 *   assert.equal(response.status, 200);
 *   assert.ok((await response.json()).gitVersion);
 *   break;
 * }
 * ```
 */
export interface RESTConfig {
  /** Base URL of the API server, e.g. `https://10.0.0.1:6443`. */
  server: string;
  /** PEM bundle of CAs to trust; absent means the system's roots. */
  caPem?: string;
  /** PEM client certificate (mTLS), with {@linkcode RESTConfig.clientKeyPem}. */
  clientCertificatePem?: string;
  /** PEM private key of the client certificate. */
  clientKeyPem?: string;
  /** Bearer token. */
  token?: string;
  /** Server name to verify in the serving certificate instead of the URL's host. */
  tlsServerName?: string;
  /** HTTP(S) proxy URL. */
  proxyUrl?: string;
  /** `User-Agent` of every request. */
  userAgent: string;
  /** Timeout of each non-watch request, in ms. */
  timeoutMs: number;
  /** Sustained requests per second to this cluster. */
  qps: number;
  /** Requests allowed in a burst above `qps`. */
  burst: number;
}

/**
 * Renders the non-secret parts of a REST config, for logs and errors.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { describeRESTConfig } from "./rest_config.ts";
 * const text = describeRESTConfig({
 *   server: "https://127.0.0.1:6443", token: "s3cr3t", userAgent: "op", timeoutMs: 1, qps: 1, burst: 1,
 * });
 * assert.ok(!text.includes("s3cr3t"));
 * ```
 *
 * @param config The config.
 * @returns E.g. `https://127.0.0.1:6443 (token auth)`.
 */
export function describeRESTConfig(config: RESTConfig): string {
  const auth = config.clientCertificatePem ? "client certificate" : config.token ? "token" : "no";
  return `${config.server} (${auth} auth)`;
}
