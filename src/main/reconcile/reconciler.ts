/**
 * The reconciler (main thread): one work queue over the management cluster's Clusters that
 * connects, probes and disconnects workload clusters by Cluster API's rules (its step reads like
 * Cluster API's `Reconcile`), and tells cluster sources what happened. It owns the cache's state:
 * the accessors, the {@linkcode WatchRegistry} and the {@linkcode SourceRegistry}; kubeconfig
 * rotation (`rotation.ts`) and moves between workers (`moves.ts`) are parts it drives. The
 * {@linkcode ClusterCache} facade asks it through methods.
 *
 * @module
 */

import { ClusterCacheError, describeError } from "../../shared/errors.ts";
import { formatObjectKey, type KubeObject } from "../../shared/kube_object.ts";
import type { RESTConfig } from "../../shared/rest_config.ts";
import { ClusterAccessor, type ConnectContext } from "./accessor.ts";
import { AimdLimit } from "./aimd_limit.ts";
import { parseClusterKey } from "../management/cluster_key.ts";
import {
  infrastructureReady,
  kubeconfigSecret,
  passesWatchFilter,
} from "../management/cluster_object.ts";
import { forwardWorkerLog, logger } from "../log.ts";
import { LoopLagMonitor } from "./loop_lag.ts";
import type { ManagementCluster } from "../management/management_cluster.ts";
import type { ClusterCacheMetrics } from "../metrics/metrics.ts";
import { Moves } from "./moves.ts";
import type { ResolvedOptions } from "../options.ts";
import { placementOf } from "../sessions/placement.ts";
import { ReconcileStep } from "./reconcile_step.ts";
import { shouldRequeue } from "./requeue.ts";
import { KubeconfigRotation } from "./rotation.ts";
import type { ShardCoordinator } from "../sharding/shard_coordinator.ts";
import { type ClusterState, SourceRegistry } from "../sources/source_registry.ts";
import { WatchRegistry } from "../watches/watch_registry.ts";
import type {
  Placement,
  SessionHooks,
  WorkerHost,
  WorkerPermissions,
} from "../sessions/session.ts";
import { workerPermissions } from "../sessions/worker_permissions.ts";
import { WorkerPool } from "../sessions/worker_pool.ts";
import { ListBudget } from "../sessions/list_budget.ts";
import { ClusterHistory } from "./cluster_history.ts";
import { WorkQueue } from "./work_queue.ts";

/** Reconciles Clusters; holds the accessors, watches and sources the facade serves from. */
export class Reconciler {
  readonly #options: ResolvedOptions;
  readonly #metrics: ClusterCacheMetrics;
  readonly #log = logger("reconciler");
  readonly #workerLog = logger("worker");
  /** Every Cluster known, connected or not, by `namespace/name`. */
  readonly #accessors = new Map<string, ClusterAccessor>();
  /** The watches added through the cache. */
  readonly watches: WatchRegistry;
  /** The cluster sources. */
  readonly sources: SourceRegistry;
  readonly #rotation: KubeconfigRotation;
  readonly #moves: Moves;
  readonly #lifetime = new AbortController();
  readonly #queue: WorkQueue;
  // Connects start workers (CPU) and handshake with API servers: admitted at the rate that succeeds.
  readonly #admission = new AimdLimit({
    initial: 2 * (navigator.hardwareConcurrency || 2),
    min: 1,
    max: 64,
  });
  // Probes out at once: Cluster API's clustercache controller runs at most 100 reconciles at once;
  // fewer while probes time out, so an overloaded machine or API server gets less to do, not more.
  readonly #probes = new AimdLimit({ initial: 100, min: 1, max: 100 });
  // Tells probes that time out because this process is starved from probes of a dead cluster.
  readonly #lag = new LoopLagMonitor();
  #management: ManagementCluster | undefined;
  #shards: ShardCoordinator | undefined;
  /** Clusters let go because another replica serves them; their sources hear `disconnect`. */
  readonly #handedOff = new Set<string>();
  /** Workers whose heap is in the metrics (their series go when they end). */
  readonly #heapReported = new WeakSet<WorkerHost>();
  /** Whether this replica served each cluster when the coordinator last reported. */
  readonly #owned = new Map<string, boolean>();
  readonly #pool: WorkerPool;
  /** What happened to each cluster lately. */
  readonly history: ClusterHistory = new ClusterHistory();
  /** The fleet's budget of informer lists in flight (restart storms). */
  readonly #lists: ListBudget | undefined;

  constructor(options: ResolvedOptions, metrics: ClusterCacheMetrics) {
    this.#options = options;
    this.#metrics = metrics;
    this.#pool = new WorkerPool(options.workers, (message) => this.#log.warn(message));
    this.#lists = options.listBudget && new ListBudget(options.listBudget);
    this.#queue = new WorkQueue(
      (key) => this.#reconcile(key),
      (key, error) => {
        this.#log.error("Reconcile failed", {
          cluster: key,
          error: describeError(error),
        });
        return options.defaultRequeueAfterMs;
      },
    );
    this.watches = new WatchRegistry({
      syncMs: options.initialSyncTimeoutMs + options.client.timeoutMs + 1_000,
      callMs: options.client.timeoutMs,
    }, this.#log);
    this.sources = new SourceRegistry(this.#log, () => this.#connectedClusters());
    const connectContext = (key: string, accessor: ClusterAccessor) =>
      this.#connectContext(key, accessor);
    this.#rotation = new KubeconfigRotation({
      options,
      history: this.history,
      log: this.#log,
      metrics,
      watches: this.watches,
      readSecret: (accessor, live) => this.#readSecret(accessor, live),
      connectContext,
    });
    this.#moves = new Moves({
      options,
      history: this.history,
      log: this.#log,
      metrics,
      watches: this.watches,
      connectContext,
      writableUntil: (key) => this.#writableUntil(key),
      signal: this.#lifetime.signal,
    });
  }

  /** The cluster's accessor, connected or not (`undefined`: not known, or forgotten). */
  accessor(key: string): ClusterAccessor | undefined {
    return this.#accessors.get(key);
  }

  /**
   * With sharding: whether this replica serves `key`, and which replica should, as this one sees
   * the members (`undefined` without sharding).
   */
  shardOf(key: string): { servedHere: boolean; owner: string | undefined } | undefined {
    const shards = this.#shards;
    return shards ? { servedHere: shards.owns(key), owner: shards.ownerOf(key) } : undefined;
  }

  /** Keys of the clusters known (reconciled and not forgotten). */
  clusterKeys(): string[] {
    return [...this.#accessors.keys()];
  }

  /** This thread's worst event-loop lag since a `performance.now()` time (for probes). */
  readonly mainLagSince = (since: number): number => this.#lag.maxLagSince(since);

  /** Reconciles a cluster soon (its Cluster or Secret changed). */
  enqueue(key: string): void {
    this.#queue.add(key);
  }

  /** Starts measuring this thread's event-loop lag (probes need it to tell starvation apart). */
  start(): void {
    this.#lag.start();
  }

  /**
   * Serves the management cluster's Clusters from now on: every one is reconciled, and, with
   * sharding, those this replica owns (`shards` reports each change of ownership).
   */
  serve(management: ManagementCluster, shards?: ShardCoordinator): void {
    this.#management = management;
    if (shards) {
      this.#shards = shards;
      shards.onChange(() => this.#shardsChanged());
      shards.start();
    }
    for (const key of management.clusterKeys()) this.#queue.add(key);
  }

  /**
   * Stops everything: releases this replica's Leases first (so the others take over without
   * waiting them out), then the queue, every connection, watch and source. Safe to call twice.
   */
  async stop(): Promise<void> {
    await this.#shards?.stop().catch(() => {});
    this.#lifetime.abort(new ClusterCacheError("Closed", "the ClusterCache was closed"));
    this.#lag.stop();
    this.#management?.close();
    await this.#queue.stop();
    this.watches.close(); // before the disconnects: a watch waiting to sync learns the cache closed
    for (const accessor of this.#accessors.values()) {
      this.#disconnect(accessor);
      accessor.dropSpare();
      accessor.dropRetained();
    }
    // Abandoned moves end their workers before close() returns: none may outlive the cache.
    await this.#moves.settled();
    this.#accessors.clear();
    this.sources.close();
  }

  /** The permissions of a session's worker (a pooled one's are its pool's). */
  permissions(
    rest: RESTConfig,
    placement: Placement = "dedicated",
  ): WorkerPermissions {
    const pooled = placementOf(this.#pool.mode, placement) === "pooled";
    // A pooled worker's permissions are its pool's: nothing of one session's in them.
    return workerPermissions(rest, this.#options, pooled);
  }

  // ------------------------------------------------------------------------- the step

  /** Cluster API's `Reconcile`, with rotation, sharding and placement where it leaves gaps. */
  async #reconcile(key: string): Promise<number | undefined> {
    const management = this.#management;
    if (!management || this.#lifetime.signal.aborted) return undefined;
    const cluster = management.cluster(key);
    if (!cluster) {
      this.#cleanup(key, "the Cluster was deleted");
      return undefined;
    }
    if (!this.#selected(cluster, key)) {
      this.#cleanup(key, "the Cluster is filtered out");
      return undefined;
    }
    const step = new ReconcileStep();
    const accessor = this.#accessorOf(key, cluster, step);
    if (!infrastructureReady(cluster)) {
      this.#log.debug("Infrastructure is not ready; not connecting", { cluster: key });
      // A Cluster created again is not ready yet as a rule: its sources still hear the old one go.
      if (step.transitions.length > 0) {
        this.sources.reconciled(key, cluster, this.#stateOf(accessor), step.transitions);
      }
      return undefined;
    }
    if (this.#shards && !this.#shards.owns(key)) {
      this.#stayAway(key, accessor, step);
      return this.#finish(key, cluster, accessor, step);
    }
    if (accessor.connection && !accessor.connection.session.alive) this.#crashed(accessor, step);
    await this.#rotation.check(key, accessor, step);
    if (this.#shards && !this.#shards.owns(key)) {
      // Handed over while the Secret was read or a new connection made: stay away.
      this.#stayAway(key, accessor, step);
      return this.#finish(key, cluster, accessor, step);
    }
    if (!accessor.connected) await this.#connect(key, accessor, step);
    if (accessor.connected) await this.#healthCheck(key, accessor, step);
    if (accessor.connected && !this.#lifetime.signal.aborted) this.#moves.place(key, accessor);
    return this.#finish(key, cluster, accessor, step);
  }

  /** Connects, unless the last attempt failed too lately (and the Secret did not change since). */
  async #connect(key: string, accessor: ClusterAccessor, step: ReconcileStep): Promise<void> {
    const retryMs = this.#options.connectionCreationRetryIntervalMs;
    const wait = shouldRequeue(Date.now(), accessor.lastConnectionCreationErrorTime, retryMs);
    if (wait.requeue && !(await this.#secretChangedSinceFailure(accessor))) {
      step.requeues.push(wait.afterMs);
      return;
    }
    try {
      await accessor.connect(this.#connectContext(key, accessor));
    } catch (error) {
      this.#metrics.connection(accessor.key, false);
      const code = error instanceof ClusterCacheError ? error.code : "Other";
      this.#metrics.connectionError(accessor.key, code);
      this.#log.warn("Connecting to workload cluster failed", {
        cluster: key,
        code,
        error: (error as Error).message,
      });
      this.history.record(key, "connect-failed", `${code}: ${(error as Error).message}`);
      step.requeues.push(retryMs);
      return;
    }
    if (this.#shards && !this.#shards.owns(key)) {
      // Handed to another replica while connecting: never serve it, not even for a moment.
      this.#disconnect(accessor);
      return;
    }
    step.transitions.push("connect");
    this.#metrics.connection(accessor.key, true);
    this.#metrics.placement(accessor.key, accessor.connection?.session.placement === "dedicated");
    this.#log.info("Connected to workload cluster", { cluster: key });
    const placement = accessor.connection?.session.placement ?? "dedicated";
    this.history.record(key, "connected", `connected, in a ${placement} worker`);
  }

  /** A Secret that changed since the attempt that failed is worth trying at once. */
  async #secretChangedSinceFailure(accessor: ClusterAccessor): Promise<boolean> {
    if (accessor.failedSecretVersion === null) return false;
    const current = (await this.#readSecret(accessor, false))?.metadata?.resourceVersion;
    return current !== undefined && current !== accessor.failedSecretVersion;
  }

  /**
   * Probes the cluster unless it was probed lately, and disconnects when the accessor says so
   * (Cluster API: `tooManyConsecutiveFailures, unauthorized := accessor.HealthCheck(ctx)`), unless
   * a 401 is explained by rotated credentials.
   */
  async #healthCheck(key: string, accessor: ClusterAccessor, step: ReconcileStep): Promise<void> {
    const probe = this.#options.healthProbe;
    const wait = shouldRequeue(Date.now(), accessor.health.lastProbeTime, probe.intervalMs);
    if (wait.requeue) {
      step.requeues.push(wait.afterMs);
      return;
    }
    const probed = accessor.connection;
    if (!probed) return;
    // Let go (a hand-over, close) while waiting for a slot or while the probe was out: an answer is
    // of a session that no longer serves. A move keeps the connection's id.
    const letGo = () => accessor.connection?.id !== probed.id;
    const slot = await this.#probes.acquire(this.#lifetime.signal).catch(() => undefined);
    if (!slot) return; // closed
    if (letGo()) {
      slot.release("neutral");
      step.requeues.push(1);
      return;
    }
    let result;
    try {
      result = await accessor.healthCheck(probe, this.mainLagSince);
    } catch (error) {
      slot.release("neutral");
      throw error;
    }
    slot.release(
      result.verdict === "success" ? "success" : result.overload ? "overload" : "neutral",
    );
    const counted = result.verdict === "failure" || result.verdict === "unauthorized";
    const gone = letGo();
    if (gone || (result.verdict === "crashed" && accessor.connection !== probed)) {
      // A worker a move ended under the probe says nothing of the one that serves now.
      if (gone && counted) accessor.forgiveLastFailure();
      step.requeues.push(1);
      return;
    }
    if (result.verdict === "crashed") {
      this.#crashed(accessor, step);
      step.requeues.push(1);
      return;
    }
    if (result.verdict === "inconclusive") {
      this.#metrics.inconclusiveProbe(accessor.key);
      this.#log.debug("Health probe inconclusive: this process was starved of CPU", {
        cluster: key,
      });
    } else this.#metrics.probe(accessor.key, result.verdict === "success");
    if (counted) {
      this.history.record(
        key,
        "probe-failed",
        `${
          result.verdict === "unauthorized" ? "401 Unauthorized" : "failed"
        }: ${accessor.health.consecutiveFailures} of ${probe.failureThreshold} in a row`,
      );
    }
    if (result.heapUsedBytes !== undefined) this.#reportHeap(accessor, result.heapUsedBytes);
    let { unauthorized, tooManyFailures } = result;
    if (unauthorized && await this.#rotation.explainsUnauthorized(key, accessor, step)) {
      accessor.forgiveLastFailure();
      unauthorized = false;
      tooManyFailures = accessor.tooManyFailures(probe);
    } else if (unauthorized && accessor.connection !== probed) {
      // Let go or moved while the Secret was read: the 401 was the old session's.
      accessor.forgiveLastFailure();
      step.requeues.push(1);
      return;
    }
    if (unauthorized || tooManyFailures) {
      this.#log.warn("Disconnecting from workload cluster", {
        cluster: key,
        reason: unauthorized ? "unauthorized" : "too many failed health probes",
        consecutiveFailures: accessor.health.consecutiveFailures,
      });
      // Its last cache stays readable for a while for readers that asked for stale reads.
      this.#disconnect(accessor, this.#options.staleCacheMs);
      this.history.record(
        key,
        "disconnected",
        unauthorized ? "its credentials were refused (401)" : "too many failed health probes",
      );
      step.transitions.push("disconnect");
    }
    step.requeues.push(
      unauthorized
        ? 1
        : tooManyFailures
        ? this.#options.connectionCreationRetryIntervalMs
        : probe.intervalMs,
    );
  }

  /**
   * A crashed worker is one failed probe that no later probe can fix: disconnect (and reconnect). A
   * pooled neighbour of the cluster that crashed it is not to blame: no failure is counted.
   */
  #crashed(accessor: ClusterAccessor, step: ReconcileStep): void {
    const session = accessor.connection?.session;
    if (!session || session.culprit || session.placement === "dedicated") {
      accessor.recordFailedProbe();
      this.#metrics.probe(accessor.key, false);
    }
    if (this.#disconnect(accessor)) {
      this.history.record(formatObjectKey(accessor.key), "disconnected", "its worker failed");
    }
    step.transitions.push("disconnect");
  }

  #finish(
    key: string,
    cluster: KubeObject,
    accessor: ClusterAccessor,
    step: ReconcileStep,
  ): number | undefined {
    if (this.#lifetime.signal.aborted) {
      this.#disconnect(accessor);
      return undefined;
    }
    this.sources.reconciled(key, cluster, this.#stateOf(accessor), step.transitions);
    return step.requeueAfter(this.#options.defaultRequeueAfterMs);
  }

  // ------------------------------------------------------------------------- accessors

  /**
   * The cluster's accessor, made on first sight. A Cluster is who it was: one deleted and created
   * again under the same name (a new UID) is a new cluster, whatever its kubeconfig says. The old
   * connection, watches, cache and key go, and its sources hear a disconnect before the connect.
   */
  #accessorOf(key: string, cluster: KubeObject, step: ReconcileStep): ClusterAccessor {
    const uid = cluster.metadata?.uid;
    let accessor = this.#accessors.get(key);
    if (accessor && uid !== undefined && accessor.uid !== undefined && accessor.uid !== uid) {
      const wasConnected = accessor.connected;
      this.#cleanup(key, "the Cluster was created again (a new UID)");
      if (wasConnected) step.transitions.push("disconnect");
      accessor = undefined;
    }
    if (!accessor) {
      accessor = new ClusterAccessor(parseClusterKey(key), uid);
      this.#accessors.set(key, accessor);
    }
    return accessor;
  }

  /**
   * @param retainMs How long to keep its last cache for stale readers (0: not at all).
   * @returns Whether it was connected.
   */
  #disconnect(accessor: ClusterAccessor, retainMs = 0): boolean {
    this.#moves.abandon(accessor); // its new worker would outlive the connection
    const id = accessor.connection?.id;
    if (!accessor.disconnect(retainMs)) return false;
    this.#metrics.connection(accessor.key, false);
    this.#metrics.informersGone(accessor.key);
    this.watches.forget(id);
    return true;
  }

  #cleanup(key: string, why: string): void {
    const accessor = this.#accessors.get(key);
    if (accessor) {
      this.#log.info("Forgetting cluster", { cluster: key, reason: why });
      this.#disconnect(accessor);
      accessor.dropSpare();
      accessor.dropRetained();
      this.#accessors.delete(key);
    }
    this.sources.forget(key);
    this.history.forget(key);
    this.#owned.delete(key);
    this.#handedOff.delete(key);
    this.#metrics.forget(parseClusterKey(key));
  }

  /** The watch-filter label and the user's `clusterFilter` (one that throws lets the Cluster in). */
  #selected(cluster: KubeObject, key: string): boolean {
    if (!passesWatchFilter(cluster, this.#options.watchFilterValue)) return false;
    if (!this.#options.clusterFilter) return true;
    try {
      return this.#options.clusterFilter(cluster) !== false;
    } catch (error) {
      this.#log.error("clusterFilter threw; treating the Cluster as filtered in", {
        cluster: key,
        error: describeError(error),
      });
      return true;
    }
  }

  #stateOf(accessor: ClusterAccessor): ClusterState {
    return {
      connectionId: accessor.connection?.id,
      lastProbeSuccessTime: accessor.health.lastProbeSuccessTime,
      failingKinds: accessor.informerStates().flatMap((s) =>
        s.failingSince === undefined ? [] : [{ kind: s.kind, since: s.failingSince }]
      ),
    };
  }

  /** Connected clusters, for a source made after they connected. */
  *#connectedClusters(): Iterable<[string, KubeObject, ClusterState]> {
    for (const [key, accessor] of this.#accessors) {
      const cluster = accessor.connected ? this.#management?.cluster(key) : undefined;
      if (cluster) yield [key, cluster, this.#stateOf(accessor)];
    }
  }

  #readSecret(accessor: ClusterAccessor, live: boolean): Promise<KubeObject | undefined> {
    const signal = AbortSignal.any([
      this.#lifetime.signal,
      AbortSignal.timeout(this.#options.client.timeoutMs),
    ]);
    return this.#management!.secret(kubeconfigSecret(accessor.key), signal, live)
      .catch(() => undefined);
  }

  #connectContext(key: string, accessor: ClusterAccessor): ConnectContext {
    return {
      options: this.#options,
      readSecret: (signal) => this.#management!.secret(kubeconfigSecret(accessor.key), signal),
      hooks: () => this.#hooks(key, accessor),
      permissions: (rest, placement) => this.permissions(rest, placement),
      pool: this.#pool,
      signal: this.#lifetime.signal,
      admission: this.#admission,
      writableUntil: () => this.#writableUntil(key),
    };
  }

  /**
   * Until when a session of `key` may write: with sharding, until this replica's ownership lapses
   * (0 when it does not own it now: writes refused, never unlimited); without, no limit.
   */
  #writableUntil(key: string): number | undefined {
    return this.#shards ? (this.#shards.ownedUntil(key) ?? 0) : undefined;
  }

  #hooks(key: string, accessor: ClusterAccessor): SessionHooks {
    const cluster = accessor.key;
    return {
      onEvents: (watchId, events, from) => this.watches.deliver(watchId, events, from),
      onWatchSynced: (watchId, from) => this.watches.sentAll(watchId, from),
      onLog: (level, message, properties) =>
        forwardWorkerLog(this.#workerLog, level, message, { ...properties, cluster: key }),
      onInformer: (kind, event) => this.#metrics.informer(cluster, kind, event),
      onStats: (stats, from) => {
        this.#metrics.workerStats(cluster, stats);
        const before = new Map(accessor.informerStates().map((s) => [s.kind, s.phase]));
        accessor.noteInformers(stats.informers, from);
        if (accessor.connection?.session !== from) return;
        for (const state of stats.informers) {
          const was = before.get(state.kind);
          if (state.phase === "failing" && was !== "failing") {
            this.history.record(
              key,
              "kind-failing",
              `${state.kind}: ${state.lastError ?? "failing"}`,
            );
          } else if (state.phase === "synced" && was === "failing") {
            this.history.record(key, "kind-recovered", `${state.kind} is synced again`);
          }
        }
      },
      onFailure: (error, culprit, from) => {
        this.#log.error("A cluster's worker failed", { cluster: key, error: error.message });
        if (culprit && this.#pool.mode === "pooled" && from.placement === "pooled") {
          // It would take its neighbours down again: it gets a worker of its own.
          accessor.placement.pin();
        }
        this.#queue.add(key);
      },
      onPressure: (pressure) => this.#moves.pressure(key, accessor, pressure),
      onRoundTrip: (op, seconds) => this.#metrics.roundTrip(op, seconds),
      onListPermit: (kind, objects, urgent, from) =>
        this.#lists?.ask(from, kind, objects, urgent, () => from.grantList(kind)),
      onListDone: (kind, from) => this.#lists?.done(from, kind),
    };
  }

  #reportHeap(accessor: ClusterAccessor, bytes: number): void {
    const host = accessor.connection?.session.host;
    if (!host) return;
    const worker = host.name.replace(/^clustercache /, "");
    if (!this.#heapReported.has(host)) {
      this.#heapReported.add(host);
      host.onEnd(() => this.#metrics.forgetWorker(worker));
    }
    this.#metrics.workerHeap(worker, bytes);
  }

  // ------------------------------------------------------------------------- sharding

  /** Another replica serves it (or this one could not renew its Lease in time): stay away. */
  #stayAway(key: string, accessor: ClusterAccessor, step: ReconcileStep): void {
    accessor.dropSpare("another replica serves the cluster");
    if (this.#disconnect(accessor)) this.#handedOff.add(key);
    if (this.#handedOff.delete(key)) step.transitions.push("disconnect");
  }

  /**
   * The shard coordinator ended a round, or ownership lapsed. In one pass over the fleet: clusters
   * handed to another replica are let go at once (before the coordinator releases their Lease),
   * those whose ownership changed are reconciled, and every session this replica serves learns
   * until when it may still write (workers refuse writes past it, whatever this thread's timers do).
   */
  #shardsChanged(): void {
    const shards = this.#shards;
    const management = this.#management;
    if (!shards || !management) return;
    const changed: [string, boolean][] = [];
    let owned = 0;
    // A Cluster deleted whose reconcile has not yet forgotten it is still connected: let go too.
    const keys = new Set(management.clusterKeys());
    for (const key of this.#accessors.keys()) keys.add(key);
    for (const key of keys) {
      const until = shards.ownedUntil(key);
      const owns = until !== undefined;
      const accessor = this.#accessors.get(key);
      const connection = accessor?.connection;
      if (connection && until !== undefined) connection.session.fence(until);
      else if (connection) {
        this.#log.info("Another replica serves this cluster now; disconnecting", { cluster: key });
        this.#disconnect(accessor!);
        this.history.record(key, "disconnected", "another replica serves it now");
        this.#handedOff.add(key);
      }
      if (!owns) accessor?.dropSpare("another replica serves the cluster");
      if (!management.cluster(key)) continue; // its reconcile forgets it
      if (owns) owned++;
      if (this.#owned.get(key) !== owns) {
        this.#owned.set(key, owns);
        changed.push([key, owns]);
      }
    }
    for (const [key, owns] of changed) {
      this.#metrics.ownership(parseClusterKey(key), owns, owned);
      this.#queue.add(key);
    }
  }
}
