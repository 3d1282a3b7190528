/**
 * One request and its response on a simulated API server, the same over HTTP/1.1 and HTTP/2: the
 * router answers whole bodies or streams (watches, slow bodies), and a fault can reset the stream
 * (RST_STREAM on HTTP/2, an aborted body on HTTP/1.1). Loaded by the simulator only.
 *
 * @module
 */

/** Who is on the other end of a connection, as the TLS handshake saw them. */
export interface Peer {
  /** Whether the client presented a certificate the connection's CA verifies. */
  readonly authorized: boolean;
  /** SHA-256 fingerprint of that certificate (upper-case hex with colons). */
  readonly fingerprint256?: string;
  /** Its subject's common name (the user name). */
  readonly commonName?: string;
  /** Its subject's organizations (the groups). */
  readonly organizations?: readonly string[];
}

/** A client connection as a request sees it. */
export interface ConnectionInfo {
  /** Unique within the server's lifetime. */
  readonly id: number;
  /** What ALPN chose. */
  readonly protocol: "h2" | "http/1.1";
  /** The client, as TLS authenticated it. */
  readonly peer: Peer;
  /** Resets the connection (TCP reset: every stream on it ends without a terminator). */
  reset(): void;
}

/** Thrown into a response body to reset its stream; prints as what it is if the runtime logs it. */
class StreamReset extends Error {
  constructor() {
    super("stream reset by the simulator (fault injection)");
    this.name = "StreamReset";
  }
  [Symbol.for("Deno.customInspect")](): string {
    return `sim: ${this.message}`;
  }
}

const encoder = new TextEncoder();

/** A request being answered; the router's whole view of HTTP. */
export class Exchange {
  /** The HTTP method. */
  readonly method: string;
  /** The request URL. */
  readonly url: URL;
  /** The request headers. */
  readonly headers: Headers;
  /** The connection it came on. */
  readonly connection: ConnectionInfo;
  /** The response, once the router has begun it. */
  readonly response: Promise<Response>;
  readonly #request: Request;
  #resolve!: (response: Response) => void;
  #head: { status: number; headers: Headers } | undefined;
  readonly #warnings: string[] = [];
  #stream: ReadableStreamDefaultController<Uint8Array> | undefined;
  #responded = false;
  #finished = false;
  readonly #closeListeners = new Set<() => void>();

  constructor(request: Request, connection: ConnectionInfo) {
    this.#request = request;
    this.method = request.method;
    this.url = new URL(request.url);
    this.headers = request.headers;
    this.connection = connection;
    this.response = new Promise((resolve) => this.#resolve = resolve);
  }

  /** The request body, chunk by chunk. */
  async *body(): AsyncIterable<Uint8Array> {
    if (this.#request.body) yield* this.#request.body;
  }

  /** Whether the status line has been decided (a failure can then only reset the stream). */
  get headersSent(): boolean {
    return this.#head !== undefined;
  }

  /** Whether the response ended, was reset, or the client went away. */
  get finished(): boolean {
    return this.#finished;
  }

  /** Bytes written to a streamed body that the client has not taken yet. */
  get bufferedBytes(): number {
    return Math.max(0, -(this.#stream?.desiredSize ?? 0));
  }

  /** Calls `listener` once when the exchange ends for any reason (as Node's `close`). */
  onClose(listener: () => void): void {
    if (this.#finished) listener();
    else this.#closeListeners.add(listener);
  }

  /** Decides the status and headers; nothing is sent until the first write or the end. */
  writeHead(status: number, headers: Record<string, string | number>): void {
    const out = new Headers();
    for (const [name, value] of Object.entries(headers)) {
      // The runtime frames bodies itself (content-length or chunks or DATA frames).
      if (name.toLowerCase() !== "content-length") out.set(name, String(value));
    }
    for (const warning of this.#warnings) {
      out.append("warning", `299 - ${JSON.stringify(warning)}`);
    }
    this.#head = { status, headers: out };
  }

  /** Adds a `Warning` header to the response (kubectl prints them as `Warning: ...`). */
  warn(text: string): void {
    this.#warnings.push(text);
  }

  /** Sends the headers now and streams the body from here on (watches). */
  flushHeaders(): void {
    if (this.#stream || this.#responded || this.#finished) return;
    const head = this.#head ?? { status: 200, headers: new Headers() };
    const body = new ReadableStream<Uint8Array>({
      start: (controller) => {
        this.#stream = controller;
      },
      cancel: () => this.#finish(),
    }, new ByteLengthQueuingStrategy({ highWaterMark: 0 }));
    this.#respond(new Response(body, head));
  }

  /** Writes body bytes (streaming from here on). */
  write(chunk: string | Uint8Array<ArrayBuffer>): void {
    if (this.#finished) return;
    this.flushHeaders();
    this.#stream?.enqueue(typeof chunk === "string" ? encoder.encode(chunk) : chunk);
  }

  /** Ends the response, with `chunk` as its (last part of the) body. */
  end(chunk?: string | Uint8Array<ArrayBuffer>): void {
    if (this.#finished) return;
    if (!this.#stream) {
      const head = this.#head ?? { status: 200, headers: new Headers() };
      this.#respond(new Response(chunk ?? null, head));
      this.#finish();
      return;
    }
    if (chunk !== undefined) this.write(chunk);
    try {
      this.#stream.close();
    } catch { /* the client cancelled first */ }
    this.#finish();
  }

  /** Resets the stream: RST_STREAM on HTTP/2, a body cut off mid-way on HTTP/1.1. */
  reset(): void {
    if (this.#finished) return;
    this.flushHeaders();
    try {
      this.#stream?.error(new StreamReset());
    } catch { /* already closed */ }
    this.#finish();
  }

  /** The client or its connection went away: let go of the exchange. */
  abandon(): void {
    if (this.#finished) return;
    // A response nobody reads still settles the runtime's handler promise.
    if (!this.#responded) this.#respond(new Response(null, { status: 499 }));
    try {
      this.#stream?.error(new StreamReset());
    } catch { /* already closed */ }
    this.#finish();
  }

  #respond(response: Response): void {
    this.#responded = true;
    this.#resolve(response);
  }

  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    for (const listener of this.#closeListeners) listener();
    this.#closeListeners.clear();
  }
}
