/**
 * What a conformance case talks to: an API server (the simulator's or a real kube-apiserver) that
 * serves the built-in kinds and Cluster API's `Cluster` CRD, reached as its admin over HTTPS.
 */

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

/** An API server under test. */
export class Target {
  /** Which server this is, for messages. */
  readonly name: string;
  readonly #url: string;
  readonly #client: Deno.HttpClient;
  readonly #compact: () => Promise<unknown>;

  /**
   * @param name `simulator` or `kube-apiserver`.
   * @param url The server's base URL.
   * @param credentials Its CA and an admin client certificate.
   * @param compact Forgets history older than now, as etcd compaction does (the simulator's
   *   bounded history needs nothing more than writes).
   */
  constructor(
    name: string,
    url: string,
    credentials: { caPem: string; certPem: string; keyPem: string },
    compact: () => Promise<unknown> = () => Promise.resolve(),
  ) {
    this.name = name;
    this.#compact = compact;
    this.#url = url;
    this.#client = Deno.createHttpClient({
      caCerts: [credentials.caPem],
      cert: credentials.certPem,
      key: credentials.keyPem,
    });
  }

  /** Forgets history older than now (etcd compaction on a real server). */
  compact(): Promise<unknown> {
    return this.#compact();
  }

  /** Sends a request; never throws for HTTP errors. */
  async request<T = Record<string, unknown>>(
    method: string,
    path: string,
    options: { body?: unknown; contentType?: string; query?: Record<string, string> } = {},
  ): Promise<Answer<T>> {
    const url = new URL(this.#url + path);
    for (const [k, v] of Object.entries(options.query ?? {})) url.searchParams.set(k, v);
    const response = await fetch(url, {
      method,
      client: this.#client,
      headers: {
        accept: "application/json",
        ...(options.body === undefined
          ? {}
          : { "content-type": options.contentType ?? "application/json" }),
      },
      ...(options.body === undefined ? {} : {
        body: typeof options.body === "string" ? options.body : JSON.stringify(options.body),
      }),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await response.text();
    let body: unknown = text;
    try {
      body = text ? JSON.parse(text) : {};
    } catch {
      // not JSON: keep the text
    }
    return { status: response.status, body: body as T, headers: response.headers };
  }

  /** Like {@linkcode Target.request}, but a non-2xx answer throws with the server's words. */
  async ok<T = Record<string, unknown>>(
    method: string,
    path: string,
    options: { body?: unknown; contentType?: string; query?: Record<string, string> } = {},
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
    const url = new URL(this.#url + path);
    for (const [k, v] of Object.entries({ ...query, watch: "true" })) url.searchParams.set(k, v);
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), timeoutMs);
    const events: WireEvent[] = [];
    let status = 0;
    try {
      const response = await fetch(url, { client: this.#client, signal: abort.signal });
      status = response.status;
      if (!response.ok || !response.body) {
        await response.body?.cancel();
        return { status, events };
      }
      let buffer = "";
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      try {
        while (!until(events)) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let newline;
          while ((newline = buffer.indexOf("\n")) >= 0) {
            const line = buffer.slice(0, newline).trim();
            buffer = buffer.slice(newline + 1);
            if (line) events.push(JSON.parse(line));
          }
        }
      } finally {
        await reader.cancel().catch(() => {});
      }
    } catch (error) {
      if (!abort.signal.aborted) throw error;
    } finally {
      clearTimeout(timer);
    }
    return { status, events };
  }

  /** Releases the HTTP client. */
  close(): void {
    this.#client.close();
  }
}
