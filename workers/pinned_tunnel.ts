/**
 * Connections to one API server that trust its kubeconfig's certificate authority and nothing else
 * (worker side), as client-go does (`RootCAs` built from `CAData` alone).
 *
 * `Deno.createHttpClient({ caCerts })` (and `Deno.connectTls`) add the CA to the process's roots
 * (Mozilla's or the system's, and `DENO_CERT`): a publicly trusted certificate for the server's name
 * would be accepted. `node:tls` with `ca` replaces the roots. So a session's `fetch` talks cleartext
 * to a Unix socket of its own (the HTTP client's `unix` transport; a socket, not a loopback port,
 * so the worker needs no access to other local services), and each connection accepted there is
 * carried to the API server over `node:tls` with the kubeconfig's CA as the only root, the server's
 * name checked and the client certificate presented. Nothing `fetch` sends is forwarded until that handshake has
 * succeeded: a bearer token never reaches a server that is not the kubeconfig's. The HTTP/2 (or
 * HTTP/1.1, whichever the server chose) connection runs end to end through the pipe, so GOAWAY,
 * stream resets and flow control are the server's own.
 *
 * Every connection resolves the server's name anew and refuses an address in the denied networks
 * (link-local and cloud metadata endpoints by default) before anything but the TLS handshake has
 * crossed it: a kubeconfig written by someone else cannot make this process send its credentials
 * there, not even by DNS.
 *
 * @module
 */

import { isIP } from "node:net";
import * as net from "node:net";
import * as tls from "node:tls";
import { ClusterCacheError } from "../src/shared/errors.ts";
import { deniedAddress } from "../src/shared/networks.ts";

/** Where and how to reach the server. */
export interface TunnelTarget {
  /** `https://host:port`. */
  server: string;
  /** The kubeconfig's CA (PEM): the only certificate authority trusted. Absent: the system's roots. */
  caPem?: string;
  /** An HTTP proxy to tunnel through (`CONNECT`). */
  proxyUrl?: string;
  clientCertificatePem?: string;
  clientKeyPem?: string;
  /** CIDRs a server address may not fall in. */
  deniedNetworks: readonly string[];
}

/** Why the last connection was refused, for the error the request that met it gets. */
export interface Refusal {
  at: number;
  error: ClusterCacheError;
}

/** How long a connection may take to resolve, connect and complete its handshake. */
const CONNECT_TIMEOUT_MS = 10_000;

/** A Unix socket whose connections are carried to the server over pinned TLS. */
export class PinnedTunnel {
  readonly #target: TunnelTarget;
  readonly #url: URL;
  readonly #server: net.Server;
  readonly #sockets = new Set<net.Socket>();
  /** The protocol the server chose (`h2` or `http/1.1`): later connections ask for it alone. */
  readonly protocol: "h2" | "http/1.1";
  /** The socket `fetch` connects to. */
  readonly path: string;
  #spare: tls.TLSSocket | undefined;
  #spareTimer: ReturnType<typeof setTimeout> | undefined;
  #refusal: Refusal | undefined;
  #closed = false;

  private constructor(
    target: TunnelTarget,
    server: net.Server,
    path: string,
    protocol: "h2" | "http/1.1",
    spare: tls.TLSSocket,
  ) {
    this.#target = target;
    this.#url = new URL(target.server);
    this.#server = server;
    this.path = path;
    this.protocol = protocol;
    this.#spare = spare;
    this.#track(spare);
    spare.on("error", () => spare.destroy());
    // An unused first connection is not kept open for long.
    this.#spareTimer = setTimeout(() => this.#dropSpare(), CONNECT_TIMEOUT_MS);
  }

  #dropSpare(): void {
    clearTimeout(this.#spareTimer);
    this.#spare?.destroy();
    this.#spare = undefined;
  }

  /**
   * Connects once (to learn which protocol the server speaks, and to fail early on a server that
   * is not the kubeconfig's), then listens on the Unix socket `path`.
   *
   * @throws {ClusterCacheError} `UntrustedCertificate` when the server's certificate does not lead
   *   to the kubeconfig's CA; `InvalidKubeconfig` for a denied address; `Unreachable` otherwise.
   */
  static async open(
    target: TunnelTarget,
    path: string,
    signal?: AbortSignal,
  ): Promise<PinnedTunnel> {
    const first = await connectPinned(target, ["h2", "http/1.1"], signal);
    const protocol = first.alpnProtocol === "h2" ? "h2" : "http/1.1";
    const server = net.createServer({ pauseOnConnect: true });
    try {
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(path, () => resolve());
      });
      const tunnel = new PinnedTunnel(target, server, path, protocol, first);
      server.on("connection", (local: net.Socket) => tunnel.#accept(local));
      server.on("error", () => {}); // accept errors end one connection, not the tunnel
      return tunnel;
    } catch (error) {
      first.destroy();
      server.close();
      throw new ClusterCacheError(
        "Internal",
        `cannot open a socket for the cluster's connections: ${(error as Error).message}`,
      );
    }
  }

  /** The last refusal, if it happened at or after `since` (epoch ms). */
  refusalSince(since: number): ClusterCacheError | undefined {
    return this.#refusal && this.#refusal.at >= since ? this.#refusal.error : undefined;
  }

  #track(socket: net.Socket): void {
    this.#sockets.add(socket);
    socket.once("close", () => this.#sockets.delete(socket));
  }

  #accept(local: net.Socket): void {
    if (this.#closed) {
      local.destroy();
      return;
    }
    this.#track(local);
    local.on("error", () => {});
    const spare = this.#spare;
    this.#spare = undefined;
    clearTimeout(this.#spareTimer);
    const upstream = spare && !spare.destroyed
      ? Promise.resolve(spare)
      : connectPinned(this.#target, [this.protocol]);
    upstream.then((remote) => {
      if (this.#closed || local.destroyed) {
        remote.destroy();
        local.destroy();
        return;
      }
      this.#track(remote);
      if ((remote.alpnProtocol === "h2" ? "h2" : "http/1.1") !== this.protocol) {
        remote.destroy();
        local.destroy();
        return;
      }
      remote.on("error", () => local.destroy());
      local.on("error", () => remote.destroy());
      remote.once("close", () => local.destroy());
      local.once("close", () => remote.destroy());
      local.pipe(remote);
      remote.pipe(local);
      local.resume();
    }, (error: ClusterCacheError) => {
      this.#refusal = { at: Date.now(), error };
      local.destroy();
    });
  }

  /** Stops listening, ends every connection and removes the socket. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#dropSpare();
    this.#server.close();
    try {
      Deno.removeSync(this.path);
    } catch {
      // gone already
    }
    for (const socket of this.#sockets) socket.destroy();
    this.#sockets.clear();
  }
}

/**
 * One TLS connection to the server, trusting only its kubeconfig's CA. The name is resolved as the
 * connection is made (the worker may reach the server's name and port, nothing else), and the
 * address it reached is checked against the denied networks before anything but the handshake has
 * gone over it.
 */
async function connectPinned(
  target: TunnelTarget,
  protocols: string[],
  signal?: AbortSignal,
): Promise<tls.TLSSocket> {
  const url = new URL(target.server);
  const host = url.hostname.replace(/^\[|\]$/g, "");
  const port = Number(url.port || 443);
  const through = target.proxyUrl
    ? await connectThroughProxy(target.proxyUrl, url.host, signal)
    : undefined;
  return await new Promise<tls.TLSSocket>((resolve, reject) => {
    const socket = tls.connect({
      ...(through ? { socket: through } : { host, port }),
      ...(isIP(host) ? {} : { servername: host }),
      ...(target.caPem ? { ca: [target.caPem] } : {}),
      ...(target.clientCertificatePem && target.clientKeyPem
        ? { cert: target.clientCertificatePem, key: target.clientKeyPem }
        : {}),
      ALPNProtocols: protocols,
      rejectUnauthorized: true,
    });
    const fail = (error: ClusterCacheError) => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      socket.destroy();
      reject(error);
    };
    const onAbort = () => fail(new ClusterCacheError("Timeout", "the connection was cancelled"));
    const timer = setTimeout(
      () =>
        fail(
          new ClusterCacheError(
            "Timeout",
            `connecting to ${url.host} took over ${CONNECT_TIMEOUT_MS}ms`,
          ),
        ),
      CONNECT_TIMEOUT_MS,
    );
    signal?.addEventListener("abort", onAbort, { once: true });
    socket.once("secureConnect", () => {
      // Where the name led (through a proxy: the proxy; the main thread checked the name).
      const network = through
        ? undefined
        : deniedAddress(socket.remoteAddress ?? "", target.deniedNetworks);
      if (network) {
        return fail(
          new ClusterCacheError(
            "InvalidKubeconfig",
            `the server ${host} resolved to ${socket.remoteAddress}, in the denied network ${network} (link-local and cloud metadata addresses are refused; see options.deniedNetworks); nothing was sent`,
          ),
        );
      }
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      socket.removeAllListeners("error");
      resolve(socket);
    });
    socket.once("error", (error: Error & { code?: string }) => {
      const problem = certificateProblem(error);
      fail(
        problem === "name"
          ? new ClusterCacheError(
            "UntrustedCertificate",
            `the server at ${url.host} presented a certificate that is not valid for its name (${error.message}); no credential was sent`,
          )
          : problem === "chain"
          ? new ClusterCacheError(
            "UntrustedCertificate",
            `the server at ${url.host} presented a certificate that does not lead to the kubeconfig's certificate authority (${error.message}); no credential was sent`,
          )
          : new ClusterCacheError("Unreachable", `${url.host}: ${networkProblem(error)}`),
      );
    });
  });
}

/** A TCP connection through an HTTP proxy to `authority` (`CONNECT`), before TLS starts on it. */
function connectThroughProxy(
  proxyUrl: string,
  authority: string,
  signal?: AbortSignal,
): Promise<net.Socket> {
  const proxy = new URL(proxyUrl);
  if (proxy.protocol !== "http:") {
    return Promise.reject(
      new ClusterCacheError(
        "InvalidKubeconfig",
        `proxy-url ${proxy.protocol}// is not supported: only http:// proxies (CONNECT)`,
      ),
    );
  }
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: proxy.hostname, port: Number(proxy.port || 80) });
    let head = "";
    const fail = (message: string) => {
      clearTimeout(timer);
      socket.destroy();
      reject(new ClusterCacheError("Unreachable", `through the proxy ${proxy.host}: ${message}`));
    };
    const timer = setTimeout(() => fail("no answer to CONNECT"), CONNECT_TIMEOUT_MS);
    signal?.addEventListener("abort", () => fail("cancelled"), { once: true });
    socket.once("error", (error) => fail(error.message));
    socket.once("connect", () => {
      const auth = proxy.username
        ? `Proxy-Authorization: Basic ${
          btoa(`${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`)
        }\r\n`
        : "";
      socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n${auth}\r\n`);
    });
    const onData = (chunk: Uint8Array) => {
      head += new TextDecoder().decode(chunk);
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) return;
      socket.off("data", onData);
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1];
      if (status !== "200") return fail(`CONNECT answered ${status ?? "garbage"}`);
      clearTimeout(timer);
      socket.removeAllListeners("error");
      resolve(socket);
    };
    socket.on("data", onData);
  });
}

/** What a TLS error says of the server's certificate: its name, its chain, or nothing (network). */
function certificateProblem(error: Error & { code?: string }): "name" | "chain" | undefined {
  const text = `${error.code ?? ""} ${error.message}`;
  if (/ALTNAME|altnames|hostname|NotValidForName|IP: .* is not in/i.test(text)) return "name";
  if (/CERT|certificate|self.signed|issuer|UnknownIssuer/i.test(text)) return "chain";
  return undefined;
}

/** A network error in the words client-go's users know. */
function networkProblem(error: Error & { code?: string }): string {
  switch (error.code) {
    case "ECONNREFUSED":
      return "connection refused";
    case "ECONNRESET":
      return "connection reset by peer";
    case "ETIMEDOUT":
      return "connection timed out";
    case "EHOSTUNREACH":
    case "ENETUNREACH":
      return "no route to host";
    default:
      return error.message;
  }
}
