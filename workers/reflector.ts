/**
 * The reflector keeps a store in sync with one kind on the API server, the way client-go's does, and
 * never gives up:
 *
 * - sync by streaming (WatchList: a watch with `sendInitialEvents=true`,
 *   `resourceVersionMatch=NotOlderThan`, synced at the bookmark annotated
 *   `k8s.io/initial-events-end`), or, when the server refuses, by a paged list (`limit`/`continue`;
 *   an expired continue token restarts the list);
 * - watch from there with `allowWatchBookmarks=true` and a random `timeoutSeconds` of 5-10 minutes,
 *   inside a longer request timeout;
 * - on a clean close, and on a cut, reset or refused watch, re-watch from the last resourceVersion
 *   seen (events or bookmarks): an API server restart or an idle reset of the connection costs no
 *   relist;
 * - on 410 Expired from a watch, relist with `resourceVersion=<last>`, unpaged (served from the
 *   watch cache); when that list is 410 too, a consistent paged list; every relist after backoff;
 * - on a stream that goes silent past the idle timeout, re-watch;
 * - on any error (refused, reset, 5xx, 429, 401, 403, malformed lines), back off exponentially
 *   (honouring Retry-After) and retry; on 404 forget discovery and relist;
 * - after a failed or idle watch, check the server's current resourceVersion first: if it went
 *   backwards (etcd restored from a backup, or a new store) relist, because a watch from a version
 *   "in the future" would wait forever for events that never come. An event or bookmark older than
 *   the last one seen, or one that contradicts the cache, means the same and also relists.
 *
 * @module
 */

import { Backoff, sleep } from "../src/shared/backoff.ts";
import {
  ClusterCacheError,
  isExpired,
  isNotFound,
  KubernetesApiError,
} from "../src/shared/errors.ts";
import type { KindRef, KubeList, KubeObject, Status } from "../src/shared/kube_object.ts";
import { redact } from "../src/shared/redact.ts";
import { olderThan } from "../src/shared/resource_version.ts";
import type { Transport } from "./http_transport.ts";
import { type ResourceMapping, resourcePath, type RestMapper } from "./rest_mapper.ts";
import { storeKey } from "./store.ts";
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
  /**
   * Sync by streaming (WatchList: a watch with `sendInitialEvents`, as client-go does by default
   * since 1.35) instead of paged lists; falls back to lists when the server refuses. Default on.
   */
  watchList?: boolean;
  /**
   * Waits for the fleet's list budget before a list (or a WatchList's initial stream); resolves
   * with what ends the permit. Without it, lists start at once.
   */
  permit?: (signal: AbortSignal) => Promise<() => void>;
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
  /** The server answered: a list completed, a watch opened, an event or a bookmark arrived. */
  heard(): void;
}

/** Logging, as the worker forwards it. */
export interface ReflectorLog {
  debug(message: string, properties?: Record<string, unknown>): void;
  warn(message: string, properties?: Record<string, unknown>): void;
}

type WatchOutcome = {
  end: "closed" | "idle" | "expired" | "regressed" | "inconsistent";
  events: number;
  /** How long the watch ran. */
  ms: number;
};

/** The annotation of the bookmark that ends a WatchList's initial events. */
const INITIAL_EVENTS_END = "k8s.io/initial-events-end";

/** Where the reflector is: the last resourceVersion it has seen, or `undefined` (must list). */
interface Progress {
  rv: string | undefined;
  /** A WatchList stream reached its initial-events-end bookmark (the store was replaced). */
  streamed: boolean;
}

/** Keeps one kind in sync. */
export class Reflector {
  readonly #kind: KindRef;
  readonly #mapper: RestMapper;
  readonly #transport: Transport;
  readonly #options: ReflectorOptions;
  readonly #sink: ReflectorSink;
  readonly #log: ReflectorLog;
  #progress: Progress | undefined;
  /** Ends the list permit held (see `ReflectorOptions.permit`). */
  #releasePermit: (() => void) | undefined;
  #queued = false;

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

  async #takePermit(signal: AbortSignal): Promise<void> {
    if (this.#releasePermit || !this.#options.permit) return;
    this.#queued = true;
    try {
      this.#releasePermit = await this.#options.permit(signal);
    } finally {
      this.#queued = false;
    }
  }

  /** Whether it waits for the fleet's list budget (that time is not the server's: no timeout runs). */
  get queuedForList(): boolean {
    return this.#queued;
  }

  #endPermit(): void {
    const release = this.#releasePermit;
    this.#releasePermit = undefined;
    release?.();
  }

  /** The last resourceVersion the store is known to be at (client-go's `LastSyncResourceVersion`). */
  get lastSyncResourceVersion(): string | undefined {
    return this.#progress?.rv;
  }

  /** Runs until `signal` aborts. Never throws. */
  async run(signal: AbortSignal): Promise<void> {
    const backoff = new Backoff(this.#options.backoff.initialMs, this.#options.backoff.maxMs);
    // Shared with #watch, so versions seen on a stream that later breaks are not lost.
    const progress: Progress = { rv: undefined, streamed: false };
    this.#progress = progress;
    // The next list, if one is due: "consistent" reads from etcd (paged, or streamed as a WatchList);
    // "cached" asks for resourceVersion=<last> unpaged, which the API server serves from its watch
    // cache (after a 410 on a watch: the history moved on, not the state).
    let list: "consistent" | "cached" | undefined = "consistent";
    let watchList = this.#options.watchList ?? true;
    let pageOnce = false;
    let checkServerVersion = false;
    let failures = 0;
    while (!signal.aborted) {
      let step: "list" | "watch" = "watch";
      try {
        const mapping = await this.#mapper.mapping(this.#kind, signal);
        if (list === undefined && checkServerVersion && progress.rv !== undefined) {
          const current = await this.#serverVersion(mapping, signal);
          if (olderThan(current, progress.rv)) {
            this.#log.warn("The server's resourceVersion went backwards; relisting", {
              kind: this.#kind.kind,
              cached: progress.rv,
              server: current,
            });
            list = "consistent";
            continue;
          }
        }
        checkServerVersion = false;
        let outcome: WatchOutcome;
        if (list !== undefined) await this.#takePermit(signal);
        if (list === "consistent" && watchList && !pageOnce) {
          step = "list";
          progress.streamed = false;
          const streamed = await this.#watch(mapping, progress, signal, true);
          if (streamed === "unsupported") {
            this.#log.debug("The server does not stream lists (WatchList); listing in pages", {
              kind: this.#kind.kind,
            });
            watchList = false;
            continue;
          }
          if (streamed === "incomplete") {
            // A server shutting down (or a proxy) ended the stream before its initial state did.
            // Like client-go: list in pages this once (progress beats waiting), stream next time.
            this.#log.debug("A WatchList ended before its initial events; listing in pages once", {
              kind: this.#kind.kind,
            });
            pageOnce = true;
            continue;
          }
          list = undefined;
          outcome = streamed;
        } else {
          pageOnce = false;
          if (list !== undefined) {
            step = "list";
            progress.rv = await this.#list(
              mapping,
              signal,
              list === "cached" ? progress.rv : undefined,
            );
            list = undefined;
          }
          step = "watch";
          outcome = await this.#watch(mapping, progress, signal, false) as WatchOutcome;
        }
        if (failures > 0) {
          this.#log.debug("Informer recovered", { kind: this.#kind.kind, failures });
          failures = 0;
        }
        this.#sink.count("watchRestart");
        // A WatchList that ended before its initial events (a 410 among them) still holds its
        // place in the fleet's list budget: backing off must not.
        this.#endPermit();
        if (outcome.end === "expired") {
          // Like client-go: the watch cache's history moved past us; relist from it, after backoff.
          list = progress.rv === undefined ? "consistent" : "cached";
          await sleep(backoff.next(), signal);
        } else if (outcome.end === "regressed" || outcome.end === "inconsistent") {
          this.#log.warn(
            outcome.end === "regressed"
              ? "A watch event went back in resourceVersion; relisting"
              : "A watch event contradicts the cache (the server lost state); relisting",
            { kind: this.#kind.kind },
          );
          list = "consistent";
          await sleep(backoff.next(), signal);
        } else if (outcome.end === "idle") {
          this.#log.debug("Watch idle; restarting it", { kind: this.#kind.kind });
          checkServerVersion = true;
        } else if (outcome.events === 0 && outcome.ms < 1000) {
          // A server that closes watches at once must not make us spin.
          await sleep(backoff.next(), signal);
        } else {
          backoff.reset();
        }
      } catch (error) {
        this.#endPermit(); // backing off holds no place in the fleet's budget
        if (signal.aborted) break;
        failures++;
        this.#sink.failed(error);
        const properties = { kind: this.#kind.kind, error: describe(error), attempt: failures };
        if (failures === 1) {
          this.#log.warn("Informer list or watch failed; retrying with backoff", properties);
        } else this.#log.debug("Informer list or watch failed again", properties);
        if (step === "list" && list === "consistent" && progress.streamed) {
          // The stream had synced before it failed: what follows is a watch like any other.
          list = undefined;
          step = "watch";
        }
        if (isExpired(error)) {
          // A watch too old for the history: list from the watch cache. A list too old for the
          // watch cache: list from etcd.
          list = step === "watch" && progress.rv !== undefined ? "cached" : "consistent";
        } else if (
          isNotFound(error) || (error instanceof ClusterCacheError && error.code === "NoKindMatch")
        ) {
          this.#mapper.invalidate(this.#kind.apiVersion);
          list = "consistent";
        } else if (
          step === "list" && list === "cached" && error instanceof ClusterCacheError &&
          error.code === "BadResponse"
        ) {
          // The whole list the watch cache serves is too big to take (or unreadable): page it
          // from etcd instead, or the same request fails forever. Other failures (429, 503, a
          // timeout) retry the watch cache, as client-go does, and leave etcd alone.
          list = "consistent";
        } else if (list === undefined) {
          // A cut, refused or failed watch resumes from the last resourceVersion (client-go does),
          // after checking the server did not go back in time (an etcd restored from a backup).
          checkServerVersion = true;
        }
        const retryAfterMs =
          error instanceof KubernetesApiError && error.retryAfterSeconds !== undefined
            ? error.retryAfterSeconds * 1000
            : 0;
        await sleep(Math.max(backoff.next(), retryAfterMs), signal);
      }
    }
    this.#endPermit();
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

  /**
   * Lists: in pages from etcd (`resourceVersion` undefined), or unpaged at `resourceVersion`, which
   * the API server serves from its watch cache.
   */
  async #list(
    mapping: ResourceMapping,
    signal: AbortSignal,
    resourceVersion: string | undefined,
  ): Promise<string> {
    const path = resourcePath(mapping, undefined);
    for (let attempt = 0;; attempt++) {
      const items: KubeObject[] = [];
      let token: string | undefined;
      let rv = "";
      try {
        do {
          const page = await this.#transport.json<KubeList>("GET", path, {
            query: resourceVersion === undefined
              ? { limit: this.#options.pageSize, continue: token, ...this.#selectors() }
              : { resourceVersion, ...this.#selectors() },
            signal,
          });
          if (!page || !Array.isArray(page.items)) {
            throw new ClusterCacheError("BadResponse", `GET ${path}: not a list`);
          }
          for (const item of page.items) items.push(this.#withKind(item));
          this.#sink.heard(); // a page: the list makes progress
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
      this.#endPermit();
      this.#sink.heard();
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

  /**
   * One watch request. With `initial`, a WatchList: the current state arrives as ADDED events up to
   * the bookmark annotated `k8s.io/initial-events-end`, which replaces the store (a sync), then the
   * stream goes on as a plain watch.
   *
   * @returns How it ended, `"unsupported"` when the server refuses WatchList (400 or 422), or
   *   `"incomplete"` when the stream ended before the initial events did.
   */
  async #watch(
    mapping: ResourceMapping,
    progress: Progress,
    signal: AbortSignal,
    initial: boolean,
  ): Promise<WatchOutcome | "unsupported" | "incomplete"> {
    const abort = new AbortController();
    const onAbort = () => abort.abort(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    const started = performance.now();
    const outcome: WatchOutcome = { end: "closed", events: 0, ms: 0 };
    // The initial state of a WatchList, by key, until its end bookmark.
    let pending: Map<string, KubeObject> | undefined = initial ? new Map() : undefined;
    let streaming = false;
    try {
      let body: ReadableStream<Uint8Array>;
      try {
        body = await this.#transport.stream(resourcePath(mapping, undefined), {
          query: {
            watch: 1,
            allowWatchBookmarks: true,
            timeoutSeconds: 300 + Math.floor(Math.random() * 300),
            ...(initial
              ? { sendInitialEvents: true, resourceVersionMatch: "NotOlderThan" }
              : { resourceVersion: progress.rv }),
            ...this.#selectors(),
          },
          timeoutMs: this.#options.watchRequestTimeoutMs,
          signal: abort.signal,
        });
      } catch (error) {
        if (initial && error instanceof KubernetesApiError && [400, 422].includes(error.code)) {
          return "unsupported";
        }
        throw error;
      }
      streaming = true;
      this.#sink.heard();
      let failure: unknown;
      const read = {
        idleTimeoutMs: this.#options.watchIdleTimeoutMs,
        maxEventBytes: this.#options.maxEventBytes,
      };
      const end = await readWatchEvents(body, read, abort, (event) => {
        if (event.type !== "ERROR") this.#sink.heard();
        if (event.type === "ERROR") {
          const status = event.object as unknown as Status;
          if (status.code === 410) outcome.end = "expired";
          else {
            failure = new KubernetesApiError({
              ...status,
              kind: "Status",
              apiVersion: "v1",
              metadata: {},
            });
          }
          return false;
        }
        const metadata = event.object.metadata as
          | { resourceVersion?: string; annotations?: Record<string, string> }
          | undefined;
        const rv = metadata?.resourceVersion;
        if (pending) {
          if (event.type === "ADDED") {
            const object = this.#withKind(event.object as KubeObject);
            pending.set(storeKey(object), object);
          } else if (event.type === "BOOKMARK") {
            if (metadata?.annotations?.[INITIAL_EVENTS_END] === "true") {
              this.#sink.count("list");
              this.#sink.replace([...pending.values()]);
              this.#endPermit();
              pending = undefined;
              progress.streamed = true;
              if (rv) progress.rv = rv; // initial events come in no order: only this one counts
            }
          } else {
            failure = new ClusterCacheError(
              "BadResponse",
              `a ${event.type} event among a WatchList's initial events`,
            );
            return false;
          }
          return;
        }
        if (rv && progress.rv && olderThan(rv, progress.rv)) {
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
      if (pending && !signal.aborted && outcome.end === "closed") {
        // Ended, or fell silent, before its initial state did (a server shutting down gracefully,
        // one that ignores sendInitialEvents and never sends the end bookmark, a hung handler):
        // not a complete list.
        return "incomplete";
      }
      if (end === "idle") outcome.end = "idle";
      return outcome;
    } catch (error) {
      if (signal.aborted) return outcome;
      // Once streaming, the whole-request timeout ends a watch like a server-side timeout would:
      // re-watch. Before the headers came, a timeout is a failure (backoff, version check).
      const timedOut = (error instanceof ClusterCacheError && error.code === "Timeout") ||
        (error instanceof DOMException && error.name === "TimeoutError");
      if (streaming && timedOut && !pending) return outcome;
      throw error;
    } finally {
      outcome.ms = performance.now() - started;
      signal.removeEventListener("abort", onAbort);
      abort.abort();
    }
  }
}

/** A short, credential-free description of an error for logs. */
export function describe(error: unknown): string {
  if (error instanceof KubernetesApiError) {
    return redact(`${error.code} ${error.reason}: ${error.message}`);
  }
  if (error instanceof Error) return redact(error.message);
  return redact(String(error));
}
