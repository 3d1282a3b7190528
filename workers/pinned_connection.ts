/**
 * HTTP to one API server over connections that trust its kubeconfig's certificate authority and
 * nothing else (worker side), as client-go does (`RootCAs` built from `CAData` alone).
 *
 * `Deno.createHttpClient({ caCerts })` (and `Deno.connectTls`) add the CA to the process's roots
 * (Mozilla's or the system's, and `DENO_CERT`): a publicly trusted certificate for the server's name
 * would be accepted. `node:tls` with `ca` replaces the roots. So every connection is made with
 * `node:tls`, the kubeconfig's CA as the only root, the server's name checked and the client
 * certificate presented, and HTTP is spoken on that very socket: HTTP/2 (`node:http2`, one
 * connection carrying every request and watch of the cluster, as client-go's transport does, and
 * another once it carries as many streams as the server allows: 100 for kube-apiserver), or
 * HTTP/1.1 (a connection per request, see `http1_exchange.ts`) when the server chose it by ALPN.
 * Nothing is sent before the handshake has succeeded: a bearer token never reaches a server that
 * is not the kubeconfig's. One descriptor per cluster (unless it watches a hundred kinds), no HTTP
 * client object per cluster.
 *
 * Every connection resolves the server's name anew and refuses an address in the denied networks
 * (link-local and cloud metadata endpoints by default) before its TLS handshake starts: a
 * kubeconfig written by someone else cannot make this process send its credentials there, not even
 * by DNS. Through a `proxy-url` the proxy resolves the name: only the main thread's check of the
 * name, when the cluster connects, applies.
 *
 * @module
 */

import { isIP } from "node:net";
import * as net from "node:net";
import * as tls from "node:tls";
import * as http2 from "node:http2";
import { http1Exchange, NULL_BODY } from "./http1_exchange.ts";
import { untilAborted } from "./until_aborted.ts";
import { checkKeyPair, checkKeyPairFully } from "./key_pair.ts";
import { ClusterCacheError } from "../src/shared/errors.ts";
import { deniedAddress } from "../src/shared/networks.ts";
import { parseProxyUrl } from "../src/shared/proxy_url.ts";

/** Where and how to reach the server. */
export interface PinnedTarget {
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

/** One request: what {@linkcode PinnedConnection.request} sends. */
export interface PinnedRequest {
  method: string;
  /** Path and query. */
  path: string;
  headers: Record<string, string>;
  body?: string;
  signal: AbortSignal;
}

/** How long a connection may take to resolve, connect and complete its handshake. */
const CONNECT_TIMEOUT_MS = 10_000;
/** Flow-control windows of client-go's HTTP/2 transport: 4 MiB a stream, 1 GiB the connection. */
const STREAM_WINDOW = 4 << 20;
const CONNECTION_WINDOW = 1 << 30;
/**
 * A connection that has carried nothing for `readIdleMs` is pinged, and closed if the ping is not
 * answered within `pingTimeoutMs` (client-go's `ReadIdleTimeout` and `PingTimeout`, 30 s and
 * 15 s): a connection cut without a FIN would otherwise hold every watch of the cluster until
 * its timeout.
 */
export interface Liveness {
  readIdleMs: number;
  pingTimeoutMs: number;
}

const LIVENESS: Liveness = { readIdleMs: 30_000, pingTimeoutMs: 15_000 };

/** The part of an HTTP/2 stream a response body reads. */
interface StreamSource {
  on(event: "data", listener: (chunk: Uint8Array) => void): unknown;
  on(event: "error", listener: (error: Error) => void): unknown;
  once(event: "end" | "close", listener: () => void): unknown;
  pause(): unknown;
  resume(): unknown;
}

/**
 * The connection of one cluster: a single HTTP/2 session over a pinned TLS socket, opened by the
 * first request and again by the first one after it closed (GOAWAY, an error, an unanswered ping);
 * requests already running on a session that received GOAWAY finish on it.
 */
export class PinnedConnection {
  readonly #target: PinnedTarget;
  /**
   * The CA and client certificate, built into a TLS context once: passing the PEMs to
   * `tls.connect` built a context (and ran its key checks) for every connection, a pooled worker's
   * largest cost while a fleet connected.
   */
  readonly #secureContext: tls.SecureContext;
  readonly #liveness: Liveness;
  readonly #origin: string;
  /** `host:port`, for HTTP/1.1's `Host`. */
  readonly #host: string;
  #session: Promise<http2.ClientHttp2Session | "http/1.1"> | undefined;
  /** Each session's liveness and how it is let go of (no longer offered to new requests). */
  readonly #state = new WeakMap<http2.ClientHttp2Session, SessionState>();
  /** What the server chose by ALPN the first time: HTTP/1.1 servers get a connection per request. */
  #protocol: "h2" | "http/1.1" | undefined;
  readonly #open = new Set<http2.ClientHttp2Session | tls.TLSSocket>();
  /** Aborted by close(): a connection still being made is given up. */
  readonly #lifetime = new AbortController();
  #closed = false;

  /**
   * @throws {ClusterCacheError} `InvalidKubeconfig` for a client key that is not the certificate's
   *   by the public half it records, or that cannot be parsed when it records none: found now, so a
   *   connect fails with a clear error rather than a 401. A key whose private part is damaged is
   *   found when a connection is made, and fails each request with the same error.
   */
  constructor(target: PinnedTarget, liveness: Liveness = LIVENESS) {
    this.#target = target;
    const mtls = target.clientCertificatePem && target.clientKeyPem
      ? { cert: target.clientCertificatePem, key: target.clientKeyPem }
      : undefined;
    if (mtls) checkKeyPair(mtls.cert, mtls.key);
    // Deno's createSecureContext accepts anything (a bad CA fails the handshake instead).
    this.#secureContext = tls.createSecureContext({
      ...(target.caPem ? { ca: [target.caPem] } : {}),
      ...mtls,
    });
    this.#liveness = liveness;
    const url = new URL(target.server);
    this.#origin = url.origin;
    this.#host = url.host;
  }

  /**
   * Sends one request and resolves with its response once the headers have come; the body streams
   * with backpressure (a paused body stops the server's stream at its flow-control window). A
   * request the server never saw (its session was closing, or the server refused the stream) is
   * sent once more, on a new session.
   *
   * @throws {ClusterCacheError} `UntrustedCertificate` when the server's certificate does not lead
   *   to the kubeconfig's CA; `InvalidKubeconfig` for a denied address; `Unreachable` for a
   *   connection that could not be made; `BadResponse` for an answer that is not HTTP; other
   *   errors for a connection lost mid-request; `request.signal`'s reason when it aborts.
   */
  async request(request: PinnedRequest): Promise<Response> {
    for (let attempt = 0;; attempt++) {
      if (this.#closed) throw new ClusterCacheError("Closed", "the connection was closed");
      if (request.signal.aborted) throw request.signal.reason;
      // The connection is shared: each request waits for it as long as its own signal allows.
      const session = await untilAborted(this.#sessionFor(), request.signal);
      if (session === "http/1.1") {
        const socket = await connectPinned(
          this.#target,
          this.#secureContext,
          ["http/1.1"],
          request.signal,
        );
        this.#open.add(socket);
        socket.once("close", () => this.#open.delete(socket));
        if (this.#closed) socket.destroy();
        return await http1Exchange(socket, { ...request, host: this.#host });
      }
      const state = this.#state.get(session);
      const limit = session.remoteSettings.maxConcurrentStreams ?? Infinity;
      if (state && state.active > 0 && state.active >= limit) {
        // Full (kube-apiserver allows 100 streams a connection; a cluster watching that many
        // kinds fills one): another connection for what comes next, as Go's transport opens.
        state.retire();
        attempt--;
        continue;
      }
      try {
        return await this.#h2(session, request);
      } catch (error) {
        if (!(error instanceof Unsent)) throw error;
        if (attempt > 0) throw error.cause;
      }
    }
  }

  #sessionFor(): Promise<http2.ClientHttp2Session | "http/1.1"> {
    if (this.#protocol === "http/1.1") return Promise.resolve("http/1.1");
    this.#session ??= (async () => {
      const socket = await connectPinned(
        this.#target,
        this.#secureContext,
        ["h2", "http/1.1"],
        this.#lifetime.signal,
      );
      if (this.#closed) {
        socket.destroy();
        throw new ClusterCacheError("Closed", "the connection was closed");
      }
      if (socket.alpnProtocol !== "h2") {
        // The handshake proved the server; HTTP/1.1 requests each make their own connection.
        socket.destroy();
        this.#protocol = "http/1.1";
        return "http/1.1";
      }
      this.#protocol = "h2";
      return this.#startSession(socket);
    })();
    const opening = this.#session;
    opening.catch(() => {
      if (this.#session === opening) this.#session = undefined;
    });
    return opening;
  }

  #startSession(socket: tls.TLSSocket): http2.ClientHttp2Session {
    const session = http2.connect(this.#origin, {
      createConnection: () => socket,
      settings: { initialWindowSize: STREAM_WINDOW, enablePush: false },
    });
    // Deno's client answers a server's GOAWAY with one of its own from close(), and that cancels
    // the streams the server said it would finish (a watch cut at every GOAWAY); Node's does not.
    // The server is shutting the connection down already: there is nothing to tell it.
    Object.defineProperty(session, "goaway", { value: () => {} });
    const current = this.#session;
    const state: SessionState = {
      lastRead: performance.now(),
      pinging: false,
      active: 0,
      retired: false,
      retire: () => {
        state.retired = true;
        if (this.#session === current) this.#session = undefined;
        if (state.active === 0 && !session.closed) session.close();
      },
    };
    const retire = state.retire;
    this.#state.set(session, state);
    this.#open.add(session);
    const idle = setInterval(() => this.#checkAlive(session, state), this.#liveness.readIdleMs / 2);
    Deno.unrefTimer(idle);
    session.on("stream", () => {}); // no push (disabled in SETTINGS)
    session.on("error", retire);
    session.on("goaway", retire);
    session.once("close", () => {
      retire();
      clearInterval(idle);
      this.#open.delete(session);
      socket.destroy();
    });
    session.once("connect", () => {
      try {
        session.setLocalWindowSize(CONNECTION_WINDOW);
      } catch {
        // a session closing already
      }
    });
    return session;
  }

  /**
   * Pings a session that received nothing for `readIdleMs`; destroys it when the PING goes
   * unanswered for `pingTimeoutMs`. A session closing after a GOAWAY is not pinged (it refuses
   * PINGs; its streams run to their end, watched by their own watchdogs), and a timer that fired
   * far behind schedule (this thread was busy, not the connection dead) gives the answer one more
   * second to be read.
   */
  #checkAlive(session: http2.ClientHttp2Session, state: SessionState) {
    const { readIdleMs, pingTimeoutMs } = this.#liveness;
    if (state.pinging || session.closed || session.destroyed) return;
    if (performance.now() - state.lastRead < readIdleMs) return;
    state.pinging = true;
    const lost = () =>
      session.destroy(new Error(`the connection did not answer a PING within ${pingTimeoutMs}ms`));
    const due = performance.now() + pingTimeoutMs;
    let timer = setTimeout(function expire() {
      if (performance.now() - due > 1_000) timer = setTimeout(lost, 1_000);
      else lost();
    }, pingTimeoutMs);
    try {
      session.ping((error) => {
        state.pinging = false;
        clearTimeout(timer);
        if (!error) state.lastRead = performance.now();
        else if (!session.closed) lost();
      });
    } catch {
      state.pinging = false;
      clearTimeout(timer);
      if (!session.closed) lost();
    }
  }

  #h2(session: http2.ClientHttp2Session, request: PinnedRequest): Promise<Response> {
    const { signal } = request;
    let stream: http2.ClientHttp2Stream;
    try {
      stream = session.request(
        { ":method": request.method, ":path": request.path, ...request.headers },
        { endStream: request.body === undefined },
      );
    } catch (error) {
      // The session ended (or was told to go away) since it was handed out: not sent.
      this.#state.get(session)?.retire();
      return Promise.reject(new Unsent(error));
    }
    const counted = this.#state.get(session);
    if (counted) {
      counted.active++;
      stream.once("close", () => {
        if (--counted.active === 0 && counted.retired) counted.retire(); // closes it, drained
      });
    }
    if (request.body !== undefined) stream.end(request.body);
    return new Promise<Response>((resolve, reject) => {
      let answered = false;
      const onAbort = () => {
        if (!stream.destroyed) stream.close(http2.constants.NGHTTP2_CANCEL);
        reject(signal.reason);
      };
      signal.addEventListener("abort", onAbort, { once: true });
      const settle = () => {
        answered = true;
        signal.removeEventListener("abort", onAbort);
      };
      stream.once("error", (error) => {
        if (answered) return;
        settle();
        reject(
          stream.rstCode === http2.constants.NGHTTP2_REFUSED_STREAM ? new Unsent(error) : error,
        );
      });
      stream.once("close", () => {
        if (answered) return;
        settle();
        const reset = new Error(
          `the stream was reset before its response (code ${stream.rstCode ?? "?"})`,
        );
        reject(
          stream.rstCode === http2.constants.NGHTTP2_REFUSED_STREAM ? new Unsent(reset) : reset,
        );
      });
      stream.once("response", (headers) => {
        settle();
        const state = this.#state.get(session);
        if (state) state.lastRead = performance.now();
        const cancel = () => {
          if (!stream.destroyed) stream.close(http2.constants.NGHTTP2_CANCEL);
        };
        try {
          const status = Number(headers[":status"]);
          // 1xx never come here (informational headers are their own event); 101 is not HTTP/2.
          if (!(status >= 200 && status <= 599)) {
            throw new ClusterCacheError(
              "BadResponse",
              `the server answered with status ${headers[":status"]}`,
            );
          }
          const out = new Headers();
          for (const [name, value] of Object.entries(headers)) {
            if (name.startsWith(":") || value === undefined) continue;
            for (const one of Array.isArray(value) ? value : [value]) out.append(name, String(one));
          }
          resolve(responseOf(status, out, stream, signal, {
            cancel,
            code: () => stream.rstCode || undefined,
            read: () => {
              if (state) state.lastRead = performance.now();
            },
          }));
        } catch (error) {
          cancel();
          reject(
            error instanceof ClusterCacheError ? error : new ClusterCacheError(
              "BadResponse",
              `the server's response headers cannot be read: ${(error as Error).message}`,
            ),
          );
        }
      });
    });
  }

  /** Ends every connection; requests running on them fail. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#session = undefined;
    this.#lifetime.abort(new ClusterCacheError("Closed", "the connection was closed"));
    for (const open of this.#open) open.destroy();
    this.#open.clear();
  }
}

/** What a session's liveness check and its retirement need. */
interface SessionState {
  /** When it last received something (PINGs are sent to the idle ones). */
  lastRead: number;
  pinging: boolean;
  /** Streams open on it (requests sent and not yet closed). */
  active: number;
  /** No longer offered to new requests: it closes once its last stream has. */
  retired: boolean;
  /** Stops offering it to new requests. */
  retire(): void;
}

/** A request the server never saw: safe to send again (client-go retries these too). */
class Unsent extends Error {
  constructor(override readonly cause: unknown) {
    super("the request was not sent", { cause });
  }
}

/**
 * A `Response` whose body is an HTTP/2 stream, read with backpressure: the stream is paused while
 * the reader has a few chunks unread (its flow-control window then stops the server), a body whose
 * stream was reset or whose connection was lost errors instead of looking complete, and one whose request's signal aborts
 * errors with the signal's reason (a timeout reads as a timeout).
 */
function responseOf(
  status: number,
  headers: Headers,
  source: StreamSource,
  signal: AbortSignal,
  hooks: { cancel(): void; read(): void; code(): number | undefined },
): Response {
  if (NULL_BODY.has(status)) {
    source.resume();
    return new Response(null, { status, headers });
  }
  let done = false;
  let onAbort = () => {};
  const finished = () => {
    done = true;
    signal.removeEventListener("abort", onAbort);
  };
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      const fail = (error?: unknown) => {
        if (done) return;
        finished();
        controller.error(error ?? new Error("the stream ended before its end (reset)"));
      };
      onAbort = () => {
        fail(signal.reason);
        hooks.cancel();
      };
      if (signal.aborted) return onAbort();
      signal.addEventListener("abort", onAbort, { once: true });
      source.on("data", (chunk: Uint8Array) => {
        if (done) return;
        hooks.read();
        controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
        if ((controller.desiredSize ?? 0) <= 0) source.pause();
      });
      // A lost connection ends its streams too, with a code (CANCEL) where a complete answer has
      // none, even when the server closed the connection right after it (kube-apiserver's
      // --goaway-chance): a watch cut by a restart must read as cut, so its informer checks the
      // server's versions before it watches again.
      source.once("end", () => {
        const code = hooks.code();
        if (code) {
          return fail(new Error(`the connection was lost mid-response (stream code ${code})`));
        }
        if (done) return;
        finished();
        controller.close();
      });
      source.on("error", fail);
      source.once("close", () => queueMicrotask(() => fail()));
    },
    pull() {
      source.resume();
    },
    cancel() {
      finished();
      hooks.cancel();
    },
  }, new CountQueuingStrategy({ highWaterMark: 8 }));
  return new Response(body, { status, headers });
}

/**
 * One TLS connection to the server, trusting only its kubeconfig's CA. The name is resolved as the
 * connection is made (the worker may reach the server's name and port, nothing else), and the
 * address it reached is checked against the denied networks before the handshake starts.
 *
 * TLS starts on a TCP connection already made, which stays ours to end: over one still connecting,
 * Deno's `node:tls` throws an uncaught error when it cannot set TLS up (a client key its TLS stack
 * refuses), and when it makes the connection itself it leaves it open after such a failure, a
 * descriptor each retry.
 */
async function connectPinned(
  target: PinnedTarget,
  secureContext: tls.SecureContext,
  protocols: string[],
  signal?: AbortSignal,
): Promise<tls.TLSSocket> {
  const url = new URL(target.server);
  const host = url.hostname.replace(/^\[|\]$/g, "");
  const deadline = performance.now() + CONNECT_TIMEOUT_MS;
  if (signal?.aborted) throw cancellation(signal);
  const tcp = target.proxyUrl
    ? await connectThroughProxy(target.proxyUrl, `${url.hostname}:${url.port || "443"}`, signal)
    : await connectTcp(url, host, target.deniedNetworks, signal);
  if (signal?.aborted) {
    tcp.destroy();
    throw cancellation(signal);
  }
  return await new Promise<tls.TLSSocket>((resolve, reject) => {
    let socket: tls.TLSSocket;
    try {
      socket = tls.connect({
        // Through a proxy too, the certificate is checked against the server's name, not the
        // proxy's.
        socket: tcp,
        host,
        ...(isIP(host) ? {} : { servername: host }),
        secureContext,
        ALPNProtocols: protocols,
        rejectUnauthorized: true,
      });
    } catch (error) {
      tcp.destroy();
      return reject(
        new ClusterCacheError("Unreachable", `${url.host}: ${(error as Error).message}`),
      );
    }
    const fail = (error: ClusterCacheError) => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      socket.destroy();
      tcp.destroy();
      reject(error);
    };
    const onAbort = () => fail(cancellation(signal));
    const timer = setTimeout(
      () => fail(connectTimedOut(url)),
      Math.max(0, deadline - performance.now()),
    );
    signal?.addEventListener("abort", onAbort, { once: true });
    socket.once("secureConnect", () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      socket.off("error", onError);
      resolve(socket);
    });
    const onError = (error: Error & { code?: string }) => {
      const problem = certificateProblem(error);
      if (!problem && target.clientCertificatePem && target.clientKeyPem) {
        // Deno's TLS stack refuses a client key whose private part is damaged (the fast check
        // read only its public half) with an error that reads as a network fault: tell them apart.
        const keyProblem = fullKeyCheck(target);
        if (keyProblem) return fail(keyProblem);
      }
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
    };
    socket.on("error", onError);
  });
}

/** The full key check's verdict for each target, once: a failing server may be retried often. */
const fullKeyChecks = new WeakMap<PinnedTarget, ClusterCacheError | null>();

function fullKeyCheck(target: PinnedTarget): ClusterCacheError | null {
  let verdict = fullKeyChecks.get(target);
  if (verdict === undefined) {
    try {
      checkKeyPairFully(target.clientCertificatePem!, target.clientKeyPem!);
      verdict = null;
    } catch (error) {
      verdict = error as ClusterCacheError;
    }
    fullKeyChecks.set(target, verdict);
  }
  return verdict;
}

/** Why a connection being made was given up: close()'s reason, else a cancelled connect. */
function cancellation(signal: AbortSignal | undefined): ClusterCacheError {
  return signal?.reason instanceof ClusterCacheError
    ? signal.reason
    : new ClusterCacheError("Timeout", "the connection was cancelled");
}

function connectTimedOut(url: URL): ClusterCacheError {
  return new ClusterCacheError(
    "Timeout",
    `connecting to ${url.host} took over ${CONNECT_TIMEOUT_MS}ms`,
  );
}

/**
 * A TCP connection to the server, its address checked against the denied networks before
 * anything has gone over it.
 */
function connectTcp(
  url: URL,
  host: string,
  deniedNetworks: readonly string[],
  signal?: AbortSignal,
): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port: Number(url.port || 443) });
    const fail = (error: ClusterCacheError) => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      socket.destroy();
      reject(error);
    };
    const onAbort = () => fail(cancellation(signal));
    const onError = (error: Error & { code?: string }) =>
      fail(new ClusterCacheError("Unreachable", `${url.host}: ${networkProblem(error)}`));
    const timer = setTimeout(() => fail(connectTimedOut(url)), CONNECT_TIMEOUT_MS);
    signal?.addEventListener("abort", onAbort, { once: true });
    socket.on("error", onError);
    socket.once("connect", () => {
      // Where the name led (the main thread checked the name; this is the address it reached).
      const address = socket.remoteAddress;
      if (!address) {
        return fail(
          new ClusterCacheError(
            "Unreachable",
            `${url.host}: the connection's address cannot be told, so it cannot be checked against the denied networks; nothing was sent`,
          ),
        );
      }
      const network = deniedAddress(address, deniedNetworks);
      if (network) {
        return fail(
          new ClusterCacheError(
            "InvalidKubeconfig",
            `the server ${host} resolved to ${address}, in the denied network ${network} (link-local and cloud metadata addresses are refused; see options.deniedNetworks); nothing was sent`,
          ),
        );
      }
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      socket.off("error", onError);
      // TLS runs on it from now on, and reports its failures; an error here must not go unheard.
      socket.on("error", () => {});
      resolve(socket);
    });
  });
}

/** A TCP connection through an HTTP proxy to `authority` (`CONNECT`), before TLS starts on it. */
function connectThroughProxy(
  proxyUrl: string,
  authority: string,
  signal?: AbortSignal,
): Promise<net.Socket> {
  let proxy: URL;
  let authorization: string | undefined;
  try {
    ({ url: proxy, authorization } = parseProxyUrl(proxyUrl));
  } catch (error) {
    return Promise.reject(error);
  }
  if (signal?.aborted) {
    return Promise.reject(
      new ClusterCacheError("Timeout", `through the proxy ${proxy.host}: cancelled`),
    );
  }
  const auth = authorization ? `Proxy-Authorization: ${authorization}\r\n` : "";
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: proxy.hostname, port: Number(proxy.port || 80) });
    let head = "";
    const onAbort = () => fail("cancelled");
    const onError = (error: Error) => fail(error.message);
    const fail = (message: string) => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      socket.destroy();
      reject(new ClusterCacheError("Unreachable", `through the proxy ${proxy.host}: ${message}`));
    };
    const timer = setTimeout(() => fail("no answer to CONNECT"), CONNECT_TIMEOUT_MS);
    // Removed once connected: the signal is one request's, the connection may outlive it.
    signal?.addEventListener("abort", onAbort, { once: true });
    socket.on("error", onError);
    socket.once("connect", () => {
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
      signal?.removeEventListener("abort", onAbort);
      socket.off("error", onError);
      // TLS runs on it from now on, and reports its failures; an error here must not go unheard.
      socket.on("error", () => {});
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
