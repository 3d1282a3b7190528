/**
 * A kubeconfig's `proxy-url` (both sides: the main thread checks it when it builds a REST config,
 * a worker tunnels through it). Errors quote none of it: a URL parser's own message would quote
 * the password.
 *
 * @module
 */

import { ClusterCacheError } from "./errors.ts";

function invalid(message: string): ClusterCacheError {
  return new ClusterCacheError("InvalidKubeconfig", message);
}

/**
 * Parses a `proxy-url`: `http://[user:password@]host[:port]`, its user and password
 * percent-encoded; with the `Proxy-Authorization` header's value when it names a user.
 *
 * @throws {ClusterCacheError} `InvalidKubeconfig` for anything else.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseProxyUrl } from "./proxy_url.ts";
 * assert.equal(parseProxyUrl("http://u:p%2Fw@proxy:3128").url.host, "proxy:3128");
 * assert.throws(() => parseProxyUrl("http://u:1234/w@proxy:3128"), /must be http:/);
 * ```
 */
export function parseProxyUrl(text: string): { url: URL; authorization: string | undefined } {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw invalid("proxy-url cannot be parsed as a URL (a password must be percent-encoded)");
  }
  if (url.protocol !== "http:") {
    throw invalid(`proxy-url ${url.protocol}// is not supported: only http:// proxies (CONNECT)`);
  }
  if ((url.pathname !== "/" && url.pathname !== "") || url.search || url.hash) {
    // A raw `/`, `?` or `#` in a password makes the rest of it a path: the host would be wrong
    // and a message naming it would quote part of the password.
    throw invalid(
      "proxy-url must be http://[user:password@]host[:port] (a password must be percent-encoded)",
    );
  }
  return { url, authorization: proxyAuthorization(url) }; // its user and password must decode
}

/**
 * The `Proxy-Authorization` header's value for a proxy URL with a user (percent-decoded, sent as
 * UTF-8, as Go's net/http does), or `undefined` without one.
 *
 * @throws {ClusterCacheError} `InvalidKubeconfig` when the user or password does not decode.
 */
function proxyAuthorization(url: URL): string | undefined {
  if (!url.username) return undefined;
  let credentials: string;
  try {
    credentials = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
  } catch {
    throw invalid(
      `proxy-url ${url.host}: its user name or password is not validly percent-encoded`,
    );
  }
  return `Basic ${new TextEncoder().encode(credentials).toBase64()}`;
}
