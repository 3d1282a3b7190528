/**
 * The configuration a worker session gets (main thread only), built in one place for workload
 * clusters and the management cluster alike.
 *
 * @module
 */

import type { ObjectKey } from "../../shared/kube_object.ts";
import type { SessionOptions } from "../options.ts";
import type { WorkerCacheConfig, WorkerConfig } from "../../shared/protocol.ts";
import type { RESTConfig } from "../../shared/rest_config.ts";

/** Informer retry backoff: client-go's reflector backoff (800 ms doubling to 30 s). */
const INFORMER_BACKOFF = { initialMs: 800, maxMs: 30_000 };

/**
 * A session's configuration from the resolved options.
 *
 * @param cache The cache settings (default: the options' cache, for a workload cluster).
 * @param dedicated Whether the session has a worker of its own.
 * @param podCheck Whether to look for this process's Pod in the cluster (workload clusters).
 * @param writableUntil With sharding, until when (epoch ms) this replica owns the cluster.
 */
export function workerConfig(
  cluster: ObjectKey,
  rest: RESTConfig,
  options: SessionOptions,
  { cache, dedicated, podCheck, writableUntil, management = false }: {
    cache?: WorkerCacheConfig;
    dedicated: boolean;
    podCheck: boolean;
    writableUntil?: number;
    /** The management cluster: its kubeconfig is the operator's own, no network is denied. */
    management?: boolean;
  },
): WorkerConfig {
  return {
    cluster,
    rest,
    probeTimeoutMs: options.healthProbe.timeoutMs,
    cacheSyncTimeoutMs: options.initialSyncTimeoutMs,
    watchRequestTimeoutMs: options.watchRequestTimeoutMs,
    watchIdleTimeoutMs: options.watchIdleTimeoutMs,
    pageSize: options.listPageSize,
    watchList: options.watchList,
    backoff: INFORMER_BACKOFF,
    maxResponseBytes: options.maxResponseBytes,
    deniedNetworks: management ? [] : [...options.deniedNetworks],
    cache: cache ?? {
      byObject: options.cache.byObject ?? [],
      indexes: options.cache.indexes ?? [],
      disableFor: options.client.disableFor,
      ...(options.cache.syncPeriodMs ? { syncPeriodMs: options.cache.syncPeriodMs } : {}),
      ...(options.cache.defaultTransform
        ? { defaultTransform: options.cache.defaultTransform }
        : {}),
    },
    ...(options.workers.mode === "pooled" ? { pressure: options.workers.pressure } : {}),
    dedicated,
    listBudget: !management && options.listBudget !== undefined,
    ...(writableUntil === undefined ? {} : { writableUntil }),
    ...(podCheck && options.podIdentity ? { podIdentity: options.podIdentity } : {}),
    ...(podCheck && options.inClusterConfig ? { inCluster: options.inClusterConfig } : {}),
  };
}

/** How long `init` (probe, discovery and the Pod check, each bounded in the worker) may take. */
export function initTimeoutMs(options: Pick<SessionOptions, "healthProbe" | "client">): number {
  return options.healthProbe.timeoutMs * 2 + options.client.timeoutMs * 2 + 2_000;
}
