/**
 * What a conformance case talks to: an API server (the simulator's or a real kube-apiserver) that
 * serves the built-in kinds and Cluster API's `Cluster` CRD, reached as its admin over HTTPS.
 */
import tls from "node:tls";
import { type HttpServerLike, SimHttp } from "../helpers/sim_http.ts";

/** One answer of the server. */
export interface Answer<T = Record<string, unknown>> {
  status: number;
  body: T;
  headers: Headers;
}

/** A watch event as it travels. */
export interface WireEvent {
  type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";
  object: Record<string, unknown> & {
    metadata?: {
      name?: string;
      resourceVersion?: string;
      annotations?: Record<string, string>;
    };
    code?: number;
    reason?: string;
  };
}

type RequestOptions = { body?: unknown; contentType?: string; query?: Record<string, string> };

function withQuery(path: string, query: Record<string, string> = {}): string {
  const params = new URLSearchParams(query).toString();
  return params ? `${path}?${params}` : path;
}

/** An API server under test. */
export class Target {
  /** Which server this is, for messages. */
  readonly name: string;
  readonly #http: SimHttp;
  readonly #server: HttpServerLike;
  readonly #compact: () => Promise<unknown>;

  /**
   * @param name `simulator` or `kube-apiserver`.
   * @param server The server's URL and admin credentials.
   * @param compact Forgets history older than now, as etcd compaction does (the simulator's
   *   bounded history needs nothing more than writes).
   */
  constructor(
    name: string,
    server: HttpServerLike,
    compact: () => Promise<unknown> = () => Promise.resolve(),
  ) {
    this.name = name;
    this.#http = new SimHttp(server);
    this.#server = server;
    this.#compact = compact;
  }

  /** Forgets history older than now (etcd compaction on a real server). */
  compact(): Promise<unknown> {
    return this.#compact();
  }

  /** Sends a request; never throws for HTTP errors. */
  async request<T = Record<string, unknown>>(
    method: string,
    path: string,
    options: RequestOptions = {},
  ): Promise<Answer<T>> {
    const answer = await this.#http.request(method, withQuery(path, options.query), {
      ...(options.body === undefined ? {} : { body: options.body }),
      ...(options.contentType ? { contentType: options.contentType } : {}),
      timeoutMs: 30_000,
    });
    return {
      status: answer.status,
      body: (answer.json ?? answer.text) as T,
      headers: answer.headers,
    };
  }

  /** Like {@linkcode Target.request}, but a non-2xx answer throws with the server's words. */
  async ok<T = Record<string, unknown>>(
    method: string,
    path: string,
    options: RequestOptions = {},
  ): Promise<T> {
    const answer = await this.request<T>(method, path, options);
    if (answer.status >= 300) {
      throw new Error(
        `${this.name}: ${method} ${path} gave ${answer.status}: ${JSON.stringify(answer.body)}`,
      );
    }
    return answer.body;
  }

  /**
   * Opens a watch and collects events until `until` says stop (or `timeoutMs` passes).
   *
   * @returns The HTTP status and the events read.
   */
  async watch(
    path: string,
    query: Record<string, string>,
    until: (events: WireEvent[]) => boolean,
    timeoutMs = 15_000,
  ): Promise<{ status: number; events: WireEvent[] }> {
    const { status, events } = await this.#http.watch(
      withQuery(path, { ...query, watch: "true" }),
      (seen) => until(seen as WireEvent[]),
      timeoutMs,
    );
    return { status, events: events as WireEvent[] };
  }

  /** The protocol the server picks by ALPN when a client offers HTTP/2 and HTTP/1.1. */
  alpn(): Promise<string | false> {
    const url = new URL(this.#server.url);
    const c = this.#server.credentials();
    return new Promise((resolve, reject) => {
      const socket = tls.connect({
        host: url.hostname,
        port: Number(url.port),
        ca: [c.caPem],
        cert: c.clientCertificatePem,
        key: c.clientKeyPem,
        ALPNProtocols: ["h2", "http/1.1"],
      }, () => {
        resolve(socket.alpnProtocol ?? false);
        socket.destroy();
      });
      socket.on("error", reject);
    });
  }

  /** Releases the HTTP client. */
  close(): void {
    this.#http.close();
  }
}
