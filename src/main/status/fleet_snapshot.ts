/**
 * What the status page shows, as JSON (main thread only): every cluster the cache tracks, described
 * by {@linkcode ClusterCache.describeCluster}, with rates between two snapshots (events per second of
 * each kind) and ages instead of timestamps where a person reads them. Credential-free: it is made
 * only of what `describeCluster` returns.
 *
 * @module
 */

import type { ClusterCache } from "../cluster_cache.ts";
import type { ClusterDescription } from "../cache_api.ts";
import type { ClusterHistoryEntry } from "../reconcile/cluster_history.ts";
import { formatObjectKey } from "../../shared/kube_object.ts";

/** One kind of one cluster, as the page shows it. */
export interface KindRow {
  /** The kind, `apps/v1 Deployment`. */
  kind: string;
  /** Its informer's phase. */
  phase: "syncing" | "synced" | "failing";
  /** Objects cached. */
  objects: number;
  /** Watch events per second since the previous snapshot (0 for the first). */
  eventsPerSecond: number;
  /** Seconds since its informer last heard from the server (`null`: never). */
  lastHeardSecondsAgo: number | null;
  /** Seconds it has been failing, while it is. */
  failingForSeconds?: number;
  /** Why it fails, while it does. */
  lastError?: string;
}

/** One cluster, as the page shows it. */
export interface ClusterRow {
  /** `namespace/name`. */
  cluster: string;
  /** Whether the cluster is connected. */
  connected: boolean;
  /** Why the last connection attempt failed, while it stands. */
  lastConnectionError?: string;
  /** Why it was last disconnected, while it is. */
  disconnectedBecause?: string;
  /** Failed probes in a row. */
  consecutiveFailures: number;
  /** Seconds since the last successful probe (`null`: never). */
  lastProbeSuccessSecondsAgo: number | null;
  /** Where its session runs, while connected. */
  placement?: "dedicated" | "pooled";
  /** Moves between workers in its recent history. */
  moves: number;
  /** With sharding: whether this replica serves it, and which replica should. */
  shard?: { servedHere: boolean; owner: string | undefined };
  /** Its kinds. */
  kinds: KindRow[];
  /** What happened to it lately, oldest first. */
  history: ClusterHistoryEntry[];
}

/** The fleet, as the page shows it. */
export interface FleetSnapshot {
  /** When it was taken (epoch ms). */
  time: number;
  /** Every cluster the cache tracks, by key. */
  clusters: ClusterRow[];
  /** Counts over the fleet. */
  totals: { clusters: number; connected: number; failingKinds: number; dedicated: number };
}

const secondsSince = (now: number, time: number) =>
  time > 0 ? Math.max(0, Math.round((now - time) / 100) / 10) : null;

/** Takes snapshots of a cache, remembering the last one's counters for rates. */
export class FleetSnapshots {
  readonly #cache: ClusterCache;
  /** Events counted per `cluster kind` at the last snapshot, and when. */
  #last = new Map<string, { events: number; time: number }>();

  constructor(cache: ClusterCache) {
    this.#cache = cache;
  }

  /** The fleet now. */
  take(): FleetSnapshot {
    const now = Date.now();
    const next = new Map<string, { events: number; time: number }>();
    const clusters = this.#cache.clusters()
      .map((key) => this.#cache.describeCluster(key))
      .filter((d): d is ClusterDescription => d !== undefined)
      .map((d) => this.#row(d, now, next))
      .sort((a, b) => a.cluster < b.cluster ? -1 : 1);
    this.#last = next;
    return {
      time: now,
      clusters,
      totals: {
        clusters: clusters.length,
        connected: clusters.filter((c) => c.connected).length,
        failingKinds: clusters.reduce(
          (n, c) => n + c.kinds.filter((k) => k.phase === "failing").length,
          0,
        ),
        dedicated: clusters.filter((c) => c.placement === "dedicated").length,
      },
    };
  }

  #row(
    d: ClusterDescription,
    now: number,
    next: Map<string, { events: number; time: number }>,
  ): ClusterRow {
    const cluster = formatObjectKey(d.cluster);
    const kinds = d.kinds.map((k): KindRow => {
      const id = `${cluster} ${k.kind}`;
      const before = this.#last.get(id);
      next.set(id, { events: k.events, time: now });
      const seconds = before ? (now - before.time) / 1000 : 0;
      const rate = before && seconds > 0 ? Math.max(0, k.events - before.events) / seconds : 0;
      return {
        kind: k.kind,
        phase: k.phase,
        objects: k.objects,
        eventsPerSecond: Math.round(rate * 10) / 10,
        lastHeardSecondsAgo: secondsSince(now, k.lastHeardAt),
        ...(k.failingSince !== undefined
          ? { failingForSeconds: secondsSince(now, k.failingSince) ?? 0 }
          : {}),
        ...(k.lastError !== undefined ? { lastError: k.lastError } : {}),
      };
    }).sort((a, b) => a.kind < b.kind ? -1 : 1);
    const lastDisconnect = d.history.findLast((h) => h.kind === "disconnected");
    return {
      cluster,
      connected: d.connected,
      ...(d.lastConnectionError ? { lastConnectionError: d.lastConnectionError } : {}),
      ...(!d.connected && lastDisconnect ? { disconnectedBecause: lastDisconnect.message } : {}),
      consecutiveFailures: d.health.consecutiveFailures,
      lastProbeSuccessSecondsAgo: secondsSince(now, d.health.lastProbeSuccessTime),
      ...(d.placement ? { placement: d.placement } : {}),
      moves: d.history.filter((h) => h.kind === "moved").length,
      ...(d.shard ? { shard: d.shard } : {}),
      kinds,
      history: d.history,
    };
  }
}
