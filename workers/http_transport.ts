/**
 * HTTP to one API server from inside its worker, over a {@linkcode PinnedConnection} that trusts the
 * cluster's CA alone and presents its client certificate, with a timeout on every
 * request, QPS/burst limiting, a cap on response size, and errors turned into
 * {@linkcode KubernetesApiError} (the server said no) or {@linkcode ClusterCacheError} (we could not
 * talk to it). No credential ever appears in an error message.
 *
 * @module
 */

import { ClusterCacheError, KubernetesApiError } from "../src/shared/errors.ts";
import type { Status } from "../src/shared/kube_object.ts";
import type { RESTConfig } from "../src/shared/rest_config.ts";
import { redact } from "../src/shared/redact.ts";
import { TokenBucket } from "../src/shared/token_bucket.ts";
import { sleep } from "../src/shared/backoff.ts";
import { PinnedConnection } from "./pinned_connection.ts";
import { untilAborted } from "./until_aborted.ts";

/** Options of one request. */
export interface RequestOptions {
  /** Query parameters; `undefined` values are skipped. */
  query?: Record<string, string | number | boolean | undefined>;
  /** A JSON body (a string is sent as is). */
  body?: unknown;
  /** Content type of the body. Default `application/json`. */
  contentType?: string;
  /** Timeout in ms. Default: the REST config's. */
  timeoutMs?: number;
  /** Cancels the request. */
  signal?: AbortSignal;
  /** Wait for the QPS limiter. Default true; the health probe skips it. */
  limited?: boolean;
}

const REASONS: Record<number, string> = {
  400: "BadRequest",
  401: "Unauthorized",
  403: "Forbidden",
  404: "NotFound",
  405: "MethodNotAllowed",
  406: "NotAcceptable",
  409: "Conflict",
  410: "Expired",
  413: "RequestEntityTooLarge",
  415: "UnsupportedMediaType",
  422: "Invalid",
  429: "TooManyRequests",
  500: "InternalError",
  503: "ServiceUnavailable",
  504: "Timeout",
};

/** Describes a fetch failure by its cause, which names the network error but never credentials. */
function networkCause(error: unknown): string {
  let current: unknown = error;
  let text = "";
  for (let depth = 0; current instanceof Error && depth < 4; depth++) {
    text = current.message;
    current = current.cause;
  }
  return redact(text.replace(/\s+/g, " ").trim() || String(error));
}

/** Retries of one request at most (client-go's default `maxRetries`). */
export const MAX_RETRIES = 10;

/**
 * How long to wait before sending a request again: only for 429 and 5xx answers that carry
 * `Retry-After` (client-go's `checkWait`); `undefined` otherwise.
 */
export function retryAfterMs(response: { status: number; headers: Headers }): number | undefined {
  if (response.status !== 429 && response.status < 500) return undefined;
  const seconds = parseRetryAfter(response.headers.get("retry-after"));
  return seconds === undefined ? undefined : seconds * 1000;
}

/** Parses `Retry-After` (seconds or an HTTP date). */
export function parseRetryAfter(value: string | null): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, Math.ceil((date - Date.now()) / 1000));
}

/** Builds the error for a non-2xx response from its body (a Status when the server sent one). */
export function apiErrorFrom(
  status: number,
  statusText: string,
  body: string,
  retryAfter: string | null,
): KubernetesApiError {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    parsed = undefined;
  }
  const retryAfterSeconds = parseRetryAfter(retryAfter);
  if (parsed && typeof parsed === "object" && (parsed as { kind?: unknown }).kind === "Status") {
    const s = parsed as Status;
    return new KubernetesApiError(
      { ...s, code: typeof s.code === "number" ? s.code : status },
      retryAfterSeconds,
    );
  }
  return new KubernetesApiError(
    {
      kind: "Status",
      apiVersion: "v1",
      metadata: {},
      status: "Failure",
      message: `the server responded with HTTP ${status} ${statusText}`.trim(),
      reason: REASONS[status] ?? "Unknown",
      code: status,
    },
    retryAfterSeconds,
  );
}

/** Talks HTTP to one cluster. */
export class Transport {
  readonly #onResponse: (verb: string, code: string, seconds: number) => void;
  readonly #onRetry: (method: string, code: string) => void;
  readonly #measure: <T>(work: () => T) => T;
  readonly #server: string;
  readonly #connection: PinnedConnection;
  readonly #headers: Record<string, string>;
  readonly #mtls: boolean;
  readonly #timeoutMs: number;
  readonly #maxResponseBytes: number;
  readonly #limiter: TokenBucket;
  /** Writes are refused from then on (epoch ms; sharding's ownership deadline). */
  #writableUntil = Infinity;

  /**
   * @param config Where and how to connect.
   * @param maxResponseBytes Largest body accepted.
   * @param deniedNetworks CIDRs the server's addresses may not fall in.
   */
  constructor(
    config: RESTConfig,
    maxResponseBytes: number,
    onResponse: (verb: string, code: string, seconds: number) => void = () => {},
    measure: <T>(work: () => T) => T = (work) => work(),
    onRetry: (method: string, code: string) => void = () => {},
    deniedNetworks: readonly string[] = [],
  ) {
    this.#onResponse = onResponse;
    this.#onRetry = onRetry;
    this.#measure = measure;
    const mtls = config.clientCertificatePem && config.clientKeyPem
      ? { cert: config.clientCertificatePem, key: config.clientKeyPem }
      : undefined;
    this.#server = config.server.replace(/\/+$/, "");
    this.#connection = new PinnedConnection({
      server: this.#server,
      ...(config.caPem ? { caPem: config.caPem } : {}),
      ...(mtls ? { clientCertificatePem: mtls.cert, clientKeyPem: mtls.key } : {}),
      ...(config.proxyUrl ? { proxyUrl: config.proxyUrl } : {}),
      deniedNetworks,
    });
    this.#headers = { "user-agent": config.userAgent, accept: "application/json" };
    this.#mtls = mtls !== undefined;
    if (config.token && !mtls) this.#headers.authorization = `Bearer ${config.token}`;
    this.#timeoutMs = config.timeoutMs;
    this.#maxResponseBytes = maxResponseBytes;
    this.#limiter = new TokenBucket(config.qps, config.burst);
  }

  /**
   * Refuses writes (anything but GET) sent from `until` (epoch ms) on, until moved again: the
   * replica's ownership of the cluster lapses then unless renewed.
   */
  fence(until: number): void {
    this.#writableUntil = until;
  }

  /** Sends `token` from now on (ignored with a client certificate, as at construction). */
  setToken(token: string): void {
    if (this.#mtls) return;
    if (token) this.#headers.authorization = `Bearer ${token}`;
    else delete this.#headers.authorization;
  }

  /** The server's base URL. */
  get server(): string {
    return this.#server;
  }

  #path(path: string, query: RequestOptions["query"]): string {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query ?? {})) {
      if (v !== undefined) params.set(k, String(v));
    }
    const search = params.toString();
    return search ? `${path}${path.includes("?") ? "&" : "?"}${search}` : path;
  }

  async #fetch(
    method: string,
    path: string,
    options: RequestOptions & { headersTimeoutMs?: number },
  ): Promise<Response> {
    const timeoutMs = options.timeoutMs ?? this.#timeoutMs;
    const timeout = AbortSignal.timeout(timeoutMs);
    // Streams get a shorter deadline for their response headers than for the whole stream.
    const headers = new AbortController();
    const headersTimer = options.headersTimeoutMs === undefined ? undefined : setTimeout(
      () => headers.abort(new DOMException("no response headers", "TimeoutError")),
      options.headersTimeoutMs,
    );
    const signal = AbortSignal.any([
      timeout,
      headers.signal,
      ...(options.signal ? [options.signal] : []),
    ]);
    try {
      return await this.#send(
        method,
        path,
        options,
        signal,
        timeout,
        headersTimer === undefined ? timeoutMs : options.headersTimeoutMs!,
      );
    } finally {
      clearTimeout(headersTimer);
    }
  }

  async #send(
    method: string,
    path: string,
    options: RequestOptions,
    signal: AbortSignal,
    timeout: AbortSignal,
    timeoutMs: number,
  ): Promise<Response> {
    if (options.limited ?? true) {
      try {
        await this.#limiter.take(signal, timeoutMs);
      } catch (error) {
        throw this.#failure(error, method, path, timeoutMs, options.signal);
      }
    }
    const requestHeaders: Record<string, string> = { ...this.#headers };
    let body: string | undefined;
    if (options.body !== undefined) {
      body = typeof options.body === "string" ? options.body : JSON.stringify(options.body);
      requestHeaders["content-type"] = options.contentType ?? "application/json";
    }
    // Checked as the request leaves, after any wait for the limiter: a write queued while this
    // replica owned the cluster must not reach it once another replica may.
    if (method !== "GET" && Date.now() >= this.#writableUntil) {
      throw new ClusterCacheError(
        "NotOwner",
        `${method} ${path}: refused: ${
          this.#writableUntil === 0
            ? "this replica does not own the cluster"
            : `this replica's ownership of the cluster lapsed ${
              Date.now() - this.#writableUntil
            }ms ago`
        } (sharding)`,
      );
    }
    const started = performance.now();
    try {
      if (timeout.aborted) throw timeout.reason;
      const response = await this.#connection.request({
        method,
        path: this.#path(path, options.query),
        headers: requestHeaders,
        ...(body === undefined ? {} : { body }),
        signal,
      });
      this.#onResponse(method, String(response.status), (performance.now() - started) / 1000);
      return response;
    } catch (error) {
      this.#onResponse(method, "<error>", (performance.now() - started) / 1000);
      throw this.#failure(error, method, path, timeoutMs, options.signal);
    }
  }

  #failure(
    error: unknown,
    method: string,
    path: string,
    timeoutMs: number,
    callerSignal?: AbortSignal,
  ): Error {
    if (callerSignal?.aborted) {
      return callerSignal.reason instanceof Error
        ? callerSignal.reason
        : new DOMException("aborted", "AbortError");
    }
    if (
      error instanceof DOMException &&
      (error.name === "TimeoutError" || error.name === "AbortError")
    ) {
      return new ClusterCacheError("Timeout", `${method} ${path} timed out after ${timeoutMs}ms`);
    }
    if (error instanceof ClusterCacheError || error instanceof KubernetesApiError) return error;
    return new ClusterCacheError("Unreachable", `${method} ${path}: ${networkCause(error)}`);
  }

  async #readBody(response: Response, method: string, path: string): Promise<string> {
    if (!response.body) return "";
    const reader = response.body.getReader();
    const chunks: Uint8Array[] = [];
    let size = 0;
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        size += value.byteLength;
        if (size > this.#maxResponseBytes) {
          await reader.cancel();
          throw new ClusterCacheError(
            "BadResponse",
            `${method} ${path}: response larger than ${this.#maxResponseBytes} bytes`,
          );
        }
        chunks.push(value);
      }
    } finally {
      reader.releaseLock();
    }
    const all = new Uint8Array(size);
    let offset = 0;
    for (const chunk of chunks) {
      all.set(chunk, offset);
      offset += chunk.byteLength;
    }
    return new TextDecoder().decode(all);
  }

  /**
   * Sends a request and parses the JSON answer. A 429 or 5xx answer with `Retry-After` is sent
   * again after the wait it asks for, up to {@linkcode MAX_RETRIES} times while the request's
   * timeout allows (client-go's rule: the server said it did not act on it, so resending the body
   * is safe).
   *
   * @throws {KubernetesApiError} For a non-2xx answer.
   * @throws {ClusterCacheError} `Unreachable`, `Timeout` or `BadResponse`.
   */
  async json<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const timeoutMs = options.timeoutMs ?? this.#timeoutMs;
    const deadline = performance.now() + timeoutMs;
    let response: Response;
    let text: string;
    for (let attempt = 0;; attempt++) {
      const left = Math.max(1, Math.round(deadline - performance.now()));
      response = await this.#fetch(method, path, { ...options, timeoutMs: left });
      try {
        text = await this.#readBody(response, method, path);
      } catch (error) {
        throw this.#failure(error, method, path, timeoutMs, options.signal);
      }
      const waitMs = retryAfterMs(response);
      if (
        waitMs === undefined || attempt >= MAX_RETRIES || performance.now() + waitMs >= deadline
      ) break;
      this.#onRetry(method, String(response.status));
      if (!await sleep(waitMs, options.signal)) {
        throw this.#failure(options.signal?.reason, method, path, timeoutMs, options.signal);
      }
    }
    if (!response.ok) {
      throw apiErrorFrom(
        response.status,
        response.statusText,
        text,
        response.headers.get("retry-after"),
      );
    }
    if (text === "") return null as T;
    try {
      return this.#measure(() => JSON.parse(text)) as T;
    } catch {
      throw new ClusterCacheError("BadResponse", `${method} ${path}: the response is not JSON`);
    }
  }

  /**
   * Opens a streaming GET (a watch). The timeout covers the whole stream; the caller reads the body
   * and ends it by aborting `options.signal`.
   *
   * @throws As {@linkcode Transport.json} does, for a failed start.
   */
  async stream(path: string, options: RequestOptions): Promise<ReadableStream<Uint8Array>> {
    // The stream may last its long timeout; its headers must come within the ordinary one, or a
    // hung server would hold the watch for the whole long timeout before the idle watchdog starts.
    const response = await this.#fetch("GET", path, {
      ...options,
      headersTimeoutMs: this.#timeoutMs,
    });
    if (!response.ok) {
      // An error's body comes within the ordinary timeout, not the stream's long one (the caller
      // aborting its request ends the read left behind).
      const text = await untilAborted(
        this.#readBody(response, "GET", path),
        AbortSignal.timeout(this.#timeoutMs),
      ).catch(() => "");
      throw apiErrorFrom(
        response.status,
        response.statusText,
        text,
        response.headers.get("retry-after"),
      );
    }
    if (!response.body) {
      throw new ClusterCacheError("BadResponse", `GET ${path}: the watch response has no body`);
    }
    return response.body;
  }

  /** Closes the connection (callers abort their own requests first). */
  close(): void {
    this.#connection.close();
  }
}
