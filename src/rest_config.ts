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

/** How to reach and authenticate to one cluster. */
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
 * import { describeRESTConfig } from "./rest_config.ts";
 * const text = describeRESTConfig({
 *   server: "https://127.0.0.1:6443", token: "s3cr3t", userAgent: "op", timeoutMs: 1, qps: 1, burst: 1,
 * });
 * console.assert(!text.includes("s3cr3t"));
 * ```
 *
 * @param config The config.
 * @returns E.g. `https://127.0.0.1:6443 (token auth)`.
 */
export function describeRESTConfig(config: RESTConfig): string {
  const auth = config.clientCertificatePem ? "client certificate" : config.token ? "token" : "no";
  return `${config.server} (${auth} auth)`;
}
