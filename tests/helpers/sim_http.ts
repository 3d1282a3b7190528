/**
 * A small HTTPS client for tests that talk to an API server directly: a simulated one, or a real
 * one given its URL and credentials.
 */
import type { ClusterCredentials } from "../../testing/sim/api_server.ts";

/** What the client needs of a server. `SimulatedApiServer` is one. */
export interface HttpServerLike {
  readonly url: string;
  credentials(): ClusterCredentials;
}

export interface SimResponse {
  status: number;
  headers: Headers;
  text: string;
  // deno-lint-ignore no-explicit-any
  json: any;
}

export type SimAuth = "certificate" | "token" | "none";

export class SimHttp implements AsyncDisposable {
  readonly #server: HttpServerLike;
  readonly #client: Deno.HttpClient;
  readonly #token: string | undefined;
  readonly #watches = new Set<AbortController>();

  constructor(server: HttpServerLike, auth: SimAuth = "certificate", caPem?: string) {
    const c = server.credentials();
    this.#server = server;
    this.#client = auth === "certificate"
      ? Deno.createHttpClient({
        caCerts: [caPem ?? c.caPem],
        cert: c.clientCertificatePem,
        key: c.clientKeyPem,
      })
      : Deno.createHttpClient({ caCerts: [caPem ?? c.caPem] });
    this.#token = auth === "token" ? c.token : undefined;
  }

  async request(
    method: string,
    path: string,
    options: {
      body?: unknown;
      contentType?: string;
      accept?: string;
      timeoutMs?: number;
      signal?: AbortSignal;
    } = {},
  ): Promise<SimResponse> {
    const headers = new Headers();
    if (this.#token) headers.set("authorization", `Bearer ${this.#token}`);
    if (options.accept) headers.set("accept", options.accept);
    let body: string | undefined;
    if (options.body !== undefined) {
      body = typeof options.body === "string" ? options.body : JSON.stringify(options.body);
      headers.set("content-type", options.contentType ?? "application/json");
    }
    const response = await fetch(this.#server.url + path, {
      method,
      headers,
      ...(body === undefined ? {} : { body }),
      client: this.#client,
      signal: AbortSignal.any([
        AbortSignal.timeout(options.timeoutMs ?? 15_000),
        ...(options.signal ? [options.signal] : []),
      ]),
    });
    const text = await response.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: response.status, headers: response.headers, text, json };
  }

  /** Starts a GET and hands back the response unread, for tests that pace the reading themselves. */
  open(path: string, signal: AbortSignal): Promise<Response> {
    const headers = new Headers();
    if (this.#token) headers.set("authorization", `Bearer ${this.#token}`);
    return fetch(this.#server.url + path, { client: this.#client, headers, signal });
  }

  get(path: string, accept?: string): Promise<SimResponse> {
    return this.request("GET", path, accept ? { accept } : {});
  }

  /** Opens a watch and collects parsed events until `until` returns true or the stream ends. */
  async watch(
    path: string,
    until: (events: { type: string; object: Record<string, unknown> }[]) => boolean,
    timeoutMs = 10_000,
  ): Promise<
    { status: number; events: { type: string; object: Record<string, unknown> }[]; ended: boolean }
  > {
    const abort = new AbortController();
    this.#watches.add(abort);
    const timer = setTimeout(() => abort.abort(), timeoutMs);
    const events: { type: string; object: Record<string, unknown> }[] = [];
    let ended = false;
    let status = 0;
    try {
      const headers = new Headers();
      if (this.#token) headers.set("authorization", `Bearer ${this.#token}`);
      const response = await fetch(this.#server.url + path, {
        client: this.#client,
        headers,
        signal: abort.signal,
      });
      status = response.status;
      if (!response.body) return { status, events, ended: true };
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) {
            ended = true;
            break;
          }
          buffer += value;
          let newline;
          while ((newline = buffer.indexOf("\n")) >= 0) {
            const line = buffer.slice(0, newline);
            buffer = buffer.slice(newline + 1);
            if (line.trim()) events.push(JSON.parse(line));
          }
          if (until(events)) break;
        }
      } finally {
        await reader.cancel().catch(() => {});
      }
    } catch (error) {
      if (!abort.signal.aborted) throw error;
    } finally {
      clearTimeout(timer);
      this.#watches.delete(abort);
    }
    return { status, events, ended };
  }

  close(): void {
    for (const w of this.#watches) w.abort();
    this.#client.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    this.close();
    return Promise.resolve();
  }
}
