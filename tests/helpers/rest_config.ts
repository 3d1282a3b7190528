/**
 * A REST config for a simulated API server with its admin client certificate, for tests that drive
 * the worker side (transport, informers, discovery) on the test's own thread.
 */
import type { RESTConfig } from "../../src/shared/rest_config.ts";
import type { SimulatedApiServer } from "../../testing/mod.ts";

export function restConfigFor(server: SimulatedApiServer, timeoutMs = 2_000): RESTConfig {
  const c = server.credentials();
  return {
    server: server.url,
    caPem: c.caPem,
    clientCertificatePem: c.clientCertificatePem,
    clientKeyPem: c.clientKeyPem,
    userAgent: "clustercache-tests",
    timeoutMs,
    qps: 1_000,
    burst: 1_000,
  };
}
