/** Kubeconfig documents for tests of what the cache accepts and refuses. */

/** Base64 of a string, as kubeconfig `*-data` fields hold it. */
export function b64(text: string): string {
  return btoa(text);
}

/**
 * One cluster, one user and a current context pointing at both. `cluster` overrides or adds cluster
 * fields (`server`, `insecure-skip-tls-verify`, ...).
 */
export function kubeconfigText(
  caPem: string,
  user: Record<string, unknown>,
  cluster: Record<string, unknown> = {},
): string {
  return JSON.stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{
      name: "c",
      cluster: {
        server: "https://127.0.0.1:6443",
        "certificate-authority-data": b64(caPem),
        ...cluster,
      },
    }],
    users: [{ name: "u", user }],
    contexts: [{ name: "ctx", context: { cluster: "c", user: "u" } }],
    "current-context": "ctx",
  });
}
