/**
 * Kubeconfigs on the main thread: parsing them (with `@kubernetes/client-node`'s `KubeConfig`), checking
 * what this cache can honour, turning them into a {@linkcode RESTConfig}, and back into a `KubeConfig`
 * for users. Main thread only: a worker must never import client-node at runtime.
 *
 * Error messages name the problem and never quote the kubeconfig (YAML parse errors from the
 * parser would otherwise echo the offending line, credentials included).
 *
 * @module
 */

import { createHash, X509Certificate } from "node:crypto";
import { KubeConfig } from "@kubernetes/client-node";
// client-node's own YAML parser: the check sees the document exactly as client-node will (no
// parser differential to hide a field behind), at a seventh of the `yaml` package's cost.
import { load as parseYaml } from "js-yaml";
import { ClusterCacheError } from "../../shared/errors.ts";
import { parseProxyUrl } from "../../shared/proxy_url.ts";
import type { KubeConfigLike } from "../kube_config_like.ts";
import type { RESTConfig } from "../../shared/rest_config.ts";

/** The connection part of a REST config (client settings come from the options). */
export type RESTTarget = Omit<RESTConfig, "userAgent" | "timeoutMs" | "qps" | "burst">;

function invalid(message: string): ClusterCacheError {
  return new ClusterCacheError("InvalidKubeconfig", message);
}

function decodeBase64(value: string, field: string): string {
  try {
    return new TextDecoder().decode(Uint8Array.fromBase64(value));
  } catch {
    throw invalid(`${field} is not valid base64`);
  }
}

function readFile(path: string, field: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch (error) {
    throw invalid(`cannot read ${field} file ${path}: ${(error as Error).name}`);
  }
}

function pemBlock(text: string, field: string, label: RegExp): string {
  if (!label.test(text)) {
    throw invalid(
      `${field} is not a PEM ${label.source.includes("KEY") ? "private key" : "certificate"}`,
    );
  }
  return text;
}

/** Fields of a kubeconfig from a Secret that would read this process's files or borrow identities. */
const REFUSED_USER_FIELDS = [
  "token-file",
  "tokenFile",
  "client-certificate",
  "client-key",
  "as",
  "as-groups",
  "as-uid",
  "as-user-extra",
];
const REFUSED_CLUSTER_FIELDS = ["certificate-authority"];

/**
 * Refuses what a kubeconfig written by someone else (anyone who can write a `<name>-kubeconfig`
 * Secret) must not make this process do: read its files (`token-file` would send the controller's
 * own service-account token to the server the Secret names; `certificate-authority`,
 * `client-certificate`, `client-key`) or act as someone else (`as`, `as-groups`, `as-uid`,
 * `as-user-extra`). Runs before client-node sees the text, since client-node reads `token-file`
 * while parsing. Kubeconfigs the application gives (`options.management`) keep these fields.
 *
 * @throws {ClusterCacheError} `InvalidKubeconfig` naming the field, never its value; or for text
 *   that is not YAML, quoting nothing from it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkUntrustedKubeconfig } from "./kubeconfig.ts";
 * const text = "users:\n- name: u\n  user:\n    token-file: /var/run/secrets/token\n";
 * assert.throws(() => checkUntrustedKubeconfig(text), /users\[0\]\.user\.token-file/);
 * ```
 */
export function checkUntrustedKubeconfig(text: string): void {
  let document: unknown;
  try {
    document = parseYaml(text);
  } catch (error) {
    // Refused here too, not left to client-node: were its parser ever another copy than this one,
    // text this one cannot read must not reach it unchecked.
    throw invalid(`error parsing kubeconfig: ${describeYamlError(error)}`);
  }
  if (!document || typeof document !== "object") return;
  const refuse = (path: string) => {
    throw invalid(
      `${path} is not allowed in a kubeconfig from a Secret (it would read local files or impersonate)`,
    );
  };
  const entries = (list: unknown) => Array.isArray(list) ? list : [];
  const { users, clusters } = document as { users?: unknown; clusters?: unknown };
  entries(users).forEach((entry, i) => {
    const user = (entry as { user?: unknown })?.user;
    if (!user || typeof user !== "object") return;
    for (const field of REFUSED_USER_FIELDS) {
      if (field in user) refuse(`users[${i}].user.${field}`);
    }
    const provider = (user as { "auth-provider"?: { config?: unknown } })["auth-provider"];
    if (provider?.config && typeof provider.config === "object" && "tokenFile" in provider.config) {
      refuse(`users[${i}].user.auth-provider.config.tokenFile`);
    }
  });
  entries(clusters).forEach((entry, i) => {
    const cluster = (entry as { cluster?: unknown })?.cluster;
    if (!cluster || typeof cluster !== "object") return;
    for (const field of REFUSED_CLUSTER_FIELDS) {
      if (field in cluster) refuse(`clusters[${i}].cluster.${field}`);
    }
  });
}

/**
 * A YAML parse error without anything quoted from the text: js-yaml's reason can name an alias or a
 * tag written in the file (`unidentified alias "..."`), so only its words before the first quote or
 * tag are kept, with the line.
 */
function describeYamlError(error: unknown): string {
  const e = error as { name?: string; reason?: string; mark?: { line?: number } };
  if (e?.name !== "YAMLException") return "not a kubeconfig document";
  const reason = (e.reason ?? "").split(/["'!<]/)[0]!.trim().replace(/[^\w ,.-]/g, "");
  const line = typeof e.mark?.line === "number" ? ` at line ${e.mark.line + 1}` : "";
  return `invalid YAML (${reason || "syntax error"}${line})`;
}

/**
 * Parses kubeconfig YAML.
 *
 * @throws {ClusterCacheError} `InvalidKubeconfig`, with a message that quotes nothing from the file.
 */
export function parseKubeconfig(text: string): KubeConfigLike {
  if (typeof text !== "string" || text.trim() === "") {
    throw invalid("error parsing kubeconfig: the kubeconfig is empty");
  }
  const kc = new KubeConfig();
  try {
    kc.loadFromString(text);
  } catch (error) {
    const e = error as {
      name?: string;
      reason?: string;
      mark?: { line?: number };
      message?: string;
    };
    if (e.name === "YAMLException") {
      throw invalid(`error parsing kubeconfig: ${describeYamlError(error)}`);
    }
    // client-node's own validation messages name fields only ("clusters[0].name is missing").
    const message = /^(clusters|users|contexts)\[\d+\]\.\w+ is missing$/.test(e.message ?? "")
      ? e.message
      : "not a kubeconfig document";
    throw invalid(`error parsing kubeconfig: ${message}`);
  }
  return kc;
}

/**
 * Checks that every certificate in a PEM bundle parses: the connection trusts these alone, so a
 * broken one is a broken kubeconfig, not a server to blame later.
 *
 * @throws {ClusterCacheError} `InvalidKubeconfig` naming the field (never its content).
 */
function checkCertificates(pem: string, field: string): string {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  for (const block of blocks) {
    try {
      new X509Certificate(block);
    } catch {
      throw invalid(`${field} is not a PEM certificate that can be parsed`);
    }
  }
  return pem;
}

/**
 * Checks a client certificate can be used: X.509 v3 (Deno's TLS stack rejects v1) and valid now.
 *
 * @throws {ClusterCacheError} `InvalidKubeconfig` naming the problem (and the validity dates).
 */
export function checkClientCertificate(pem: string, now = Date.now()): void {
  const der = pemToDer(pem);
  if (der && !hasVersionField(der)) {
    throw invalid("the client certificate is X.509 v1; only v3 certificates can be used");
  }
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pem);
  } catch {
    throw invalid("the client certificate cannot be parsed");
  }
  const from = Date.parse(cert.validFrom);
  const to = Date.parse(cert.validTo);
  if (!Number.isNaN(to) && now > to) {
    throw invalid(`the client certificate expired on ${new Date(to).toISOString()}`);
  }
  if (!Number.isNaN(from) && now < from) {
    throw invalid(`the client certificate is not valid before ${new Date(from).toISOString()}`);
  }
}

function pemToDer(pem: string): Uint8Array | undefined {
  const match = /-----BEGIN CERTIFICATE-----([\s\S]+?)-----END CERTIFICATE-----/.exec(pem);
  if (!match) return undefined;
  try {
    return Uint8Array.fromBase64(match[1]!);
  } catch {
    return undefined;
  }
}

/** Whether a DER certificate's TBSCertificate starts with the explicit `[0]` version (v2/v3). */
function hasVersionField(der: Uint8Array): boolean {
  let offset = 0;
  const skipHeader = (): boolean => {
    if (der[offset] !== 0x30) return false;
    const length = der[offset + 1]!;
    offset += 2 + (length & 0x80 ? length & 0x7f : 0);
    return true;
  };
  if (!skipHeader() || !skipHeader()) return true; // not what we expect: let TLS decide
  return der[offset] === 0xa0;
}

/**
 * Extracts where and how to connect from a `KubeConfig`'s current context, refusing what cannot be
 * honoured per cluster: exec and auth-provider users (except client-node's in-cluster `tokenFile`
 * provider, when `allowTokenFile`), basic auth, `insecure-skip-tls-verify`, `tls-server-name` and
 * plain `http`.
 *
 * @throws {ClusterCacheError} `InvalidKubeconfig`.
 */
export function restTargetFromKubeConfig(
  kc: KubeConfigLike,
  options: { allowTokenFile?: boolean } = {},
): RESTTarget {
  if (!kc.currentContext) throw invalid("error parsing kubeconfig: no current-context");
  const context = kc.getContextObject(kc.currentContext);
  if (!context) throw invalid(`error parsing kubeconfig: context "${kc.currentContext}" not found`);
  const cluster = kc.getCluster(context.cluster);
  if (!cluster) throw invalid(`error parsing kubeconfig: cluster "${context.cluster}" not found`);
  const user = context.user ? kc.getUser(context.user) : null;
  if (context.user && !user) {
    throw invalid(`error parsing kubeconfig: user "${context.user}" not found`);
  }

  let server: URL;
  try {
    server = new URL(cluster.server);
  } catch {
    // Not quoted: it is the Secret's text, and may carry a password.
    throw invalid("error parsing kubeconfig: the cluster's server is not a URL");
  }
  if (server.username || server.password) {
    throw invalid(
      "error parsing kubeconfig: the cluster's server names a user (credentials belong in the user)",
    );
  }
  if (server.protocol !== "https:") {
    throw invalid(
      `server ${server.origin} uses ${server.protocol.replace(":", "")}; only https is supported`,
    );
  }
  if (cluster.skipTLSVerify) {
    throw invalid(
      "insecure-skip-tls-verify is not supported: TLS verification cannot be turned off per cluster",
    );
  }
  if (cluster.tlsServerName) {
    throw invalid(
      "tls-server-name is not supported: Deno's HTTP client cannot override the verified name",
    );
  }
  const target: RESTTarget = { server: server.href.replace(/\/+$/, "") };
  if (cluster.caData) {
    target.caPem = checkCertificates(
      pemBlock(
        decodeBase64(cluster.caData, "certificate-authority-data"),
        "certificate-authority-data",
        /-----BEGIN CERTIFICATE-----/,
      ),
      "certificate-authority-data",
    );
  } else if (cluster.caFile) {
    target.caPem = checkCertificates(
      pemBlock(
        readFile(cluster.caFile, "certificate-authority"),
        "certificate-authority",
        /-----BEGIN CERTIFICATE-----/,
      ),
      "certificate-authority",
    );
  }
  if (cluster.proxyUrl) {
    parseProxyUrl(cluster.proxyUrl); // refused here, where the kubeconfig is read
    target.proxyUrl = cluster.proxyUrl;
  }
  if (!user) return target;

  if (user.exec) throw invalid("ExecProvider is not supported in ClusterCache");
  if (user.authProvider) {
    const provider = user.authProvider as { name?: string; config?: { tokenFile?: string } };
    if (options.allowTokenFile && provider.name === "tokenFile" && provider.config?.tokenFile) {
      target.token = readFile(provider.config.tokenFile, "service account token").trim();
    } else {
      throw invalid("AuthProvider is not supported in ClusterCache");
    }
  }
  if (user.username || user.password) {
    throw invalid("basic authentication (username/password) is not supported");
  }
  const cert = user.certData
    ? decodeBase64(user.certData, "client-certificate-data")
    : user.certFile
    ? readFile(user.certFile, "client-certificate")
    : undefined;
  const key = user.keyData
    ? decodeBase64(user.keyData, "client-key-data")
    : user.keyFile
    ? readFile(user.keyFile, "client-key")
    : undefined;
  if ((cert === undefined) !== (key === undefined)) {
    throw invalid("a client certificate needs both client-certificate-data and client-key-data");
  }
  if (cert !== undefined && key !== undefined) {
    target.clientCertificatePem = pemBlock(
      cert,
      "client-certificate-data",
      /-----BEGIN CERTIFICATE-----/,
    );
    target.clientKeyPem = pemBlock(key, "client-key-data", /-----BEGIN [A-Z ]*PRIVATE KEY-----/);
    checkClientCertificate(target.clientCertificatePem);
  }
  if (user.token) target.token = user.token;
  return target;
}

/**
 * The service-account token file of a `KubeConfig` made by client-node's `loadFromCluster()` (its
 * `tokenFile` auth provider), or `undefined`: the file kubelet rewrites as it rotates the token.
 */
export function tokenFileOf(kc: KubeConfigLike): string | undefined {
  const context = kc.currentContext ? kc.getContextObject(kc.currentContext) : null;
  const user = context?.user ? kc.getUser(context.user) : null;
  const provider = user?.authProvider as
    | { name?: string; config?: { tokenFile?: string } }
    | undefined;
  return provider?.name === "tokenFile" ? provider.config?.tokenFile || undefined : undefined;
}

function base64(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary);
}

/**
 * Builds a client-node `KubeConfig` from a REST config, so users can `makeApiClient(...)`.
 *
 * @param config The cluster's REST config.
 * @param name Name of the cluster, user and context.
 */
export function kubeConfigFromRESTConfig(config: RESTConfig, name: string): KubeConfigLike {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{
      name,
      server: config.server,
      skipTLSVerify: false,
      ...(config.caPem ? { caData: base64(config.caPem) } : {}),
      ...(config.proxyUrl ? { proxyUrl: config.proxyUrl } : {}),
    }],
    users: [{
      name,
      ...(config.clientCertificatePem ? { certData: base64(config.clientCertificatePem) } : {}),
      ...(config.clientKeyPem ? { keyData: base64(config.clientKeyPem) } : {}),
      ...(config.token ? { token: config.token } : {}),
    }],
    contexts: [{ name, cluster: name, user: name }],
    currentContext: name,
  });
  return kc;
}

/**
 * SHA-256 (hex) of a kubeconfig's bytes: what is kept to notice a rotated Secret. Node's hash, not
 * WebCrypto's: a tenth of the cost (6 against 60 µs a kubeconfig), once per cluster at connect.
 */
export function kubeconfigHash(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}
