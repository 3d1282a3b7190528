/**
 * The reflector keeps a store in sync with one kind on the API server, the way client-go's does, and
 * never gives up:
 *
 * - paged list (`limit`/`continue`; an expired continue token restarts the list), then
 * - watch from the list's resourceVersion with `allowWatchBookmarks=true` and a random
 *   `timeoutSeconds` of 5-10 minutes, inside a longer request timeout;
 * - on a clean close, re-watch from the last resourceVersion seen (events or bookmarks);
 * - on 410 Expired (HTTP or ERROR event), relist;
 * - on a stream that goes silent past the idle timeout, re-watch;
 * - on any error (refused, reset, 5xx, 429, 401, 403, malformed lines), back off exponentially
 *   (honouring Retry-After) and retry; on 404 forget discovery and relist;
 * - after a broken connection or an idle stream, check the server's current resourceVersion first:
 *   if it went backwards (the server was restored or restarted with a new store) relist, because a
 *   watch from a version "in the future" would wait forever for events that never come. An event or
 *   bookmark older than the last one seen means the same and also relists.
 *
 * @module
 */

import { Backoff, sleep } from "../src/backoff.ts";
import { ClusterCacheError, isExpired, isNotFound, KubernetesApiError } from "../src/errors.ts";
import type { KindRef, KubeList, KubeObject, Status } from "../src/kube_object.ts";
import { redact } from "../src/redact.ts";
import { compareResourceVersions } from "../src/resource_version.ts";
import type { Transport } from "./http_transport.ts";
import { type ResourceMapping, resourcePath, type RestMapper } from "./rest_mapper.ts";
import { readWatchEvents } from "./watch_stream.ts";

/** Tuning of a reflector. */
export interface ReflectorOptions {
  pageSize: number;
  watchRequestTimeoutMs: number;
  watchIdleTimeoutMs: number;
  /** The longest watch event line accepted (the client's `maxResponseBytes`). */
  maxEventBytes: number;
  backoff: { initialMs: number; maxMs: number };
  labelSelector?: string;
  fieldSelector?: string;
}

/** Where a reflector writes. */
export interface ReflectorSink {
  /** A complete, consistent list replaced the previous content. */
  replace(items: KubeObject[]): void;
  /** One watch event; `false` when it contradicts the store (the server lost state: relist). */
  apply(type: "ADDED" | "MODIFIED" | "DELETED", object: KubeObject): boolean;
  /** A list or watch attempt failed (the reflector retries by itself). */
  failed(error: unknown): void;
  /** Counters, for metrics. */
  count(event: "list" | "watchRestart"): void;
}

/** Logging, as the worker forwards it. */
export interface ReflectorLog {
  debug(message: string, properties?: Record<string, unknown>): void;
  warn(message: string, properties?: Record<string, unknown>): void;
}

type WatchOutcome = {
  end: "closed" | "idle" | "expired" | "regressed" | "inconsistent";
  events: number;
};

/** Where the reflector is: the last resourceVersion it has seen, or `undefined` (must list). */
interface Progress {
  rv: string | undefined;
}

/** Keeps one kind in sync. */
export class Reflector {
  readonly #kind: KindRef;
  readonly #mapper: RestMapper;
  readonly #transport: Transport;
  readonly #options: ReflectorOptions;
  readonly #sink: ReflectorSink;
  readonly #log: ReflectorLog;

  /**
   * @param kind The kind to mirror.
   * @param mapper Discovery.
   * @param transport HTTP to the cluster.
   * @param options Paging, timeouts, backoff and server-side selectors.
   * @param sink Receives lists and events.
   * @param log Logging.
   */
  constructor(
    kind: KindRef,
    mapper: RestMapper,
    transport: Transport,
    options: ReflectorOptions,
    sink: ReflectorSink,
    log: ReflectorLog,
  ) {
    this.#kind = kind;
    this.#mapper = mapper;
    this.#transport = transport;
    this.#options = options;
    this.#sink = sink;
    this.#log = log;
  }

  /** Runs until `signal` aborts. Never throws. */
  async run(signal: AbortSignal): Promise<void> {
    const backoff = new Backoff(this.#options.backoff.initialMs, this.#options.backoff.maxMs);
    // Shared with #watch, so versions seen on a stream that later breaks are not lost.
    const progress: Progress = { rv: undefined };
    let checkServerVersion = false;
    let failures = 0;
    while (!signal.aborted) {
      try {
        const mapping = await this.#mapper.mapping(this.#kind, signal);
        if (progress.rv === undefined) {
          progress.rv = await this.#list(mapping, signal);
        } else if (checkServerVersion) {
          const current = await this.#serverVersion(mapping, signal);
          if (compareResourceVersions(current, progress.rv) < 0) {
            this.#log.warn("The server's resourceVersion went backwards; relisting", {
              kind: this.#kind.kind,
              cached: progress.rv,
              server: current,
            });
            progress.rv = undefined;
            continue;
          }
        }
        checkServerVersion = false;
        if (failures > 0) {
          this.#log.debug("Informer recovered", { kind: this.#kind.kind, failures });
          failures = 0;
        }
        const started = performance.now();
        const outcome = await this.#watch(mapping, progress, signal);
        this.#sink.count("watchRestart");
        if (
          outcome.end === "expired" || outcome.end === "regressed" || outcome.end === "inconsistent"
        ) {
          if (outcome.end !== "expired") {
            this.#log.warn(
              outcome.end === "regressed"
                ? "A watch event went back in resourceVersion; relisting"
                : "A watch event contradicts the cache (the server lost state); relisting",
              { kind: this.#kind.kind },
            );
          }
          progress.rv = undefined;
        } else if (outcome.end === "idle") {
          this.#log.debug("Watch idle; restarting it", { kind: this.#kind.kind });
          checkServerVersion = true;
        } else if (outcome.events === 0 && performance.now() - started < 1000) {
          // A server that closes watches at once must not make us spin.
          await sleep(backoff.next(), signal);
        } else {
          backoff.reset();
        }
      } catch (error) {
        if (signal.aborted) break;
        failures++;
        this.#sink.failed(error);
        const properties = { kind: this.#kind.kind, error: describe(error), attempt: failures };
        if (failures === 1) {
          this.#log.warn("Informer list or watch failed; retrying with backoff", properties);
        } else this.#log.debug("Informer list or watch failed again", properties);
        if (isExpired(error)) {
          progress.rv = undefined;
          continue;
        }
        if (
          isNotFound(error) || (error instanceof ClusterCacheError && error.code === "NoKindMatch")
        ) {
          this.#mapper.invalidate(this.#kind.apiVersion);
          progress.rv = undefined;
        }
        if (connectionLost(error)) {
          // Like client-go: a lost connection may be a restarted server whose state (and versions)
          // moved on while writes raced ahead of any check, so start again from a consistent list.
          progress.rv = undefined;
        }
        checkServerVersion = progress.rv !== undefined;
        const retryAfterMs =
          error instanceof KubernetesApiError && error.retryAfterSeconds !== undefined
            ? error.retryAfterSeconds * 1000
            : 0;
        await sleep(Math.max(backoff.next(), retryAfterMs), signal);
      }
    }
  }

  #withKind(object: KubeObject): KubeObject {
    // Built-in lists omit each item's apiVersion and kind; the cache always has them.
    if (object.apiVersion === this.#kind.apiVersion && object.kind === this.#kind.kind) {
      return object;
    }
    return { apiVersion: this.#kind.apiVersion, kind: this.#kind.kind, ...object };
  }

  #selectors(): Record<string, string | undefined> {
    return {
      labelSelector: this.#options.labelSelector,
      fieldSelector: this.#options.fieldSelector,
    };
  }

  async #list(mapping: ResourceMapping, signal: AbortSignal): Promise<string> {
    const path = resourcePath(mapping, undefined);
    for (let attempt = 0;; attempt++) {
      const items: KubeObject[] = [];
      let token: string | undefined;
      let rv = "";
      try {
        do {
          const page = await this.#transport.json<KubeList>("GET", path, {
            query: { limit: this.#options.pageSize, continue: token, ...this.#selectors() },
            signal,
          });
          if (!page || !Array.isArray(page.items)) {
            throw new ClusterCacheError("BadResponse", `GET ${path}: not a list`);
          }
          for (const item of page.items) items.push(this.#withKind(item));
          token = page.metadata?.continue || undefined;
          rv = page.metadata?.resourceVersion ?? "";
        } while (token);
      } catch (error) {
        // An expired continue token: the list took too long; start it again from the beginning.
        if (isExpired(error) && token !== undefined && attempt < 3) continue;
        throw error;
      }
      this.#sink.count("list");
      this.#sink.replace(items);
      return rv;
    }
  }

  async #serverVersion(mapping: ResourceMapping, signal: AbortSignal): Promise<string> {
    const page = await this.#transport.json<KubeList>("GET", resourcePath(mapping, undefined), {
      query: { limit: 1, ...this.#selectors() },
      signal,
    });
    return page?.metadata?.resourceVersion ?? "0";
  }

  async #watch(
    mapping: ResourceMapping,
    progress: Progress,
    signal: AbortSignal,
  ): Promise<WatchOutcome> {
    const abort = new AbortController();
    const onAbort = () => abort.abort(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    const outcome: WatchOutcome = { end: "closed", events: 0 };
    let streaming = false;
    try {
      const body = await this.#transport.stream(resourcePath(mapping, undefined), {
        query: {
          watch: 1,
          resourceVersion: progress.rv,
          allowWatchBookmarks: true,
          timeoutSeconds: 300 + Math.floor(Math.random() * 300),
          ...this.#selectors(),
        },
        timeoutMs: this.#options.watchRequestTimeoutMs,
        signal: abort.signal,
      });
      streaming = true;
      let failure: unknown;
      const read = {
        idleTimeoutMs: this.#options.watchIdleTimeoutMs,
        maxEventBytes: this.#options.maxEventBytes,
      };
      const end = await readWatchEvents(body, read, abort, (event) => {
        if (event.type === "ERROR") {
          const status = event.object as unknown as Status;
          if (status.code === 410) outcome.end = "expired";
          else {failure = new KubernetesApiError({
              ...status,
              kind: "Status",
              apiVersion: "v1",
              metadata: {},
            });}
          return false;
        }
        const rv = (event.object.metadata as { resourceVersion?: string } | undefined)
          ?.resourceVersion;
        if (rv && progress.rv && compareResourceVersions(rv, progress.rv) < 0) {
          outcome.end = "regressed";
          return false;
        }
        if (event.type === "ADDED" || event.type === "MODIFIED" || event.type === "DELETED") {
          if (!this.#sink.apply(event.type, this.#withKind(event.object as KubeObject))) {
            outcome.end = "inconsistent";
            return false;
          }
          outcome.events++;
        } else if (event.type !== "BOOKMARK") {
          failure = new ClusterCacheError(
            "BadResponse",
            `unknown watch event type "${event.type}"`,
          );
          return false;
        }
        if (rv) progress.rv = rv;
      });
      if (failure) throw failure;
      if (end === "idle") outcome.end = "idle";
      return outcome;
    } catch (error) {
      if (signal.aborted) return outcome;
      // Once streaming, the whole-request timeout ends a watch like a server-side timeout would:
      // re-watch. Before the headers came, a timeout is a failure (backoff, version check).
      const timedOut = (error instanceof ClusterCacheError && error.code === "Timeout") ||
        (error instanceof DOMException && error.name === "TimeoutError");
      if (streaming && timedOut) return outcome;
      throw error;
    } finally {
      signal.removeEventListener("abort", onAbort);
      abort.abort();
    }
  }
}

/**
 * Whether an error means the connection to the server was lost (refused, reset, unreachable), as
 * opposed to an answer from a live server (a Status error, a timeout, a malformed line).
 */
export function connectionLost(error: unknown): boolean {
  if (error instanceof ClusterCacheError) return error.code === "Unreachable";
  // A stream cut mid-body surfaces from fetch as a TypeError ("error reading a body from connection").
  return error instanceof TypeError;
}

/** A short, credential-free description of an error for logs. */
export function describe(error: unknown): string {
  if (error instanceof KubernetesApiError) {
    return redact(`${error.code} ${error.reason}: ${error.message}`);
  }
  if (error instanceof Error) return redact(error.message);
  return redact(String(error));
}
