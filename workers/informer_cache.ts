/**
 * The informer cache of one session (worker side): informers started on first use (with the cache
 * options' transforms and indexes), cached reads once a kind has synced, and, in a pooled worker, a
 * kind too big to list there held back while the session asks for a worker of its own.
 *
 * @module
 */

import type { Transform } from "../src/shared/cache_options.ts";
import {
  type IndexFunction,
  indexFunction,
  ModuleFunctions,
  page,
  selectCached,
} from "../src/shared/cache_query.ts";
import { sleep } from "../src/shared/backoff.ts";
import { ClusterCacheError } from "../src/shared/errors.ts";
import { olderThan } from "../src/shared/resource_version.ts";
import type { KindRef, KubeList, KubeObject, ObjectKey } from "../src/shared/kube_object.ts";
import {
  type InformerProgress,
  type InformerState,
  kindKey,
  type PressureReport,
  type WireListOptions,
  type WorkerConfig,
  type WorkerStats,
} from "../src/shared/protocol.ts";
import type { Transport } from "./http_transport.ts";
import { Informer } from "./informer.ts";
import type { LoadMeter } from "./load_meter.ts";
import { notFound, stripManagedFields } from "./live_client.ts";
import { resourcePath, type RestMapper } from "./rest_mapper.ts";
import type { WorkerLog } from "./worker_log.ts";

/** Whether two kind references name the same kind. */
export function sameKind(a: KindRef, b: KindRef): boolean {
  return a.apiVersion === b.apiVersion && a.kind === b.kind;
}

/** What the cache needs of its session. */
export interface InformerCacheHooks {
  log: WorkerLog;
  /** Reports informer counters. */
  count(kind: string, event: "list" | "watchRestart" | "error"): void;
  /** Measures the session's work. */
  meter: LoadMeter;
  /** Sends a pressure report to the main thread. */
  report(pressure: PressureReport): void;
  /**
   * Waits for the fleet's list budget (when the cache has one): `objects` is what the list is
   * expected to hold, `urgent` whether a read waits for it. Resolves with what ends the permit.
   */
  permit?:
    | ((
      kind: string,
      objects: number | undefined,
      urgent: boolean,
      signal: AbortSignal,
    ) => Promise<() => void>)
    | undefined;
}

/** One session's informers. */
export class InformerCache {
  readonly #config: WorkerConfig;
  readonly #api: () => { transport: Transport; mapper: RestMapper };
  readonly #log: WorkerLog;
  readonly #count: InformerCacheHooks["count"];
  readonly #meter: LoadMeter;
  readonly #report: InformerCacheHooks["report"];
  readonly #permit: InformerCacheHooks["permit"];
  readonly #informers = new Map<string, Informer>();
  /** Kinds too big for a shared worker, held back unlisted, with their objects on the server. */
  readonly #heldBack = new Map<string, number>();
  readonly #modules = new ModuleFunctions();
  readonly #reported = new Map<string, InformerState & { relists: number }>();
  /** Cached reads wait on this while the session takes over from another (see `hold`). */
  #held:
    | { open: Promise<void>; release: () => void; timer: ReturnType<typeof setTimeout> }
    | undefined;
  #closed = false;
  /** Disconnected, serving what it holds: no informer starts, none talks to the server. */
  #frozen = false;

  /** @param api The session's HTTP client and REST mapper (replaced when it switches servers). */
  constructor(
    config: WorkerConfig,
    api: () => { transport: Transport; mapper: RestMapper },
    hooks: InformerCacheHooks,
  ) {
    this.#config = config;
    this.#api = api;
    this.#log = hooks.log;
    this.#count = hooks.count;
    this.#meter = hooks.meter;
    this.#report = hooks.report;
    this.#permit = hooks.permit;
  }

  /**
   * Objects held by every informer, and those of kinds held back (for the load meter: a session
   * waiting for a worker of its own stays under pressure until it gets one).
   */
  objectCount(): number {
    let count = 0;
    for (const informer of this.#informers.values()) count += informer.store.size;
    for (const held of this.#heldBack.values()) count += held;
    return count;
  }

  /** Informer relists and versions since the last call. */
  takeStats(): WorkerStats["informers"] {
    const informers: WorkerStats["informers"] = [];
    for (const [kind, informer] of this.#informers) {
      const now = informer.state();
      const before = this.#reported.get(kind);
      // Hearing from the server is reported at most every few seconds unless something else changed.
      if (
        before && before.resourceVersion === now.resourceVersion &&
        before.relists === informer.relists && before.phase === now.phase &&
        before.failingSince === now.failingSince && before.lastError === now.lastError &&
        before.refused === now.refused &&
        before.objects === now.objects && before.events === now.events &&
        now.lastHeardAt - before.lastHeardAt < HEARD_REPORT_MS
      ) {
        continue;
      }
      informers.push({ ...now, relists: informer.relists - (before?.relists ?? 0) });
      this.#reported.set(kind, { ...now, relists: informer.relists });
    }
    return informers;
  }

  async #transformFor(kind: KindRef): Promise<((object: KubeObject) => KubeObject) | undefined> {
    const byObject = this.#config.cache.byObject.find((b) => sameKind(b.kind, kind));
    const transform: Transform | undefined = byObject?.transform ??
      this.#config.cache.defaultTransform;
    if (transform === undefined) return undefined;
    if (transform === "stripManagedFields") return stripManagedFields;
    const fn = await this.#modules.load(transform);
    return (object) => fn(object) as KubeObject;
  }

  async #indexesFor(kind: KindRef): Promise<IndexFunction[]> {
    const out: IndexFunction[] = [];
    for (const index of this.#config.cache.indexes) {
      if (!sameKind(index.kind, kind)) continue;
      const extract = index.extract;
      out.push(
        indexFunction(
          index,
          "fieldPath" in extract ? undefined : await this.#modules.load(extract),
        ),
      );
    }
    return out;
  }

  async #informer(kind: KindRef, signal: AbortSignal): Promise<Informer> {
    const key = kindKey(kind);
    const existing = this.#informers.get(key);
    if (existing) return existing;
    if (this.#frozen) {
      throw new ClusterCacheError(
        "Closed",
        `the cluster is disconnected; its last cache serves only the kinds it held, not ${key}`,
      );
    }
    await this.#api().mapper.mapping(kind, signal); // fail fast for kinds the cluster does not serve
    const [transform, indexes] = await Promise.all([
      this.#transformFor(kind),
      this.#indexesFor(kind),
    ]);
    const raced = this.#informers.get(key);
    if (raced) return raced;
    if (this.#closed) throw new ClusterCacheError("Closed", "the connection was closed");
    const byObject = this.#config.cache.byObject.find((b) => sameKind(b.kind, kind));
    const informer = new Informer(
      kind,
      this.#api().mapper,
      this.#api().transport,
      {
        pageSize: this.#config.pageSize,
        watchList: this.#config.watchList,
        watchRequestTimeoutMs: this.#config.watchRequestTimeoutMs,
        watchIdleTimeoutMs: this.#config.watchIdleTimeoutMs,
        maxEventBytes: this.#config.maxResponseBytes,
        backoff: this.#config.backoff,
        indexes,
        ...(byObject?.labelSelector ? { labelSelector: byObject.labelSelector } : {}),
        ...(byObject?.fieldSelector ? { fieldSelector: byObject.fieldSelector } : {}),
        ...(transform ? { transform } : {}),
        ...(this.#config.cache.syncPeriodMs
          ? { syncPeriodMs: this.#config.cache.syncPeriodMs }
          : {}),
        measure: (work, events) => this.#meter.measure(work, events),
        ...(this.#permit ? { permit: (signal: AbortSignal) => this.#listPermit(key, signal) } : {}),
      },
      this.#log,
      (event) => this.#count(key, event),
    );
    this.#informers.set(key, informer);
    const count = this.#config.dedicated || !this.#config.pressure || byObject?.labelSelector ||
        byObject?.fieldSelector
      ? undefined
      : await this.#objectsOnServer(kind, signal);
    if (this.#closed) throw new ClusterCacheError("Closed", "the connection was closed");
    if (count !== undefined && count > (this.#config.pressure?.objects ?? Infinity)) {
      // Listing it here would stall every neighbour: ask for a worker of its own, which lists it.
      // Never here, however long the move takes: reads of the kind wait (and time out) until then.
      this.#heldBack.set(key, count);
      const report = this.#meter.raise(`a list of ${count} ${kind.kind} objects`);
      if (report) this.#report(report);
      this.#log.info("A list too big for a shared worker waits for a worker of its own", {
        kind: key,
        objects: count,
      });
      return informer;
    }
    informer.start();
    this.#log.debug("Started informer", { kind: key });
    return informer;
  }

  /** A list permit for the kind's informer: sized by what it held or counted, first if awaited. */
  #listPermit(key: string, signal: AbortSignal): Promise<() => void> {
    const informer = this.#informers.get(key);
    const held = informer?.store.size || this.#heldBack.get(key);
    return this.#permit!(key, held || undefined, informer?.awaited ?? true, signal);
  }

  /**
   * How many objects of a kind the cluster holds (`limit=1`: the server counts the rest), or
   * `undefined` when it does not say.
   */
  async #objectsOnServer(kind: KindRef, signal: AbortSignal): Promise<number | undefined> {
    try {
      const mapping = await this.#api().mapper.mapping(kind, signal);
      const page = await this.#api().transport.json<KubeList>(
        "GET",
        resourcePath(mapping, undefined),
        {
          query: { limit: 1 },
          signal,
        },
      );
      const remaining = page?.metadata?.remainingItemCount;
      return typeof remaining === "number" ? remaining + (page?.items?.length ?? 0) : undefined;
    } catch {
      return undefined; // the informer will tell
    }
  }

  /**
   * The kind's informer once synced, waiting at most `timeoutMs` (the informer keeps syncing after
   * that: the next read may succeed).
   */
  async synced(kind: KindRef, signal: AbortSignal, timeoutMs: number): Promise<Informer> {
    const informer = await this.#informer(kind, signal);
    if (informer.synced) return informer;
    if (this.#frozen) {
      throw new ClusterCacheError(
        "Closed",
        `the cluster is disconnected; ${kindKey(kind)} had not synced before it was`,
      );
    }
    // The timeout follows the list, not the clock: time queued for the fleet's list budget does
    // not count, and a list whose pages (or streamed objects) keep coming keeps its time; it
    // times out after `timeoutMs` without progress.
    let since = Date.now();
    for (;;) {
      const now = Date.now();
      if (informer.queuedForList) since = now;
      since = Math.max(since, informer.lastHeardAt);
      const left = since + timeoutMs - now;
      if (left <= 0) {
        const last = informer.lastError ? ` (last error: ${informer.lastError})` : "";
        throw new ClusterCacheError(
          "CacheSyncTimeout",
          `error when waiting for cache to sync: ${
            kindKey(kind)
          } did not sync within ${timeoutMs}ms; it keeps syncing${last}`,
        );
      }
      const slice = AbortSignal.timeout(Math.min(left, SYNC_CHECK_MS));
      try {
        await informer.waitForSync(AbortSignal.any([signal, slice]));
        return informer;
      } catch (error) {
        if (!slice.aborted || signal.aborted) throw error;
      }
    }
  }

  /**
   * A cached read waits for the informer no longer than a live read would take (Cluster API wraps
   * cached Get and List in the client timeout): a kind that never syncs must not hang reconciles.
   */
  async #forRead(kind: KindRef, signal: AbortSignal): Promise<Informer> {
    if (this.#held) {
      // A read held while this session takes over still ends when its caller gives up.
      const aborted = Promise.withResolvers<never>();
      const onAbort = () => aborted.reject(signal.reason);
      signal.addEventListener("abort", onAbort, { once: true });
      try {
        if (signal.aborted) throw signal.reason;
        await Promise.race([this.#held.open, aborted.promise]);
      } finally {
        signal.removeEventListener("abort", onAbort);
      }
    }
    return await this.synced(kind, signal, this.#config.rest.timeoutMs);
  }

  /** Whether reads of a kind go to the cache (`cached` asked, and the kind not excluded). */
  serves(kind: KindRef, cached: boolean): boolean {
    return cached && !this.#config.cache.disableFor.some((k) => sameKind(k, kind));
  }

  /** Reads one object from the cache. */
  async get(kind: KindRef, key: ObjectKey, signal: AbortSignal): Promise<KubeObject> {
    const informer = await this.#forRead(kind, signal);
    const mapping = await this.#api().mapper.mapping(kind, signal);
    // A namespace given for a cluster-scoped kind is ignored, as the API server (and a live get) do.
    const storeKey = mapping.namespaced && key.namespace
      ? `${key.namespace}/${key.name}`
      : key.name;
    const object = informer.store.get(storeKey);
    if (!object) throw notFound(mapping, key.name);
    return object;
  }

  /** Lists objects from the cache (all at once, paged when asked). */
  async list(kind: KindRef, options: WireListOptions, signal: AbortSignal): Promise<KubeList> {
    const listKind = { apiVersion: kind.apiVersion, kind: `${kind.kind}List` };
    const informer = await this.#forRead(kind, signal);
    const mapping = await this.#api().mapper.mapping(kind, signal);
    const { namespace, ...rest } = options;
    const selected = selectCached(
      informer.store,
      mapping.namespaced && namespace ? { ...rest, namespace } : rest,
    );
    const answer = page(selected, options);
    // Where the cache is, as a list served from kube-apiserver's watch cache says it.
    const resourceVersion = informer.lastSyncResourceVersion;
    return {
      ...listKind,
      ...answer,
      metadata: { ...answer.metadata, ...(resourceVersion ? { resourceVersion } : {}) },
    };
  }

  /** The kinds whose informers run, and the resourceVersion each store is at. */
  kinds(): InformerProgress[] {
    return [...this.#informers.values()].map((informer) => ({
      kind: informer.kind,
      ...(informer.synced && informer.lastSyncResourceVersion !== undefined
        ? { resourceVersion: informer.lastSyncResourceVersion }
        : {}),
    }));
  }

  /**
   * Starts these kinds' informers and waits for each to sync and then to reach the old session's
   * resourceVersion (a moved session warms up). A WatchList started while the old session was still
   * taking in a flood syncs at an older version than that session serves: taking over at once would
   * show readers a cache that went back in time.
   */
  async warm(kinds: InformerProgress[], release: boolean, signal: AbortSignal): Promise<boolean> {
    try {
      return await this.#warm(kinds, signal);
    } finally {
      if (release) this.#release();
    }
  }

  /**
   * Holds cached reads until a `warm` with `release`, or `timeoutMs` (a move that went wrong must not
   * stall reads for long).
   */
  hold(timeoutMs: number): null {
    if (this.#held || this.#closed) return null;
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#held = {
      open: promise,
      release: resolve,
      timer: setTimeout(() => this.#release(), timeoutMs),
    };
    return null;
  }

  #release(): void {
    const held = this.#held;
    this.#held = undefined;
    if (!held) return;
    clearTimeout(held.timer);
    held.release();
  }

  /** @returns Whether every kind was there already. */
  async #warm(kinds: InformerProgress[], signal: AbortSignal): Promise<boolean> {
    const timeoutMs = this.#config.cacheSyncTimeoutMs;
    const deadline = Date.now() + timeoutMs;
    let waited = false;
    await Promise.all(kinds.map(async ({ kind, resourceVersion }) => {
      const started = this.#informers.get(kindKey(kind));
      if (!started?.synced) waited = true;
      const informer = await this.synced(kind, signal, timeoutMs);
      if (!await this.reach(informer, resourceVersion, signal, deadline)) waited = true;
    }));
    return !waited;
  }

  /**
   * Waits until an informer's store has reached `resourceVersion` (see {@linkcode reachVersion}),
   * until `deadline` (epoch ms; default: the sync timeout from now).
   */
  reach(
    informer: Informer,
    resourceVersion: string | undefined,
    signal: AbortSignal,
    deadline = Date.now() + this.#config.cacheSyncTimeoutMs,
  ): Promise<boolean> {
    return reachVersion(informer, resourceVersion, signal, deadline);
  }

  /** Stops every informer's list and watch, keeping what it holds for cached reads (see `freeze`). */
  freeze(): null {
    this.#frozen = true;
    for (const informer of this.#informers.values()) informer.freeze();
    return null;
  }

  /** Stops every informer. */
  close(): void {
    this.#closed = true;
    this.#release();
    this.#heldBack.clear();
    for (const informer of this.#informers.values()) informer.stop();
    this.#informers.clear();
  }
}

/**
 * Waits until an informer's store has reached `resourceVersion` (where another session's was), until
 * `deadline` (epoch ms). Versions that cannot be compared (opaque) count as reached.
 *
 * @returns Whether it was there already.
 * @throws {ClusterCacheError} `CacheSyncTimeout` when it did not get there in time.
 */
export async function reachVersion(
  informer: Pick<Informer, "kind" | "lastSyncResourceVersion">,
  resourceVersion: string | undefined,
  signal: AbortSignal,
  deadline: number,
): Promise<boolean> {
  let already = true;
  while (resourceVersion !== undefined && behind(informer, resourceVersion)) {
    already = false;
    if (Date.now() > deadline) {
      throw new ClusterCacheError(
        "CacheSyncTimeout",
        `error when waiting for cache to sync: ${
          kindKey(informer.kind)
        } did not reach resourceVersion ${resourceVersion} in time`,
      );
    }
    if (!await sleep(WARM_POLL_MS, signal)) throw signal.reason;
  }
  return already;
}

/** How often a warming session looks whether its informers caught up (only while a cluster moves). */
const WARM_POLL_MS = 20;
/** How often a sync that waits looks at whether its list still makes progress. */
const SYNC_CHECK_MS = 1_000;
/** How often an informer that only heard from the server (bookmarks, quiet watches) is reported. */
const HEARD_REPORT_MS = 5_000;

function behind(
  informer: Pick<Informer, "lastSyncResourceVersion">,
  resourceVersion: string,
): boolean {
  const at = informer.lastSyncResourceVersion;
  return at === undefined || olderThan(at, resourceVersion);
}
