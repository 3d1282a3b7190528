/**
 * Options of {@linkcode ClusterCache.setup}, their validation and Cluster API's defaults, and the
 * slice of them each part of the cache is handed (Cluster API's `buildClusterAccessorConfig`). A
 * leaf of the main thread's import graph: every part imports its options from here, this imports
 * none of them.
 *
 * @module
 */

import { checkNetworks, DEFAULT_DENIED_NETWORKS } from "../shared/networks.ts";
import {
  type CacheOptions,
  checkCacheOptions,
  type ModuleAccess,
} from "../shared/cache_options.ts";
import type { KubeConfigLike } from "./kube_config_like.ts";
import type { KindRef, KubeObject, ObjectKey } from "../shared/kube_object.ts";
import type { PodIdentity, PressureThresholds } from "../shared/protocol.ts";
import { ClusterCacheError } from "../shared/errors.ts";
import { FLAG } from "./sessions/worker_options_flag.ts";

/**
 * Options of the clients created per workload cluster.
 *
 * @example A gentle client that never caches Secrets
 * ```ts
 * import type { ClientOptions } from "@fleetkit/clustercache";
 *
 * const client: ClientOptions = {
 *   userAgent: "my-operator/1.4.0",
 *   timeoutMs: 5_000,
 *   qps: 5,
 *   burst: 10,
 *   cache: { disableFor: [{ apiVersion: "v1", kind: "Secret" }] },
 * };
 * ```
 */
export interface ClientOptions {
  /** `User-Agent` of every request to workload clusters. Required. */
  userAgent: string;
  /** Timeout of each request (not of watches), in ms. Default 10,000 (also when 0). */
  timeoutMs?: number;
  /** Sustained requests per second per cluster. Default 20 (also when 0). */
  qps?: number;
  /** Burst above `qps`. Default 30 (also when 0). */
  burst?: number;
  /** Cache behaviour of clients. */
  cache?: {
    /** Kinds that `getClient`/`getReader` always read live. */
    disableFor?: KindRef[];
  };
}

/**
 * Health probe settings.
 *
 * @example Declaring a cluster dead after about 30 s of silence
 * ```ts
 * import type { HealthProbeOptions } from "@fleetkit/clustercache";
 *
 * // Probes every 5 s, each allowed 3 s; six failures in a row disconnect.
 * const healthProbe: HealthProbeOptions = { intervalMs: 5_000, timeoutMs: 3_000, failureThreshold: 6 };
 * ```
 */
export interface HealthProbeOptions {
  /** Time between probes of a connected cluster, in ms. Default 10,000. */
  intervalMs?: number;
  /** Timeout of one probe (`GET /`), in ms. Default 5,000. */
  timeoutMs?: number;
  /** Consecutive failures that disconnect a cluster. Default 5. */
  failureThreshold?: number;
  /**
   * Consecutive successes that make a failing cluster healthy again (its failure count back to 0,
   * its last success recorded). Default 1, Cluster API's rule; more gives hysteresis (Karmada's
   * success threshold): a cluster that fails and succeeds by turns still reaches the failure
   * threshold and is disconnected.
   */
  successThreshold?: number;
}

/**
 * Reads kubeconfig Secrets (`<cluster>-kubeconfig`, key `value`). The default watches Secrets labelled
 * `cluster.x-k8s.io/cluster-name` in the management cluster and reads unlabelled ones live.
 *
 * @example Kubeconfigs from somewhere else (here: the simulator's store, counting reads)
 * ```ts
 * import assert from "node:assert/strict";
 * import { KubeConfig } from "@kubernetes/client-node";
 * import { ClusterCache, type SecretReader } from "@fleetkit/clustercache";
 * import { SimulatedFleet } from "@fleetkit/clustercache/testing";
 *
 * await using fleet = await SimulatedFleet.start({ clusters: 1 });
 * const management = new KubeConfig();
 * management.loadFromString(fleet.managementKubeconfig());
 * const secrets = fleet.management.typeOf("", "secrets")!;
 * let reads = 0;
 * const secretReader: SecretReader = {
 *   get(key, signal) {
 *     signal.throwIfAborted();
 *     reads++;
 *     return Promise.resolve(fleet.management.store.get(secrets, key.namespace, key.name));
 *   },
 * };
 * await using cache = await ClusterCache.setup({
 *   management,
 *   secretReader,
 *   client: { userAgent: "docs" },
 * });
 * for await (const _cluster of cache.getClusterSource("docs", (c) => [c.metadata!.name!])) break;
 * assert.ok(reads > 0);
 * ```
 */
export interface SecretReader {
  /**
   * Returns the Secret, or `undefined` when it does not exist.
   *
   * @param key Namespace and name of the Secret.
   * @param signal Cancels the read.
   */
  get(key: ObjectKey, signal: AbortSignal): Promise<KubeObject | undefined>;
}

/**
 * Options of {@linkcode ClusterCache.setup}. Only `management` and `client.userAgent` are required;
 * the defaults are Cluster API's.
 *
 * @example Serving only some clusters, with quicker probes
 * ```ts
 * import assert from "node:assert/strict";
 * import { KubeConfig } from "@kubernetes/client-node";
 * import { ClusterCache, type ClusterCacheOptions } from "@fleetkit/clustercache";
 * import { SimulatedFleet } from "@fleetkit/clustercache/testing";
 *
 * await using fleet = await SimulatedFleet.start({ clusters: 2 });
 * const management = new KubeConfig();
 * management.loadFromString(fleet.managementKubeconfig());
 * const options: ClusterCacheOptions = {
 *   management,
 *   client: { userAgent: "my-operator/1.4.0", timeoutMs: 5_000 },
 *   clusterFilter: (cluster) => cluster.metadata?.name !== "workload-2",
 *   healthProbe: { intervalMs: 5_000, timeoutMs: 2_000, failureThreshold: 3 },
 *   connectionCreationRetryIntervalMs: 10_000,
 *   cache: { defaultTransform: "stripManagedFields" },
 * };
 * await using cache = await ClusterCache.setup(options);
 * for await (const cluster of cache.getClusterSource("docs", (c) => [c.metadata!.name!])) {
 *   assert.equal(cluster, "workload-1");
 *   break;
 * }
 * assert.deepEqual(cache.clusters().map((c) => c.name), ["workload-1"]);
 * ```
 */
export interface ClusterCacheOptions {
  /**
   * The management cluster, which holds the `Cluster` objects and kubeconfig Secrets: a client-node
   * `KubeConfig` (in-cluster service-account credentials work; exec plugins do not).
   */
  management: KubeConfigLike;
  /** Replaces how kubeconfig Secrets are read. */
  secretReader?: SecretReader;
  /** Only Clusters whose `cluster.x-k8s.io/watch-filter` label equals this are served (empty: all). */
  watchFilterValue?: string;
  /** `false` means: disconnect from this Cluster and forget it. */
  clusterFilter?: (cluster: KubeObject) => boolean;
  /** Client settings. */
  client: ClientOptions;
  /** Cache settings. */
  cache?: CacheOptions;
  /** Health probing. */
  healthProbe?: HealthProbeOptions;
  /** Minimum time between failed connection attempts, in ms. Default 30,000. */
  connectionCreationRetryIntervalMs?: number;
  /** How long an informer may take to sync (and setup to read the management cluster), in ms. Default 300,000. */
  initialSyncTimeoutMs?: number;
  /** Timeout of informer watch requests, in ms (longer than their server-side timeout). Default 660,000. */
  watchRequestTimeoutMs?: number;
  /** A watch silent this long (no event, no bookmark) is restarted, in ms. Default 150,000. */
  watchIdleTimeoutMs?: number;
  /** Requeue of a reconcile that collected no other duration, in ms. Default 10,000. */
  defaultRequeueAfterMs?: number;
  /**
   * The fleet-wide budget of informer lists in flight: when 1,000 clusters connect at once (a
   * restart), at most `concurrency` lists holding at most `objects` objects between them run at
   * once; lists a read waits for go first. Default `{ concurrency: 32, objects: 200000 }`; `false`
   * lists at once.
   */
  listBudget?: { concurrency?: number; objects?: number } | false;
  /**
   * How long a cluster disconnected by failed probes keeps its last cache for readers that asked
   * for stale reads (`getReader(cluster, { allowStale: true })`), in ms. Nothing is kept for
   * clusters no such reader asked for. Default 300,000; 0 keeps nothing.
   */
  staleCacheMs?: number;
  /**
   * The Pod this process runs as. Default: from `POD_NAMESPACE`, `POD_NAME` and `POD_UID` when all
   * are set. `null` turns the check off.
   */
  podIdentity?: PodIdentity | null;
  /**
   * The API server's in-cluster address and CA, used when this process runs in the workload cluster.
   * Default: `KUBERNETES_SERVICE_HOST`/`PORT` and the service-account CA file.
   */
  inClusterConfig?: { server: string; caPem: string } | null;
  /**
   * Deno permissions of the workers. `"least"` gives each worker network access to its own API
   * server only, and nothing else; it needs `"unstable": ["worker-options"]` in the application's
   * `deno.json` (or `--unstable-worker-options`), and `setup()` rejects it with `UnstableFlagMissing`
   * when the feature is known to be off. `"inherit"` gives workers the process's permissions.
   * Default: `"least"` when the feature is on, else `"inherit"` with one warning in the log.
   */
  workerPermissions?: "least" | "inherit";
  /** Largest response accepted from a workload cluster, in bytes. Default 256 MiB. */
  maxResponseBytes?: number;
  /** Page size of informer lists. Default 500. */
  listPageSize?: number;
  /**
   * Informers sync by streaming (WatchList: a watch with `sendInitialEvents`, as client-go does by
   * default since 1.35), falling back to paged lists where the API server refuses it. `false`
   * always lists in pages. Default `true`.
   */
  watchList?: boolean;
  /**
   * Shares the fleet with other replicas through Leases in the management cluster: each Cluster is
   * served by exactly one replica; a replica that dies is replaced within a lease duration. Default:
   * this process serves every Cluster.
   */
  sharding?: ShardingOptions;
  /** How clusters are spread over workers. Default: a worker per cluster. */
  workers?: WorkerPoolOptions;
  /**
   * Networks (CIDRs) a workload cluster's API server may not be in: a kubeconfig whose server is
   * there, or resolves there, is refused with `InvalidKubeconfig` before anything is sent, and every
   * connection checks again. Default: link-local and cloud metadata endpoints (`169.254.0.0/16`,
   * `fe80::/10`, `fd00:ec2::254/128`, `100.100.100.200/32`). Loopback is allowed unless listed.
   * `[]` denies nothing.
   */
  deniedNetworks?: string[];
}

/**
 * How clusters are spread over workers. `"dedicated"` (the default) gives every cluster a worker of
 * its own: the strongest isolation, ~9 MB and a worker start per cluster. `"pooled"` lets up to
 * `clustersPerWorker` clusters share a worker, each still with its own HTTP client, informers, rate
 * limiter and probe, and **promotes** a cluster whose load would slow its neighbours (many objects,
 * an event flood, thread time) to a worker of its own, make-before-break: its watches move without
 * losing or repeating an event. A promoted cluster that stays calm for `promotion.calmMs` moves
 * back. A cluster that crashes or hangs its pooled worker is restarted in a worker of its own; its
 * neighbours reconnect at once.
 *
 * @example A thousand clusters in ten workers instead of the default four
 * ```ts
 * import type { WorkerPoolOptions } from "@fleetkit/clustercache";
 *
 * const workers: WorkerPoolOptions = {
 *   mode: "pooled",
 *   clustersPerWorker: 100,
 *   promotion: { objects: 20_000, eventsPerSecond: 200 },
 * };
 * ```
 */
export interface WorkerPoolOptions {
  /** `"dedicated"` or `"pooled"`. Default `"dedicated"`. */
  mode?: "dedicated" | "pooled";
  /**
   * Clusters sharing one pooled worker. Default 250: a worker costs ~22 MB of its own, so fewer
   * clusters a worker cost more memory each (0.58 MB a cluster at 1,000 with 100, 0.45 with 250).
   */
  clustersPerWorker?: number;
  /** Pooled workers at most; beyond, clusters crowd into them. Default 64. */
  maxWorkers?: number;
  /** When a pooled cluster gets a worker of its own. */
  promotion?: {
    /** Cached objects above which a cluster is promoted. Default 10,000. */
    objects?: number;
    /** Watch events a second (over the window) above which it is promoted. Default 100. */
    eventsPerSecond?: number;
    /** Share of its worker's thread (over the window) above which it is promoted. Default 0.1. */
    busyRatio?: number;
    /** The window, in ms. Default 10,000. */
    windowMs?: number;
    /** A promoted cluster under half of each threshold this long moves back, in ms. Default 300,000. */
    calmMs?: number;
  };
}

/** How clusters are spread over workers (defaults applied). */
export interface PoolSettings {
  /** `"dedicated"`: a worker per cluster. `"pooled"`: clusters share workers, the busy ones promoted. */
  mode: "dedicated" | "pooled";
  /** Clusters per pooled worker. */
  clustersPerWorker: number;
  /** Pooled workers at most (promoted clusters' own workers are not counted). */
  maxWorkers: number;
}

/** What the process's command line and config file say about `worker-options`. */
export type WorkerOptionsFlag =
  | { state: "enabled"; evidence: string }
  | { state: "disabled"; evidence: string }
  | { state: "unknown"; evidence: string };

/** The permissions workers get, and the one warning to log when the default had to give way. */
export interface WorkerPermissionsChoice {
  /** `"least"`: each worker gets only its own API server; `"inherit"`: the process's permissions. */
  permissions: "least" | "inherit";
  /** Set when least privilege was the default and is not available. */
  warning?: string;
}

/**
 * Decides the workers' permissions. The default is least privilege when the process can grant it,
 * else inherited permissions with a warning: a newcomer's first run works, and the warning says how
 * to get least privilege. An explicit `"least"` is trusted unless the flag is known to be off, where
 * Deno would end the process at the first connect: that is refused with a typed error instead.
 *
 * @param requested `options.workerPermissions`.
 * @param flag What `workerOptionsFlag()` (worker_options_flag.ts) found.
 * @returns The choice.
 * @throws {ClusterCacheError} `UnstableFlagMissing` for `"least"` when the flag is known to be off.
 */
export function chooseWorkerPermissions(
  requested: "least" | "inherit" | undefined,
  flag: WorkerOptionsFlag,
): WorkerPermissionsChoice {
  if (requested === "inherit") return { permissions: "inherit" };
  if (requested === "least") {
    if (flag.state !== "disabled") return { permissions: "least" };
    throw new ClusterCacheError(
      "UnstableFlagMissing",
      `options.workerPermissions "least" needs Deno's worker-options feature, which is off (${flag.evidence}): ` +
        `add "unstable": ["worker-options"] to deno.json or run with ${FLAG}, ` +
        `or pass workerPermissions: "inherit"`,
    );
  }
  if (flag.state === "enabled") return { permissions: "least" };
  return {
    permissions: "inherit",
    warning: `Workers inherit this process's permissions: least-privilege workers need Deno's ` +
      `worker-options feature (${flag.evidence}). Add "unstable": ["worker-options"] to deno.json ` +
      `or run with ${FLAG}; pass workerPermissions: "inherit" to silence this warning`,
  };
}

/** A label value (and the start of a Lease name): lower-case alphanumerics and `-`, at most 40. */
const PREFIX_PATTERN = /^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$/;

/**
 * How replicas share a fleet (`ClusterCache.setup({ sharding })`): each cluster is served by one
 * replica at a time, chosen among the replicas that renew their Leases.
 *
 * @example
 * ```ts
 * import type { ShardingOptions } from "@fleetkit/clustercache";
 *
 * const sharding: ShardingOptions = {
 *   identity: Deno.env.get("POD_NAME") ?? "replica-1",
 *   leaseNamespace: "capi-system",
 * };
 * ```
 */
export interface ShardingOptions {
  /** This replica's identity: unique and stable (a Pod name). */
  identity: string;
  /** Where the Leases live in the management cluster. */
  leaseNamespace: string;
  /** Relative capacity of this replica. Default 1. */
  weight?: number;
  /** Lease duration. Default 20 s (multicluster-runtime's sharded coordinator). */
  leaseDurationMs?: number;
  /** How often Leases are renewed (a fixed cadence, whatever a round takes). Default 10 s. */
  renewIntervalMs?: number;
  /**
   * A replica that has not renewed a fencing Lease for this long stops serving its clusters.
   * Must be under the lease duration. Failed renewals are retried until then. Default 15 s.
   */
  renewDeadlineMs?: number;
  /** Buckets clusters are hashed into; the unit of ownership and of Lease writes. Default 64. */
  buckets?: number;
  /**
   * Prefix of the Lease names, and what tells this deployment from others sharing the namespace:
   * replicas see only Leases of their own prefix. Lower-case alphanumerics and `-`, at most 40
   * characters. Default `clustercache`.
   */
  leasePrefix?: string;
}

/**
 * Validates sharding options and applies the defaults.
 *
 * @throws {TypeError} Without an identity or a namespace, or for a bad Lease prefix.
 * @throws {RangeError} Unless renew interval < renew deadline < lease duration, or for a bad weight
 *   or bucket count.
 */
export function resolveSharding(options: ShardingOptions): Required<ShardingOptions> {
  if (!options || typeof options.identity !== "string" || options.identity === "") {
    throw new TypeError("options.sharding.identity must be a non-empty string");
  }
  if (typeof options.leaseNamespace !== "string" || options.leaseNamespace === "") {
    throw new TypeError("options.sharding.leaseNamespace must be a non-empty string");
  }
  const resolved: Required<ShardingOptions> = {
    weight: 1,
    leaseDurationMs: 20_000,
    renewIntervalMs: 10_000,
    renewDeadlineMs: 15_000,
    buckets: 64,
    leasePrefix: "clustercache",
    ...options,
  };
  const r = resolved;
  if (
    !(r.renewIntervalMs > 0 && r.renewIntervalMs < r.renewDeadlineMs &&
      r.renewDeadlineMs < r.leaseDurationMs)
  ) {
    throw new RangeError(
      "options.sharding needs 0 < renewIntervalMs < renewDeadlineMs < leaseDurationMs",
    );
  }
  if (!(r.weight > 0) || !Number.isInteger(r.buckets) || r.buckets < 1) {
    throw new RangeError("options.sharding.weight must be positive and buckets a positive integer");
  }
  if (typeof r.leasePrefix !== "string" || !PREFIX_PATTERN.test(r.leasePrefix)) {
    throw new TypeError(
      `options.sharding.leasePrefix must be lower-case alphanumerics and "-", at most 40 characters: ${
        JSON.stringify(r.leasePrefix)
      }`,
    );
  }
  return resolved;
}

/** Options with every default applied. */
export interface ResolvedOptions {
  management: KubeConfigLike;
  secretReader: SecretReader | undefined;
  watchFilterValue: string;
  clusterFilter: ((cluster: KubeObject) => boolean) | undefined;
  client: Required<Omit<ClientOptions, "cache">> & { disableFor: KindRef[] };
  cache: CacheOptions;
  /** What workers need to load the cache's modules (checked once, at setup). */
  moduleAccess: ModuleAccess;
  healthProbe: Required<HealthProbeOptions>;
  connectionCreationRetryIntervalMs: number;
  initialSyncTimeoutMs: number;
  watchRequestTimeoutMs: number;
  watchIdleTimeoutMs: number;
  defaultRequeueAfterMs: number;
  staleCacheMs: number;
  listBudget: { concurrency: number; objects: number } | undefined;
  podIdentity: PodIdentity | undefined;
  inClusterConfig: { server: string; caPem: string } | undefined;
  workerPermissions: "least" | "inherit";
  /** Logged once by `setup()` when least privilege was the default and is not available. */
  workerPermissionsWarning: string | undefined;
  maxResponseBytes: number;
  listPageSize: number;
  watchList: boolean;
  sharding: Required<ShardingOptions> | undefined;
  workers: PoolSettings & { pressure: PressureThresholds };
  deniedNetworks: readonly string[];
}

/** The health probe's slice of the options (Cluster API's `HealthProbeConfig`). */
export type ProbeOptions = ResolvedOptions["healthProbe"];

/** What a session's worker is configured from (`worker_config.ts`). */
export type SessionOptions = Pick<
  ResolvedOptions,
  | "healthProbe"
  | "initialSyncTimeoutMs"
  | "watchRequestTimeoutMs"
  | "watchIdleTimeoutMs"
  | "listPageSize"
  | "watchList"
  | "maxResponseBytes"
  | "cache"
  | "client"
  | "workers"
  | "podIdentity"
  | "inClusterConfig"
  | "deniedNetworks"
  | "listBudget"
>;

/**
 * A cluster accessor's slice (Cluster API's `buildClusterAccessorConfig`): how to build its
 * sessions, reach its server and probe it.
 */
export type AccessorOptions = SessionOptions;

/** What worker permissions are made from (`worker_permissions.ts`). */
export type PermissionOptions = Pick<
  ResolvedOptions,
  "workerPermissions" | "moduleAccess" | "inClusterConfig"
>;

function resolveListBudget(
  budget: ClusterCacheOptions["listBudget"],
): ResolvedOptions["listBudget"] {
  if (budget === false) return undefined;
  if (budget !== undefined && (budget === null || typeof budget !== "object")) {
    throw new TypeError("options.listBudget must be an object or false");
  }
  return {
    concurrency: count("listBudget.concurrency", budget?.concurrency, 32),
    objects: count("listBudget.objects", budget?.objects, 200_000),
  };
}

function resolveDeniedNetworks(networks: string[] | undefined): readonly string[] {
  if (networks === undefined) return DEFAULT_DENIED_NETWORKS;
  if (!Array.isArray(networks)) {
    throw new TypeError("options.deniedNetworks must be an array of CIDRs");
  }
  checkNetworks(networks, "options.deniedNetworks");
  return [...networks];
}

function count(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1) {
    throw new RangeError(`options.${name} must be a positive integer, got ${String(value)}`);
  }
  return value;
}

function resolveWorkers(
  options: WorkerPoolOptions | undefined,
): PoolSettings & { pressure: PressureThresholds } {
  const mode = options?.mode ?? "dedicated";
  if (mode !== "dedicated" && mode !== "pooled") {
    throw new RangeError(
      `options.workers.mode must be "dedicated" or "pooled", got ${String(mode)}`,
    );
  }
  const promotion = options?.promotion ?? {};
  const busyRatio = promotion.busyRatio ?? 0.1;
  if (typeof busyRatio !== "number" || !(busyRatio > 0 && busyRatio <= 1)) {
    throw new RangeError(
      `options.workers.promotion.busyRatio must be in (0, 1], got ${String(busyRatio)}`,
    );
  }
  return {
    mode,
    clustersPerWorker: count("workers.clustersPerWorker", options?.clustersPerWorker, 250),
    maxWorkers: count("workers.maxWorkers", options?.maxWorkers, 64),
    pressure: {
      objects: count("workers.promotion.objects", promotion.objects, 10_000),
      eventsPerSecond: duration(
        "workers.promotion.eventsPerSecond",
        promotion.eventsPerSecond,
        100,
      ),
      busyRatio,
      windowMs: duration("workers.promotion.windowMs", promotion.windowMs, 10_000),
      calmMs: duration("workers.promotion.calmMs", promotion.calmMs, 300_000),
    },
  };
}

function duration(
  name: string,
  value: number | undefined,
  fallback: number,
  zeroMeansDefault = false,
): number {
  if (value === undefined || (zeroMeansDefault && value === 0)) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) {
    throw new RangeError(`options.${name} must be a positive number, got ${String(value)}`);
  }
  return value;
}

function defaultPodIdentity(): PodIdentity | undefined {
  try {
    const namespace = Deno.env.get("POD_NAMESPACE");
    const name = Deno.env.get("POD_NAME");
    const uid = Deno.env.get("POD_UID");
    return namespace && name && uid ? { namespace, name, uid } : undefined;
  } catch {
    return undefined; // no env permission: not detectable
  }
}

function defaultInClusterConfig(): { server: string; caPem: string } | undefined {
  try {
    const host = Deno.env.get("KUBERNETES_SERVICE_HOST");
    const port = Deno.env.get("KUBERNETES_SERVICE_PORT");
    if (!host || !port) return undefined;
    const caPem = Deno.readTextFileSync("/var/run/secrets/kubernetes.io/serviceaccount/ca.crt");
    return { server: `https://${host.includes(":") ? `[${host}]` : host}:${port}`, caPem };
  } catch {
    return undefined;
  }
}

/**
 * Validates options and applies Cluster API's defaults.
 *
 * @param flag What the process says about Deno's `worker-options` feature (`workerOptionsFlag()`
 *   looks; `setup()` passes it).
 * @throws {TypeError} For a missing management KubeConfig or user agent.
 * @throws {RangeError} For a negative, zero or non-finite duration or count.
 */
export function resolveOptions(
  options: ClusterCacheOptions,
  flag: () => WorkerOptionsFlag,
): ResolvedOptions {
  if (!options || typeof options !== "object") throw new TypeError("options must be set");
  if (!options.management || typeof options.management.getCurrentContext !== "function") {
    throw new TypeError("options.management must be set to a KubeConfig of the management cluster");
  }
  if (
    !options.client || typeof options.client.userAgent !== "string" ||
    options.client.userAgent === ""
  ) {
    throw new TypeError("options.client.userAgent must be set");
  }
  if (options.clusterFilter !== undefined && typeof options.clusterFilter !== "function") {
    throw new TypeError("options.clusterFilter must be a function");
  }
  const probe = options.healthProbe ?? {};
  const threshold = probe.failureThreshold ?? 5;
  if (!Number.isInteger(threshold) || threshold < 1) {
    throw new RangeError(
      `options.healthProbe.failureThreshold must be a positive integer, got ${threshold}`,
    );
  }
  const successThreshold = probe.successThreshold ?? 1;
  if (!Number.isInteger(successThreshold) || successThreshold < 1) {
    throw new RangeError(
      `options.healthProbe.successThreshold must be a positive integer, got ${successThreshold}`,
    );
  }
  const requested = options.workerPermissions;
  if (requested !== undefined && requested !== "least" && requested !== "inherit") {
    throw new RangeError(
      `options.workerPermissions must be "least" or "inherit", got ${String(requested)}`,
    );
  }
  const workers = chooseWorkerPermissions(requested, flag());
  if (options.watchList !== undefined && typeof options.watchList !== "boolean") {
    throw new TypeError(`options.watchList must be a boolean, got ${typeof options.watchList}`);
  }
  const pageSize = options.listPageSize ?? 500;
  if (!Number.isInteger(pageSize) || pageSize < 1) {
    throw new RangeError(`options.listPageSize must be a positive integer, got ${pageSize}`);
  }
  return {
    management: options.management,
    secretReader: options.secretReader,
    sharding: options.sharding === undefined ? undefined : resolveSharding(options.sharding),
    deniedNetworks: resolveDeniedNetworks(options.deniedNetworks),
    watchFilterValue: options.watchFilterValue ?? "",
    clusterFilter: options.clusterFilter,
    client: {
      userAgent: options.client.userAgent,
      timeoutMs: duration("client.timeoutMs", options.client.timeoutMs, 10_000, true),
      qps: duration("client.qps", options.client.qps, 20, true),
      burst: duration("client.burst", options.client.burst, 30, true),
      disableFor: [...(options.client.cache?.disableFor ?? [])],
    },
    cache: options.cache ?? {},
    moduleAccess: checkCacheOptions(options.cache ?? {}),
    healthProbe: {
      intervalMs: duration("healthProbe.intervalMs", probe.intervalMs, 10_000),
      timeoutMs: duration("healthProbe.timeoutMs", probe.timeoutMs, 5_000),
      failureThreshold: threshold,
      successThreshold,
    },
    connectionCreationRetryIntervalMs: duration(
      "connectionCreationRetryIntervalMs",
      options.connectionCreationRetryIntervalMs,
      30_000,
    ),
    initialSyncTimeoutMs: duration("initialSyncTimeoutMs", options.initialSyncTimeoutMs, 300_000),
    watchRequestTimeoutMs: duration(
      "watchRequestTimeoutMs",
      options.watchRequestTimeoutMs,
      660_000,
    ),
    watchIdleTimeoutMs: duration("watchIdleTimeoutMs", options.watchIdleTimeoutMs, 150_000),
    defaultRequeueAfterMs: duration("defaultRequeueAfterMs", options.defaultRequeueAfterMs, 10_000),
    listBudget: resolveListBudget(options.listBudget),
    staleCacheMs: options.staleCacheMs === 0
      ? 0
      : duration("staleCacheMs", options.staleCacheMs, 300_000),
    podIdentity: options.podIdentity === null
      ? undefined
      : options.podIdentity ?? defaultPodIdentity(),
    inClusterConfig: options.inClusterConfig === null
      ? undefined
      : options.inClusterConfig ?? defaultInClusterConfig(),
    workerPermissions: workers.permissions,
    workerPermissionsWarning: workers.warning,
    maxResponseBytes: duration("maxResponseBytes", options.maxResponseBytes, 256 * 1024 * 1024),
    listPageSize: pageSize,
    watchList: options.watchList ?? true,
    workers: resolveWorkers(options.workers),
  };
}
