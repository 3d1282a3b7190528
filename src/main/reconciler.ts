/**
 * The reconciler (main thread): one work queue over the management cluster's Clusters that
 * connects, probes, moves and disconnects workload clusters by Cluster API's rules, and tells
 * cluster sources what happened. The {@linkcode ClusterCache} facade owns one and reads its state.
 *
 * @module
 */

import { ClusterCacheError } from "../shared/errors.ts";
import { ClusterAccessor, type ConnectContext, type HealthCheckResult } from "./accessor.ts";
import { infrastructureReady, kubeconfigSecret, passesWatchFilter } from "./cluster_object.ts";
import type { ClusterEvent, ClusterSource } from "./cluster_source.ts";
import { AimdLimit } from "./aimd_limit.ts";
import type { KubeObject } from "../shared/kube_object.ts";
import { forwardWorkerLog, logger } from "./log.ts";
import { LoopLagMonitor } from "./loop_lag.ts";
import type { ShardCoordinator } from "./shard_coordinator.ts";
import type { ManagementCluster } from "./management.ts";
import type { ClusterCacheMetrics } from "./metrics.ts";
import type { ResolvedOptions } from "./options.ts";
import type { RESTConfig } from "../shared/rest_config.ts";
import { minDurationOrDefault, shouldRequeue } from "./requeue.ts";
import { shouldSendEvent, type Transition } from "./source_events.ts";
import { WorkQueue } from "./work_queue.ts";
import type { Placement, SessionHooks, WorkerHost, WorkerPermissions } from "./worker_handle.ts";
import { WorkerPool } from "./worker_pool.ts";
import { placementOf } from "./placement.ts";
import { catchUp, handOver, type MovingWatch, warmUp } from "./session_move.ts";
import { workerPermissions } from "./worker_permissions.ts";
import type { WatchDispatch } from "./watch_dispatch.ts";
import { parseClusterKey } from "./cluster_key.ts";

import type { PressureReport } from "../shared/protocol.ts";

/** A cluster source and what it was told. */
export interface SourceEntry {
  source: ClusterSource<unknown>;
  mapFn: (cluster: KubeObject) => unknown[];
  /** The connection (id) of each cluster this source was last told about. */
  announced: Map<string, number>;
}

/** A watch added through the facade. */
export interface WatchRegistration extends MovingWatch {
  connectionId: number;
  cluster: string;
  dispatch: WatchDispatch;
  /** Settles when the watch has synced (or failed to). */
  synced: Promise<void>;
  /** Ends it for good: its handler hears nothing more and its handle's `done` resolves. */
  end(): void;
}

/** Reconciles Clusters; holds the accessors, sources and watches the facade serves from. */
export class Reconciler {
  readonly #options: ResolvedOptions;
  readonly #metrics: ClusterCacheMetrics;
  readonly #log = logger("reconciler");
  readonly #workerLog = logger("worker");
  /** Every Cluster known, connected or not, by `namespace/name`. */
  readonly accessors = new Map<string, ClusterAccessor>();
  /** The cluster sources, in creation order. */
  readonly sources: SourceEntry[] = [];
  /** The watches added through the facade, by id. */
  readonly watches = new Map<number, WatchRegistration>();
  readonly #lifetime: AbortController;
  readonly queue: WorkQueue;
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
  /** The management cluster, once read. */
  management: ManagementCluster | undefined;
  /** The replicas' shares, with sharding. */
  shards: ShardCoordinator | undefined;
  /** Clusters let go because another replica serves them; their sources hear `disconnect`. */
  readonly #handedOff = new Set<string>();
  /** Workers whose heap is in the metrics (their series go when they end). */
  readonly #heapReported = new WeakSet<WorkerHost>();
  /** Whether this replica served each cluster when the coordinator last reported. */
  readonly #owned = new Map<string, boolean>();
  readonly #pool: WorkerPool;
  /** Clusters being moved to another worker: aborting `abandon` ends the move soon after. */
  readonly #moving = new Map<ClusterAccessor, { abandon: AbortController; done: Promise<void> }>();

  /** @param lifetime Aborted when the cache closes. */
  constructor(options: ResolvedOptions, metrics: ClusterCacheMetrics, lifetime: AbortController) {
    this.#options = options;
    this.#metrics = metrics;
    this.#lifetime = lifetime;
    this.#pool = new WorkerPool(options.workers, (message) => this.#log.warn(message));
    this.queue = new WorkQueue(
      (key) => this.#reconcile(key),
      (key, error) => {
        this.#log.error("Reconcile failed", {
          cluster: key,
          error: (error as Error)?.message ?? String(error),
        });
        return options.defaultRequeueAfterMs;
      },
    );
  }

  /** This thread's worst event-loop lag since a `performance.now()` time (for probes). */
  readonly mainLagSince = (since: number): number => this.#lag.maxLagSince(since);

  /** Starts measuring this thread's event-loop lag (probes need it to tell starvation apart). */
  start(): void {
    this.#lag.start();
  }

  /** Stops the queue and every connection; the caller has aborted the lifetime. */
  async stop(): Promise<void> {
    this.#lag.stop();
    this.management?.close();
    await this.queue.stop();
    for (const accessor of this.accessors.values()) {
      this.disconnect(accessor);
      accessor.dropSpare();
    }
    // Abandoned moves end their workers before close() returns: none may outlive the cache.
    await Promise.all([...this.#moving.values()].map((move) => move.done));
    this.accessors.clear();
    for (const registration of this.watches.values()) registration.end();
    this.watches.clear();
    for (const { source } of [...this.sources]) source.close();
  }

  /**
   * The shard coordinator ended a round, or ownership lapsed. In one pass over the fleet: clusters
   * handed to another replica are let go at once (before the coordinator releases their Lease),
   * those whose ownership changed are reconciled, and every session this replica serves learns
   * until when it may still write (workers refuse writes past it, whatever this thread's timers do).
   */
  shardsChanged(): void {
    const shards = this.shards;
    const management = this.management;
    if (!shards || !management) return;
    const changed: [string, boolean][] = [];
    let owned = 0;
    for (const key of management.clusterKeys()) {
      const until = shards.ownedUntil(key);
      const owns = until !== undefined;
      if (owns) owned++;
      const connection = this.accessors.get(key)?.connection;
      if (connection && until !== undefined) connection.session.fence(until);
      else if (connection) {
        this.#log.info("Another replica serves this cluster now; disconnecting", { cluster: key });
        this.disconnect(this.accessors.get(key)!);
        this.#handedOff.add(key);
      }
      if (this.#owned.get(key) !== owns) {
        this.#owned.set(key, owns);
        changed.push([key, owns]);
      }
    }
    for (const [key, owns] of changed) {
      this.#metrics.ownership(parseClusterKey(key), owns, owned);
      this.queue.add(key);
    }
  }

  permissions(
    rest: RESTConfig,
    sockets: readonly string[],
    placement: Placement = "dedicated",
  ): WorkerPermissions {
    const pooled = placementOf(this.#pool.mode, placement) === "pooled";
    // A pooled worker's permissions are its pool's: nothing of one session's in them.
    return workerPermissions(rest, this.#options, pooled, pooled ? [] : sockets);
  }

  #hooks(key: string, accessor: ClusterAccessor): SessionHooks {
    const cluster = accessor.key;
    return {
      onEvents: (watchId, events, from) => {
        const registration = this.watches.get(watchId);
        if (registration?.session === from) registration.dispatch.push(events);
      },
      onLog: (level, message, properties) =>
        forwardWorkerLog(this.#workerLog, level, message, { ...properties, cluster: key }),
      onInformer: (kind, event) => this.#metrics.informer(cluster, kind, event),
      onStats: (stats) => this.#metrics.workerStats(cluster, stats),
      onFailure: (error, culprit, from) => {
        this.#log.error("A cluster's worker failed", { cluster: key, error: error.message });
        if (culprit && this.#pool.mode === "pooled" && from.placement === "pooled") {
          // It would take its neighbours down again: it gets a worker of its own.
          accessor.placement.pin();
        }
        this.queue.add(key);
      },
      onPressure: (pressure) => this.#pressure(key, accessor, pressure),
      onRoundTrip: (op, seconds) => this.#metrics.roundTrip(op, seconds),
    };
  }

  #connectContext(key: string, accessor: ClusterAccessor): ConnectContext {
    return {
      options: this.#options,
      readSecret: (signal) => this.management!.secret(kubeconfigSecret(accessor.key), signal),
      hooks: (a) => this.#hooks(key, a),
      permissions: (rest, sockets, placement) => this.permissions(rest, sockets, placement),
      pool: this.#pool,
      signal: this.#lifetime.signal,
      admission: this.#admission,
      writableUntil: () => this.shards?.ownedUntil(key),
    };
  }

  /** @returns Whether it was connected. */
  disconnect(accessor: ClusterAccessor): boolean {
    this.#moving.get(accessor)?.abandon.abort(); // its new worker would outlive the connection
    const id = accessor.connection?.id;
    if (!accessor.disconnect()) return false;
    this.#metrics.connection(accessor.key, false);
    this.#forgetWatches(id);
    return true;
  }

  #cleanup(key: string, why: string): void {
    const accessor = this.accessors.get(key);
    if (accessor) {
      this.#log.info("Forgetting cluster", { cluster: key, reason: why });
      this.disconnect(accessor);
      accessor.dropSpare();
      this.accessors.delete(key);
    }
    for (const { source, announced } of this.sources) {
      source.forget(key);
      announced.delete(key);
    }
    this.#owned.delete(key);
    this.#metrics.forget(parseClusterKey(key));
  }

  #clusterFilter(cluster: KubeObject, key: string): boolean {
    if (!this.#options.clusterFilter) return true;
    try {
      return this.#options.clusterFilter(cluster) !== false;
    } catch (error) {
      this.#log.error("clusterFilter threw; treating the Cluster as filtered in", {
        cluster: key,
        error: String(error),
      });
      return true;
    }
  }

  async #reconcile(key: string): Promise<number | undefined> {
    const management = this.management;
    if (!management || this.#lifetime.signal.aborted) return undefined;
    const cluster = management.cluster(key);
    if (!cluster) {
      this.#cleanup(key, "the Cluster was deleted");
      return undefined;
    }
    if (
      !passesWatchFilter(cluster, this.#options.watchFilterValue) ||
      !this.#clusterFilter(cluster, key)
    ) {
      this.#cleanup(key, "the Cluster is filtered out");
      return undefined;
    }
    let accessor = this.accessors.get(key);
    if (!accessor) {
      accessor = new ClusterAccessor(parseClusterKey(key));
      this.accessors.set(key, accessor);
    }
    if (!infrastructureReady(cluster)) {
      this.#log.debug("Infrastructure is not ready; not connecting", { cluster: key });
      return undefined;
    }
    const options = this.#options;
    const requeues: number[] = [];
    const transitions: Transition[] = [];
    if (this.shards && !this.shards.owns(key)) {
      // Another replica serves it (or this one could not renew its Lease in time): stay away.
      if (this.disconnect(accessor)) this.#handedOff.add(key);
      if (this.#handedOff.delete(key)) transitions.push("disconnect");
      return this.#finish(key, cluster, accessor, transitions, requeues);
    }

    if (accessor.connection && !accessor.connection.session.alive) {
      this.#crashed(accessor, transitions);
    }
    const secretKey = kubeconfigSecret(accessor.key);
    const readSecret = (live: boolean) =>
      management.secret(
        secretKey,
        AbortSignal.any([this.#lifetime.signal, AbortSignal.timeout(options.client.timeoutMs)]),
        live,
      ).catch(() => undefined);
    // A rotated kubeconfig is picked up without waiting for a failed probe (only what is mirrored:
    // no live read per reconcile).
    if (accessor.connection) {
      const change = await accessor.kubeconfigChange(await readSecret(false));
      await this.#applyKubeconfigChange(key, accessor, change, transitions, requeues);
    }
    if (!accessor.connected) {
      const wait = shouldRequeue(
        Date.now(),
        accessor.lastConnectionCreationErrorTime,
        options.connectionCreationRetryIntervalMs,
      );
      // A Secret that changed since the attempt that failed is worth trying at once.
      let fixed = false;
      if (wait.requeue && accessor.failedSecretVersion !== null) {
        const current = (await readSecret(false))?.metadata?.resourceVersion;
        fixed = current !== undefined && current !== accessor.failedSecretVersion;
      }
      if (wait.requeue && !fixed) {
        requeues.push(wait.afterMs);
      } else {
        try {
          await accessor.connect(this.#connectContext(key, accessor));
          if (this.shards && !this.shards.owns(key)) {
            // Handed to another replica while connecting: never serve it, not even for a moment.
            this.disconnect(accessor);
            return this.#finish(key, cluster, accessor, transitions, requeues);
          }
          transitions.push("connect");
          this.#metrics.connection(accessor.key, true);
          this.#metrics.placement(
            accessor.key,
            accessor.connection?.session.placement === "dedicated",
          );
          this.#log.info("Connected to workload cluster", { cluster: key });
        } catch (error) {
          this.#metrics.connection(accessor.key, false);
          const code = error instanceof ClusterCacheError ? error.code : "Other";
          this.#metrics.connectionError(accessor.key, code);
          this.#log.warn("Connecting to workload cluster failed", {
            cluster: key,
            code,
            error: (error as Error).message,
          });
          requeues.push(options.connectionCreationRetryIntervalMs);
        }
      }
    }
    if (accessor.connected && !this.#lifetime.signal.aborted) {
      const wait = shouldRequeue(
        Date.now(),
        accessor.health.lastProbeTime,
        options.healthProbe.intervalMs,
      );
      if (wait.requeue) {
        requeues.push(wait.afterMs);
      } else {
        const slot = await this.#probes.acquire(this.#lifetime.signal).catch(() => undefined);
        if (!slot) return this.#finish(key, cluster, accessor, transitions, requeues); // closed
        let result: HealthCheckResult;
        try {
          result = await accessor.healthCheck(options, (since) => this.#lag.maxLagSince(since));
        } catch (error) {
          slot.release("neutral");
          throw error;
        }
        slot.release(
          result.verdict === "success" ? "success" : result.overload ? "overload" : "neutral",
        );
        if (result.verdict === "crashed") {
          this.#crashed(accessor, transitions);
          requeues.push(1);
          return this.#finish(key, cluster, accessor, transitions, requeues);
        }
        if (result.verdict === "inconclusive") {
          this.#metrics.inconclusiveProbe(accessor.key);
          this.#log.debug("Health probe inconclusive: this process was starved of CPU", {
            cluster: key,
          });
        } else this.#metrics.probe(accessor.key, result.verdict === "success");
        const host = accessor.connection?.session.host;
        if (result.heapUsedBytes !== undefined && host) {
          const worker = host.name.replace(/^clustercache /, "");
          if (!this.#heapReported.has(host)) {
            this.#heapReported.add(host);
            host.onEnd(() => this.#metrics.forgetWorker(worker));
          }
          this.#metrics.workerHeap(worker, result.heapUsedBytes);
        }
        let unauthorized = result.verdict === "unauthorized";
        if (unauthorized) {
          // A 401 may only mean the credentials were rotated under us: read the Secret (live,
          // whatever its resourceVersion says) before counting it.
          const change = await accessor.kubeconfigChange(await readSecret(true), true);
          if (
            change.kind !== "none" &&
            await this.#applyKubeconfigChange(key, accessor, change, transitions, requeues)
          ) {
            accessor.forgiveLastFailure();
            unauthorized = false;
          }
        }
        const tooManyFailures =
          accessor.health.consecutiveFailures >= options.healthProbe.failureThreshold;
        if (unauthorized || tooManyFailures) {
          this.#log.warn("Disconnecting from workload cluster", {
            cluster: key,
            reason: unauthorized ? "unauthorized" : "too many failed health probes",
            consecutiveFailures: accessor.health.consecutiveFailures,
          });
          this.disconnect(accessor);
          transitions.push("disconnect");
        }
        requeues.push(
          unauthorized
            ? 1
            : tooManyFailures
            ? options.connectionCreationRetryIntervalMs
            : options.healthProbe.intervalMs,
        );
      }
    }
    if (accessor.connected && !this.#lifetime.signal.aborted) this.#place(key, accessor);
    return this.#finish(key, cluster, accessor, transitions, requeues);
  }

  /**
   * Acts on a changed kubeconfig Secret of a connected cluster: a rotated token goes to the worker
   * in place (no events, no relist); anything else connects anew and swaps (make before break),
   * keeping the old connection when the new one cannot connect (retried after the interval).
   *
   * @returns Whether the change was applied (the token updated, or the connection replaced).
   */
  async #applyKubeconfigChange(
    key: string,
    accessor: ClusterAccessor,
    change: Awaited<ReturnType<ClusterAccessor["kubeconfigChange"]>>,
    transitions: Transition[],
    requeues: number[],
  ): Promise<boolean> {
    const options = this.#options;
    if (change.kind === "token") {
      try {
        await accessor.updateToken(change.token, options.client.timeoutMs);
        this.#log.info("The kubeconfig Secret's token was rotated; updated in place", {
          cluster: key,
        });
        return true;
      } catch (error) {
        this.#log.warn("Updating the rotated token failed; the next probe decides", {
          cluster: key,
          error: (error as Error).message,
        });
        return false;
      }
    }
    if (change.kind !== "other") return false;
    const wait = shouldRequeue(
      Date.now(),
      accessor.lastConnectionCreationErrorTime,
      options.connectionCreationRetryIntervalMs,
    );
    if (wait.requeue) {
      requeues.push(wait.afterMs);
      accessor.connection!.secretVersion = undefined; // look again next time
      return false;
    }
    this.#log.info("The kubeconfig Secret changed; connecting anew before letting go", {
      cluster: key,
    });
    try {
      const replaced = await accessor.swap(this.#connectContext(key, accessor));
      this.#forgetWatches(replaced);
      transitions.push("disconnect", "connect");
      this.#metrics.connection(accessor.key, true);
      return true;
    } catch (error) {
      this.#log.warn("The changed kubeconfig does not connect; keeping the old connection", {
        cluster: key,
        error: (error as Error).message,
      });
      if (accessor.connection) accessor.connection.secretVersion = undefined;
      requeues.push(options.connectionCreationRetryIntervalMs);
      return false;
    }
  }

  /** A pooled cluster's load is too much for its neighbours (promote), or a promoted one calmed down. */
  #pressure(key: string, accessor: ClusterAccessor, pressure: PressureReport): void {
    if (this.#pool.mode !== "pooled" || this.#lifetime.signal.aborted) return;
    accessor.placement.report(pressure, Date.now());
    this.#place(key, accessor);
  }

  /**
   * Moves a connected cluster whose session runs elsewhere than where it should (see
   * `placement.ts`), unless it is moving already or its last move failed too lately: a wish that
   * came during another move, or a move that failed, is acted on here, at the next reconcile.
   */
  #place(key: string, accessor: ClusterAccessor): void {
    const session = accessor.connection?.session;
    if (this.#pool.mode !== "pooled" || !session?.alive || this.#moving.has(accessor)) return;
    const now = Date.now();
    if (now < accessor.placement.notBefore) return;
    const wanted = accessor.placement.wanted(
      this.#pool.mode,
      this.#options.workers.pressure.calmMs,
      now,
    );
    if (wanted === session.placement) return;
    this.#startMove(key, accessor, wanted, accessor.placement.reason ?? "it calmed down");
  }

  /**
   * Moves a connected cluster to a worker of its own or into the pool, make-before-break (see
   * `session_move.ts`): its cached reads and watches go on without a gap, a lost or a repeated
   * event. A move that cannot be made leaves the cluster where it is.
   */
  #startMove(key: string, accessor: ClusterAccessor, placement: Placement, why: string): void {
    if (this.#moving.has(accessor)) return;
    const abandon = new AbortController();
    const signal = AbortSignal.any([this.#lifetime.signal, abandon.signal]);
    const done = this.#move(key, accessor, placement, why, signal)
      .catch((error) => {
        this.#log.error("Moving the cluster failed", {
          cluster: key,
          error: (error as Error).message,
        });
      })
      .finally(() => this.#moving.delete(accessor));
    this.#moving.set(accessor, { abandon, done });
  }

  async #move(
    key: string,
    accessor: ClusterAccessor,
    placement: Placement,
    why: string,
    signal: AbortSignal,
  ): Promise<void> {
    const started = performance.now();
    const options = this.#options;
    const timeouts = {
      syncMs: options.initialSyncTimeoutMs + options.client.timeoutMs,
      callMs: options.client.timeoutMs,
    };
    const old = accessor.connection;
    if (!old) return;
    this.#log.info(
      placement === "dedicated"
        ? "Moving a cluster to a worker of its own"
        : "Moving a calm cluster back into the pool",
      { cluster: key, reason: why },
    );
    let next;
    try {
      next = await accessor.prepare(
        { ...this.#connectContext(key, accessor), signal },
        placement,
      );
      await warmUp(old.session, next.session, timeouts, signal);
    } catch (error) {
      next?.session.terminate("the move was abandoned");
      accessor.placement.failed(Date.now());
      this.#log.warn("Moving the cluster failed; it stays where it is for now", {
        cluster: key,
        error: (error as Error).message,
        retryInSeconds: Math.round((accessor.placement.notBefore - Date.now()) / 1000),
      });
      return;
    }
    if (accessor.connection !== old || !old.session.alive || signal.aborted) {
      next.session.terminate("the move was abandoned");
      return;
    }
    accessor.adopt(next);
    accessor.placement.moved(placement);
    const writableUntil = this.shards?.ownedUntil(key);
    if (writableUntil !== undefined) next.session.fence(writableUntil);
    if (next.target.token !== old.target.token) {
      // The token was rotated into the old session while this one started: it is the current one.
      void next.session.call({ op: "token", token: old.target.token ?? "" }, {
        timeoutMs: timeouts.callMs,
        operation: "error updating the bearer token",
      }).catch(() => {});
    }
    await catchUp(old.session, next.session, timeouts);
    const moving = [...this.watches.values()].filter((w) => w.session === old.session);
    let exact = 0;
    for (const watch of moving) {
      if (this.watches.get(watch.watchId) !== watch) continue; // stopped meanwhile
      if (!watch.isSynced) {
        // Its handler has heard nothing yet: the new session starts it afresh.
        void old.session.call({ op: "unwatch", watchId: watch.watchId }, {
          timeoutMs: timeouts.callMs,
          operation: "error moving a watch",
        }).catch(() => {});
        watch.start(next.session);
        exact++;
      } else if (await handOver(watch, next.session, timeouts)) exact++;
      if (this.watches.get(watch.watchId) !== watch) {
        // Stopped while it was handed over: its stop reached the old session only.
        void next.session.call({ op: "unwatch", watchId: watch.watchId }, {
          timeoutMs: timeouts.callMs,
          operation: "error moving a watch",
        }).catch(() => {});
      }
    }
    this.#metrics.moved(placement === "dedicated" ? "promote" : "demote");
    this.#metrics.placement(accessor.key, placement === "dedicated");
    this.#log.info("Moved the cluster", {
      cluster: key,
      placement,
      watches: moving.length,
      restartedWatches: moving.length - exact,
      seconds: Number(((performance.now() - started) / 1000).toFixed(2)),
    });
    // Writes in flight finish where they started; reads still waiting are asked again of the
    // new session (see client.ts).
    await old.session.drained(options.client.timeoutMs, ["get", "list", "watch"], signal);
    old.session.terminate(`cluster ${key} moved to another worker`, true);
  }

  #forgetWatches(connectionId: number | undefined): void {
    if (connectionId === undefined) return;
    for (const [watchId, registration] of this.watches) {
      if (registration.connectionId !== connectionId) continue;
      this.watches.delete(watchId);
      registration.end();
    }
  }

  /**
   * A crashed worker is one failed probe that no later probe can fix: disconnect (and reconnect). A
   * pooled neighbour of the cluster that crashed it is not to blame: no failure is counted.
   */
  #crashed(accessor: ClusterAccessor, transitions: Transition[]): void {
    const worker = accessor.connection?.session;
    if (!worker || worker.culprit || worker.placement === "dedicated") {
      accessor.recordFailedProbe();
      this.#metrics.probe(accessor.key, false);
    }
    this.disconnect(accessor);
    transitions.push("disconnect");
  }

  #finish(
    key: string,
    cluster: KubeObject,
    accessor: ClusterAccessor,
    transitions: Transition[],
    requeues: number[],
  ): number | undefined {
    if (this.#lifetime.signal.aborted) {
      this.disconnect(accessor);
      return undefined;
    }
    this.#sendEvents(key, cluster, accessor, transitions);
    return minDurationOrDefault(requeues, this.#options.defaultRequeueAfterMs);
  }

  #sendEvents(
    key: string,
    cluster: KubeObject,
    accessor: ClusterAccessor,
    transitions: Transition[],
  ): void {
    const now = Date.now();
    const connectionId = accessor.connection?.id;
    for (const entry of [...this.sources]) { // a subscriber may close a source
      // A source created after this connection was made has heard of it already.
      const heard = connectionId !== undefined && entry.announced.get(key) === connectionId;
      const reasons = shouldSendEvent(
        {
          now,
          lastEventSent: entry.source.lastEventSent(key),
          lastProbeSuccess: accessor.health.lastProbeSuccessTime,
          transitions: heard ? transitions.filter((t) => t !== "connect") : transitions,
        },
        entry.source.probeFailureDurations,
      );
      if (reasons.length > 0) this.deliver(entry, key, cluster, reasons, now, accessor);
    }
  }

  deliver(
    entry: SourceEntry,
    key: string,
    cluster: KubeObject,
    reasons: string[],
    now: number,
    accessor: ClusterAccessor,
  ): void {
    const { source, mapFn } = entry;
    const connectionId = accessor.connection?.id;
    if (connectionId === undefined) entry.announced.delete(key);
    else entry.announced.set(key, connectionId);
    let requests: unknown[];
    try {
      requests = mapFn(cluster);
    } catch (error) {
      this.#log.error("A cluster source's mapFn threw", {
        cluster: key,
        controller: source.controllerName,
        error: String(error),
      });
      return;
    }
    const event: ClusterEvent = {
      cluster: parseClusterKey(key),
      reasons,
      connected: accessor.connected,
      time: now,
    };
    this.#log.debug("Sending cluster event", {
      cluster: key,
      controller: source.controllerName,
      reasons,
    });
    source.deliver(key, Array.isArray(requests) ? requests : [], event);
  }
}
