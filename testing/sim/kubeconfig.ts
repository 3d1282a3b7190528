/**
 * Writes kubeconfig files for simulated clusters, in the shape Cluster API stores in
 * `<cluster>-kubeconfig` Secrets: inline CA data and either a client certificate or a token.
 *
 * @module
 */

import { stringify } from "yaml";

/** Credentials for one kubeconfig user. */
export type KubeconfigUser =
  | { clientCertificatePem: string; clientKeyPem: string }
  | { token: string };

/** What a kubeconfig describes. */
export interface KubeconfigInput {
  /** Used for the cluster, user and context names. */
  name: string;
  server: string;
  caPem: string;
  user: KubeconfigUser;
}

function base64(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary);
}

/**
 * Renders a kubeconfig YAML document.
 *
 * @param input Server, CA and credentials.
 * @returns The YAML text.
 */
export function renderKubeconfig(input: KubeconfigInput): string {
  const user = "token" in input.user ? { token: input.user.token } : {
    "client-certificate-data": base64(input.user.clientCertificatePem),
    "client-key-data": base64(input.user.clientKeyPem),
  };
  return stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{
      name: input.name,
      cluster: { server: input.server, "certificate-authority-data": base64(input.caPem) },
    }],
    users: [{ name: `${input.name}-admin`, user }],
    contexts: [{ name: input.name, context: { cluster: input.name, user: `${input.name}-admin` } }],
    "current-context": input.name,
    preferences: {},
  });
}
