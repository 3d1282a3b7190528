/**
 * The network side of a simulated API server: a TLS listener on 127.0.0.1 that offers HTTP/2 and
 * HTTP/1.1 by ALPN, as kube-apiserver does, authenticates client certificates, and carries the
 * connection-level faults (refuse, hang, reset, GOAWAY). Loaded by the simulator only.
 *
 * TLS ends here in `node:tls` (the only server API that shows client certificates); each connection's
 * plaintext then goes over loopback to a `Deno.serve` that speaks HTTP/1.1 and HTTP/2 (`node:http2`
 * is not safe under Deno: it aborts the process on some GOAWAY paths). The upstream port names the
 * connection, so the request handler knows who the client is.
 *
 * @module
 */

import tls from "node:tls";
import net from "node:net";
import { Buffer } from "node:buffer";
import { Transform } from "node:stream";
import type { Socket } from "node:net";
import { sleep } from "../../src/shared/backoff.ts";
import { type ConnectionInfo, Exchange, type Peer } from "./exchange.ts";

/**
 * Where the listener is.
 *
 * @example Stopping, hanging and serving again
 * ```ts
 * import assert from "node:assert/strict";
 * import { type ListenerState, SimulatedApiServer } from "@fleetkit/clustercache/testing";
 *
 * await using server = await SimulatedApiServer.start({ name: "moody" });
 * const states: ListenerState[] = [server.listenerState];
 * await server.hang(true); // accepts connections, never answers
 * states.push(server.listenerState);
 * await server.hang(false);
 * await server.stop(); // connection refused
 * states.push(server.listenerState);
 * await server.start(); // same port, same credentials
 * states.push(server.listenerState);
 * assert.deepEqual(states, ["serving", "hung", "stopped", "serving"]);
 * ```
 */
export type ListenerState = "serving" | "stopped" | "hung";

/** The server's TLS material. */
export interface ServingCredentials {
  keyPem: string;
  certPem: string;
  /** The CA that client certificates must chain to. */
  caPem: string;
}

/**
 * An open client connection, for tests that count them.
 *
 * @example Every request of one Deno HTTP client shares one HTTP/2 connection
 * ```ts
 * import assert from "node:assert/strict";
 * import { type OpenConnection, SimulatedApiServer } from "@fleetkit/clustercache/testing";
 *
 * await using server = await SimulatedApiServer.start({ name: "multiplexed" });
 * const { caPem, token } = server.credentials();
 * using client = Deno.createHttpClient({ caCerts: [caPem] });
 * const headers = { authorization: `Bearer ${token}` };
 * await Promise.all(["/api", "/apis", "/version"].map(async (path) => {
 *   await (await fetch(server.url + path, { client, headers })).body?.cancel();
 * }));
 * const connections: OpenConnection[] = server.connections;
 * assert.deepEqual(connections.map((c) => [c.protocol, c.requests]), [["h2", 3]]);
 * ```
 */
export interface OpenConnection {
  /** The id a request record's `connection` refers to. */
  readonly id: number;
  /** What ALPN chose. */
  readonly protocol: "h2" | "http/1.1";
  /** Requests it has carried. */
  readonly requests: number;
  /** Whether a GOAWAY told the client to open new connections for new requests. */
  readonly goingAway: boolean;
}

/** kube-apiserver's SETTINGS_MAX_CONCURRENT_STREAMS (k8s.io/apiserver secure_serving.go). */
const KUBE_APISERVER_MAX_STREAMS = 100;

/**
 * Passes an HTTP/2 server's bytes on, with its first frame (its SETTINGS) advertising
 * kube-apiserver's stream limit instead of `Deno.serve`'s 200, so clients meet the limit they
 * would meet in production. The rest passes untouched.
 */
function settingsAsKubeApiserver(): Transform {
  let head: Buffer | undefined = Buffer.alloc(0);
  const pass = (done: (error: null, data?: Buffer) => void) => {
    const out = head;
    head = undefined;
    done(null, out);
  };
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      if (head === undefined) return done(null, chunk);
      head = Buffer.concat([head, chunk]);
      if (head.length < 9) return done();
      const length = head.readUIntBE(0, 3);
      // Anything but a SETTINGS frame of whole entries (16-bit id, 32-bit value) passes untouched.
      if (head[3] !== 0x4 || length % 6 !== 0 || length > 16_384) return pass(done);
      if (head.length < 9 + length) return done();
      for (let at = 9; at + 6 <= 9 + length; at += 6) {
        if (head.readUInt16BE(at) === 0x3) head.writeUInt32BE(KUBE_APISERVER_MAX_STREAMS, at + 2);
      }
      pass(done);
    },
    flush(done) {
      done(null, head?.length ? head : undefined);
    },
  });
}

class Connection implements ConnectionInfo {
  readonly id: number;
  readonly protocol: "h2" | "http/1.1";
  readonly peer: Peer;
  readonly exchanges = new Set<Exchange>();
  requests = 0;
  /** Pending close of a connection told to go away. */
  closeTimer: ReturnType<typeof setTimeout> | undefined;
  readonly backend: Deno.HttpServer<Deno.NetAddr>;
  readonly #socket: Socket;

  constructor(id: number, socket: tls.TLSSocket, backend: Deno.HttpServer<Deno.NetAddr>) {
    this.id = id;
    this.#socket = socket;
    this.backend = backend;
    this.protocol = socket.alpnProtocol === "h2" ? "h2" : "http/1.1";
    const certificate = socket.authorized ? socket.getPeerCertificate() : undefined;
    this.peer = {
      authorized: socket.authorized,
      ...(certificate?.fingerprint256 ? { fingerprint256: certificate.fingerprint256 } : {}),
      ...(certificate?.subject?.CN ? { commonName: String(certificate.subject.CN) } : {}),
      ...(certificate?.subject?.O
        ? { organizations: [certificate.subject.O].flat().map(String) }
        : {}),
    };
  }

  reset(): void {
    clearTimeout(this.closeTimer);
    this.#socket.destroy();
  }

  /** The client's connection is gone: requests still reaching the backend from it are refused. */
  isClosed = false;

  closed(): void {
    this.isClosed = true;
    for (const exchange of [...this.exchanges]) exchange.abandon();
    this.exchanges.clear();
  }
}

const GOAWAY_CLOSE_DELAY_MS = 1000;

/**
 * Ports a restarted server can always take back: below the kernel's ephemeral range (Linux 32768-60999,
 * macOS 49152-65535), so no outgoing connection of this machine is ever given one as its local port.
 * A port from the ephemeral range, freed by a stop, could be taken by any client socket meanwhile and
 * the restart would fail with EADDRINUSE for as long as that connection lives.
 */
const STABLE_PORTS = { first: 20_000, last: 32_767 };

async function listen(server: net.Server, port: number): Promise<number> {
  const chosen = port === 0;
  for (let attempt = 0;; attempt++) {
    const candidate = chosen
      ? STABLE_PORTS.first + Math.floor(Math.random() * (STABLE_PORTS.last - STABLE_PORTS.first))
      : port;
    try {
      return await new Promise<number>((resolve, reject) => {
        const onError = (error: Error) => {
          server.off("listening", onListening);
          reject(error);
        };
        const onListening = () => {
          server.off("error", onError);
          resolve((server.address() as net.AddressInfo).port);
        };
        server.once("error", onError);
        server.once("listening", onListening);
        server.listen(candidate, "127.0.0.1");
      });
    } catch (error) {
      if ((error as { code?: string }).code !== "EADDRINUSE") throw error;
      // Taken by another server: try another; our own port, freed a moment ago: wait for it.
      if (chosen ? attempt >= 200 : attempt >= 250) throw error;
      if (!chosen) await sleep(20);
    }
  }
}

function closeServer(server: net.Server | undefined): Promise<void> {
  if (!server?.listening) return Promise.resolve();
  return new Promise((resolve) => server.close(() => resolve()));
}

/**
 * A TLS listener that hands each request to `handler` as an {@linkcode Exchange}.
 *
 * @example
 * ```ts ignore
 * const listener = new TlsListener((exchange) => exchange.end("ok"));
 * listener.setCredentials({ keyPem, certPem, caPem });
 * const port = await listener.start(0);
 * ```
 */
export class TlsListener {
  readonly #handler: (exchange: Exchange) => void;
  readonly #protocols: string[];
  #credentials: ServingCredentials | undefined;
  #credentialsChanged = false;
  #state: ListenerState = "stopped";
  #port = 0;
  #tls: tls.Server | undefined;
  #raw: net.Server | undefined;
  readonly #rawSockets = new Set<Socket>();
  /** TCP connections to the TLS server (those past their handshake are reset as connections too). */
  readonly #handshaking = new Set<Socket>();
  readonly #connections = new Map<number, Connection>();
  /** Upstream (loopback) port to connection. */
  readonly #byUpstreamPort = new Map<number, Connection>();
  #nextId = 1;
  #backend: Deno.HttpServer<Deno.NetAddr> | undefined;
  /** Backends told to shut down by a GOAWAY; they close when their last stream ends. */
  readonly #draining = new Set<Deno.HttpServer<Deno.NetAddr>>();

  /** @param http2 Whether ALPN offers HTTP/2 (else HTTP/1.1 only). */
  constructor(handler: (exchange: Exchange) => void, http2 = true) {
    this.#handler = handler;
    this.#protocols = http2 ? ["h2", "http/1.1"] : ["http/1.1"];
  }

  /** Serving, stopped or hung. */
  get state(): ListenerState {
    return this.#state;
  }

  /** The port (kept across stop/start and hangs). */
  get port(): number {
    return this.#port;
  }

  /** Open client connections. */
  get connections(): OpenConnection[] {
    return [...this.#connections.values()].map((c) => ({
      id: c.id,
      protocol: c.protocol,
      requests: c.requests,
      goingAway: c.backend !== this.#backend,
    }));
  }

  /** Sets the certificates; they take effect at the next {@linkcode start}. */
  setCredentials(credentials: ServingCredentials): void {
    this.#credentials = credentials;
    this.#credentialsChanged = true;
  }

  /** Starts (or restarts) serving on `port` (0: a free one, remembered). No-op when serving. */
  async start(port = this.#port): Promise<number> {
    if (this.#state === "serving") return this.#port;
    await this.#closeRaw();
    this.#backend ??= this.#startBackend();
    if (!this.#tls || this.#credentialsChanged) {
      this.#tls = this.#createTlsServer();
      this.#credentialsChanged = false;
    }
    this.#port = await listen(this.#tls, port);
    this.#state = "serving";
    return this.#port;
  }

  /** Stops listening and resets every connection: clients get ECONNREFUSED until `start`. */
  async stop(): Promise<void> {
    this.#state = "stopped";
    // close() only stops accepting; its callback waits for open connections, so reset them first.
    const closing = Promise.all([closeServer(this.#tls), this.#closeRaw()]);
    this.resetConnections();
    for (const socket of this.#handshaking) socket.destroy();
    this.#handshaking.clear();
    await closing;
  }

  /**
   * `true`: accepts new connections and never answers (not even the TLS handshake); open ones stay
   * open and the handler sees {@linkcode state} `"hung"`. `false`: resets the stuck connections and
   * serves again.
   */
  async hang(on: boolean): Promise<void> {
    if (on) {
      if (this.#state !== "serving") return;
      this.#state = "hung";
      // Stop accepting at once; close()'s callback would wait for the open connections a hang keeps.
      if (this.#tls?.listening) this.#tls.close();
      this.#raw = net.createServer((socket) => {
        this.#rawSockets.add(socket);
        socket.on("close", () => this.#rawSockets.delete(socket));
        socket.on("error", () => {});
      });
      await listen(this.#raw, this.#port);
    } else if (this.#state === "hung") {
      this.#state = "stopped";
      await this.#closeRaw();
      this.resetConnections();
      await this.start();
    }
  }

  /** Resets every client connection (TCP level). */
  resetConnections(): void {
    for (const connection of [...this.#connections.values()]) connection.reset();
  }

  /**
   * Sends GOAWAY on every HTTP/2 connection (and closes idle HTTP/1.1 ones): clients open new
   * connections for new requests while streams in flight, watches included, go on to their end.
   * This is what kube-apiserver's `--goaway-chance` does to a connection.
   *
   * @returns How many connections were told.
   */
  goAway(): number {
    const backend = this.#backend;
    if (!backend) return 0;
    const told = [...this.#connections.values()].filter((c) => c.backend === backend).length;
    this.#backend = this.#startBackend();
    this.#draining.add(backend);
    void backend.shutdown().finally(() => this.#draining.delete(backend));
    for (const connection of this.#connections.values()) this.#closeIfDone(connection);
    return told;
  }

  /**
   * A connection told to go away closes once its last stream has ended, as Go's HTTP/2 server does
   * (after a second, by which the last frames have arrived).
   */
  #closeIfDone(connection: Connection): void {
    if (
      connection.backend === this.#backend || connection.exchanges.size > 0 || connection.isClosed
    ) return;
    clearTimeout(connection.closeTimer);
    connection.closeTimer = setTimeout(() => {
      if (connection.exchanges.size === 0) connection.reset();
    }, GOAWAY_CLOSE_DELAY_MS);
  }

  /** Stops everything for good. */
  async close(): Promise<void> {
    await this.stop();
    const backends = [this.#backend, ...this.#draining].filter((b) => b !== undefined);
    this.#backend = undefined;
    await Promise.all(backends.map((b) => b.shutdown()));
  }

  #startBackend(): Deno.HttpServer<Deno.NetAddr> {
    return Deno.serve({
      hostname: "127.0.0.1",
      port: 0,
      onListen: () => {},
      onError: () => new Response(null, { status: 500 }),
    }, (request, info) => {
      const connection = this.#byUpstreamPort.get(info.remoteAddr.port);
      // Bytes already on their way when the client's connection closed: nobody will read the answer.
      if (!connection || connection.isClosed) return new Response(null, { status: 421 });
      connection.requests++;
      const exchange = new Exchange(request, connection);
      connection.exchanges.add(exchange);
      exchange.onClose(() => {
        connection.exchanges.delete(exchange);
        this.#closeIfDone(connection);
      });
      // Delivered, or the backend's side closed first: a response never ended would keep shutdown()
      // waiting.
      info.completed.catch(() => {}).finally(() => exchange.abandon());
      this.#handler(exchange);
      return exchange.response;
    });
  }

  #createTlsServer(): tls.Server {
    const credentials = this.#credentials;
    if (!credentials) throw new Error("TlsListener: setCredentials before start");
    const server = tls.createServer({
      key: credentials.keyPem,
      cert: credentials.certPem,
      ca: [credentials.caPem],
      requestCert: true,
      rejectUnauthorized: false,
      ALPNProtocols: this.#protocols,
    }, (socket) => this.#accept(socket));
    server.on("tlsClientError", () => {});
    // A connection whose handshake never ends (a client that sends nothing, or one whose own TLS
    // failed and left its socket open) is never handed to #accept: kept here, stop() resets it too,
    // where close() would wait for it forever (Go's server closes such connections after 5 s).
    server.on("connection", (socket: Socket) => {
      this.#handshaking.add(socket);
      socket.on("error", () => {});
      socket.once("close", () => this.#handshaking.delete(socket));
    });
    return server;
  }

  #accept(socket: tls.TLSSocket): void {
    socket.on("error", () => {});
    const backend = this.#backend;
    if (!backend || this.#state !== "serving") {
      socket.destroy();
      return;
    }
    const connection = new Connection(this.#nextId++, socket, backend);
    this.#connections.set(connection.id, connection);
    const upstream = net.connect(backend.addr.port, "127.0.0.1");
    upstream.on("error", () => socket.destroy());
    let upstreamPort: number | undefined;
    upstream.on("connect", () => {
      upstreamPort = upstream.localPort!;
      this.#byUpstreamPort.set(upstreamPort, connection);
      socket.pipe(upstream);
      if (connection.protocol === "h2") upstream.pipe(settingsAsKubeApiserver()).pipe(socket);
      else upstream.pipe(socket);
    });
    // A clean end from the backend (an idle connection after GOAWAY, an HTTP/1.1 response with
    // `Connection: close`) is piped on as an end, and the connection is closed once it is sent, as
    // kube-apiserver closes it.
    upstream.on("close", () => {
      if (!socket.writableEnded) socket.destroy();
      else if (socket.writableFinished) socket.destroy();
      else socket.once("finish", () => socket.destroy());
    });
    socket.on("close", () => {
      clearTimeout(connection.closeTimer);
      upstream.destroy();
      // Read at connect: a destroyed socket no longer knows its port, and a stale entry would hand a
      // later request on that port to this closed connection.
      if (upstreamPort !== undefined) this.#byUpstreamPort.delete(upstreamPort);
      this.#connections.delete(connection.id);
      connection.closed();
    });
  }

  async #closeRaw(): Promise<void> {
    const raw = this.#raw;
    this.#raw = undefined;
    for (const socket of this.#rawSockets) socket.destroy();
    this.#rawSockets.clear();
    await closeServer(raw);
  }
}
