/**
 * Follows the management cluster through its own worker: Cluster API `Cluster` objects (v1beta2 when
 * served, else v1beta1) and kubeconfig Secrets labelled `cluster.x-k8s.io/cluster-name`, mirrored on the
 * main thread (they are small) so reconciles read them without a round trip. Every change of a Cluster
 * or its Secret asks for that Cluster to be reconciled.
 *
 * The worker is probed like a workload cluster's; a 401 or a crash rebuilds it from the KubeConfig
 * (re-reading a rotated service-account token).
 *
 * @module
 */

import type { WatchEvent } from "../../shared/client_types.ts";
import {
  ClusterCacheError,
  describeError,
  isNotFound,
  isUnauthorized,
} from "../../shared/errors.ts";
import {
  formatObjectKey,
  type KindRef,
  type KubeList,
  type KubeObject,
  type ObjectKey,
} from "../../shared/kube_object.ts";
import { restTargetFromKubeConfig, tokenFileOf } from "./kubeconfig.ts";
import { clusterOfKubeconfigSecret } from "./cluster_object.ts";
import { forwardWorkerLog, logger } from "../log.ts";
import type { ResolvedOptions } from "../options.ts";
import type { InformerState, WorkerRequest } from "../../shared/protocol.ts";
import type { Lease, LeaseApi } from "../sharding/shard_coordinator.ts";
import type { RESTConfig } from "../../shared/rest_config.ts";
import { type HealthCheckingState, HealthProbe } from "../sessions/health_probe.ts";
import { initTimeoutMs, workerConfig } from "../sessions/worker_config.ts";
import { dedicatedSession, type Session, type WorkerPermissions } from "../sessions/session.ts";
import { Backoff, sleep } from "../../shared/backoff.ts";

/** The type of the Secrets Cluster API keeps kubeconfigs (and other cluster secrets) in. */
export const KUBECONFIG_SECRET_TYPE = "cluster.x-k8s.io/secret";

const CLUSTER_KINDS: KindRef[] = [
  { apiVersion: "cluster.x-k8s.io/v1beta2", kind: "Cluster" },
  { apiVersion: "cluster.x-k8s.io/v1beta1", kind: "Cluster" },
];
const SECRET_KIND: KindRef = { apiVersion: "v1", kind: "Secret" };
const LEASE_KIND: KindRef = { apiVersion: "coordination.k8s.io/v1", kind: "Lease" };
const MANAGEMENT_KEY: ObjectKey = { namespace: "", name: "management" };
/** How long a refused probe waits for the token file to change before it reconnects. */
const TOKEN_ROTATION_GRACE_MS = 2_000;
/** How often a token file is re-read (client-go's cached file token source: once a minute). */
const TOKEN_FILE_PERIOD_MS = 60_000;
const CLUSTERS_WATCH = 1;
/** The mirror takes events as they come (small objects, applied at once): no window. */
const UNBOUNDED = Number.MAX_SAFE_INTEGER;
const SECRETS_WATCH = 2;

function keyOf(object: KubeObject): string {
  return formatObjectKey({
    namespace: object.metadata?.namespace ?? "",
    name: object.metadata?.name ?? "",
  });
}

/** The main thread's view of the management cluster. */
export class ManagementCluster {
  readonly #options: ResolvedOptions;
  readonly #onCluster: (key: string) => void;
  readonly #permissions: (rest: RESTConfig) => WorkerPermissions;
  readonly #log = logger("management");
  readonly #clusters = new Map<string, KubeObject>();
  readonly #secrets = new Map<string, KubeObject>();
  readonly #lifetime = new AbortController();
  #session: Session | undefined;
  #clusterKind: KindRef | undefined;
  #restarting: Promise<void> | undefined;
  #probeTimer: ReturnType<typeof setTimeout> | undefined;
  /** The service-account token file, when the management KubeConfig reads one. */
  readonly #tokenFile: string | undefined;
  /** The token the worker sends now (from the token file). */
  #token: string | undefined;
  #tokenTimer: ReturnType<typeof setInterval> | undefined;
  #refreshing: Promise<boolean> | undefined;
  readonly #probe = new HealthProbe();
  /**
   * Spaces restarts that follow one another with no healthy probe between them (a worker that
   * crashes right after it synced, a server that fails again at once): each relists everything.
   */
  readonly #restarts = new Backoff(1_000, 30_000);
  #healthySinceRestart = true;
  /**
   * The mirror's informers as its worker last reported them, by kind: a mirror refused (forbidden,
   * or the kind no longer served) for as long as the probes may fail is stale, however well `GET /`
   * answers.
   */
  readonly #informers = new Map<string, InformerState>();
  readonly #mainLagSince: (since: number) => number;

  private constructor(
    options: ResolvedOptions,
    onCluster: (key: string) => void,
    permissions: (rest: RESTConfig) => WorkerPermissions,
    mainLagSince: (since: number) => number,
  ) {
    this.#options = options;
    this.#onCluster = onCluster;
    this.#permissions = permissions;
    this.#mainLagSince = mainLagSince;
    this.#tokenFile = tokenFileOf(options.management);
  }

  /**
   * Connects to the management cluster and waits until Clusters (and Secrets) are mirrored.
   *
   * @throws {ClusterCacheError} When the management cluster cannot be read within the sync timeout.
   */
  static async start(
    options: ResolvedOptions,
    onCluster: (key: string) => void,
    permissions: (rest: RESTConfig) => WorkerPermissions,
    mainLagSince: (since: number) => number = () => 0,
  ): Promise<ManagementCluster> {
    const management = new ManagementCluster(options, onCluster, permissions, mainLagSince);
    try {
      await management.#connect();
    } catch (error) {
      management.close();
      throw error;
    }
    management.#scheduleProbe();
    if (management.#tokenFile) {
      management.#tokenTimer = setInterval(
        () => void management.refreshToken(),
        TOKEN_FILE_PERIOD_MS,
      );
    }
    return management;
  }

  /** Keys (`ns/name`) of every known Cluster. */
  clusterKeys(): string[] {
    return [...this.#clusters.keys()];
  }

  /** A Cluster by key, or `undefined` when it does not exist. */
  cluster(key: string): KubeObject | undefined {
    return this.#clusters.get(key);
  }

  /**
   * A Secret: from the mirror (Secrets of Cluster API's type), else read live when `live` (a
   * Secret someone made by hand, without the type): at connect, not on every reconcile.
   *
   * @returns The Secret, or `undefined` when it does not exist (or, with `live` off, is not
   *   mirrored).
   */
  async secret(key: ObjectKey, signal: AbortSignal, live = true): Promise<KubeObject | undefined> {
    if (this.#options.secretReader) return await this.#options.secretReader.get(key, signal);
    const mirrored = this.#secrets.get(formatObjectKey(key));
    if (mirrored || !live) return mirrored;
    const session = this.#session;
    if (!session) {
      throw new ClusterCacheError("Unreachable", "the management cluster is not connected");
    }
    try {
      return await session.call({ op: "get", kind: SECRET_KIND, key, cached: false }, {
        timeoutMs: this.#options.client.timeoutMs + 1_000,
        signal,
        operation: "error reading kubeconfig secret",
      });
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  /**
   * Leases in the management cluster, read and written live, for the shard coordinator. A call
   * refused with 401 re-reads the token file once and is sent again (see {@linkcode refreshToken}).
   */
  leases(): LeaseApi {
    const call = async <T>(request: WorkerRequest, what: string, signal: AbortSignal) => {
      for (let attempt = 0;; attempt++) {
        const session = this.#session;
        if (!session) {
          throw new ClusterCacheError("Unreachable", "the management cluster is not connected");
        }
        const token = this.#token;
        try {
          return await session.call(request, {
            timeoutMs: this.#options.client.timeoutMs + 1_000,
            signal: AbortSignal.any([this.#lifetime.signal, signal]),
            operation: `error ${what} a Lease`,
          }) as T;
        } catch (error) {
          if (attempt > 0 || !isUnauthorized(error) || !await this.#tokenChangedSince(token)) {
            throw error;
          }
        }
      }
    };
    const key = (lease: Lease) => ({
      namespace: lease.metadata?.namespace ?? "",
      name: lease.metadata?.name ?? "",
    });
    return {
      list: async (namespace, labelSelector, signal) =>
        (await call<KubeList>(
          {
            op: "list",
            kind: LEASE_KIND,
            options: { namespace, labelSelector },
            cached: false,
          },
          "listing",
          signal,
        )).items as Lease[],
      get: async (namespace, name, signal) => {
        try {
          return await call<Lease>(
            {
              op: "get",
              kind: LEASE_KIND,
              key: { namespace, name },
              cached: false,
            },
            "reading",
            signal,
          );
        } catch (error) {
          if (isNotFound(error)) return undefined;
          throw error;
        }
      },
      create: (lease, signal) =>
        call({ op: "create", object: lease, options: {} }, "creating", signal),
      update: (lease, signal) =>
        call({ op: "update", object: lease, options: {} }, "renewing", signal),
      delete: async (lease, signal) => {
        const resourceVersion = lease.metadata?.resourceVersion;
        await call(
          {
            op: "delete",
            kind: LEASE_KIND,
            key: key(lease),
            options: resourceVersion ? { preconditions: { resourceVersion } } : {},
          },
          "deleting",
          signal,
        );
      },
    };
  }

  /**
   * Re-reads the service-account token file and gives the worker the new token in place, as
   * client-go's cached file token source does (every minute, and at once after a 401): a rotated
   * token costs no reconnect and no resync of the fleet's mirror.
   *
   * @returns Whether the token changed (and was handed over).
   */
  refreshToken(): Promise<boolean> {
    const path = this.#tokenFile;
    if (!path) return Promise.resolve(false);
    this.#refreshing ??= (async () => {
      try {
        const token = (await Deno.readTextFile(path)).trim();
        const session = this.#session;
        if (!token || token === this.#token || !session) return false;
        await session.call({ op: "token", token }, {
          timeoutMs: this.#options.client.timeoutMs,
          signal: this.#lifetime.signal,
          operation: "error updating the management token",
        });
        if (this.#session === session) this.#token = token;
        this.#log.info("Re-read the management cluster's rotated token; updated in place");
        return true;
      } catch (error) {
        this.#log.warn("Re-reading the management cluster's token file failed", {
          error: (error as Error).message,
        });
        return false;
      }
    })().finally(() => this.#refreshing = undefined);
    return this.#refreshing;
  }

  /**
   * Whether the token changed since a call refused with 401 was sent with `sent`: handed over
   * already (the call carried the old one), or found in the token file now or, looked at every
   * 100 ms, within `graceMs` (the server may refuse the old token a moment before the file holds
   * the new one; a reconnect then would resync the fleet's whole mirror).
   */
  async #tokenChangedSince(sent: string | undefined, graceMs = 0): Promise<boolean> {
    const deadline = Date.now() + graceMs;
    for (;;) {
      if (this.#token !== sent || await this.refreshToken()) return true;
      if (!this.#tokenFile || Date.now() >= deadline) return false;
      if (!await sleep(100, this.#lifetime.signal)) return false;
    }
  }

  #restConfig(): RESTConfig {
    const target = restTargetFromKubeConfig(this.#options.management, {
      allowTokenFile: true,
    });
    return {
      ...target,
      userAgent: this.#options.client.userAgent,
      timeoutMs: this.#options.client.timeoutMs,
      qps: Math.max(this.#options.client.qps, 50),
      burst: Math.max(this.#options.client.burst, 100),
    };
  }

  async #connect(): Promise<void> {
    const rest = this.#restConfig();
    this.#token = rest.token;
    const options = this.#options;
    const config = workerConfig(MANAGEMENT_KEY, rest, options, {
      // By type, not by label: Cluster API types every kubeconfig Secret but did not always label
      // them, and an unmirrored Secret would cost a live read per reconcile.
      cache: {
        byObject: [{ kind: SECRET_KIND, fieldSelector: `type=${KUBECONFIG_SECRET_TYPE}` }],
        indexes: [],
        disableFor: [],
        defaultTransform: "stripManagedFields",
      },
      dedicated: true,
      podCheck: false,
      management: true,
    });
    const fresh = {
      clusters: new Map<string, KubeObject>(),
      secrets: new Map<string, KubeObject>(),
    };
    let syncing = true;
    const session = dedicatedSession(MANAGEMENT_KEY, this.#permissions(rest), {
      onEvents: (watchId, events) => {
        if (syncing) this.#collect(watchId, events, fresh);
        else this.#apply(watchId, events);
      },
      onLog: (level, message, properties) =>
        forwardWorkerLog(this.#log, level, message, { ...properties, cluster: "management" }),
      onInformer: () => {},
      onStats: (stats, from) => {
        if (from !== this.#session) return;
        for (const informer of stats.informers) this.#informers.set(informer.kind, informer);
      },
      onFailure: (error) => {
        this.#log.error("The management cluster's worker failed; restarting it", {
          error: error.message,
        });
        void this.#restart();
      },
    });
    this.#session = session;
    this.#informers.clear();
    const call = {
      timeoutMs: options.initialSyncTimeoutMs + 5_000,
      signal: this.#lifetime.signal,
      operation: "error reading the management cluster",
    };
    try {
      await session.call({ op: "init", config }, {
        ...call,
        timeoutMs: initTimeoutMs(options),
      });
      this.#clusterKind ??= await this.#detectClusterKind(session, call);
      await session.call({
        op: "watch",
        watchId: CLUSTERS_WATCH,
        kind: this.#clusterKind,
        filters: {},
        window: UNBOUNDED,
      }, call);
      if (!options.secretReader) {
        await session.call(
          {
            op: "watch",
            watchId: SECRETS_WATCH,
            kind: SECRET_KIND,
            filters: {},
            window: UNBOUNDED,
          },
          call,
        );
      }
    } catch (error) {
      session.terminate();
      if (this.#session === session) this.#session = undefined;
      throw error instanceof ClusterCacheError ? error : new ClusterCacheError(
        "Unreachable",
        `cannot read the management cluster: ${(error as Error).message}`,
      );
    }
    // Swap in the new view; anything that vanished while we were away is reconciled (and cleaned up).
    syncing = false;
    const touched = new Set([...this.#clusters.keys(), ...fresh.clusters.keys()]);
    for (const [key, secret] of this.#secrets) {
      const cluster = this.#clusterOfSecret(secret);
      if (!fresh.secrets.has(key) && cluster) touched.add(cluster);
    }
    this.#clusters.clear();
    this.#secrets.clear();
    for (const [k, v] of fresh.clusters) this.#clusters.set(k, v);
    for (const [k, v] of fresh.secrets) this.#secrets.set(k, v);
    for (const key of touched) this.#onCluster(key);
  }

  /** Finds which Cluster version is served, preferring v1beta2. */
  async #detectClusterKind(
    session: Session,
    call: { timeoutMs: number; signal: AbortSignal; operation: string },
  ): Promise<KindRef> {
    for (const kind of CLUSTER_KINDS) {
      try {
        await session.call({ op: "list", kind, options: { limit: 1 }, cached: false }, call);
        return kind;
      } catch (error) {
        if (error instanceof ClusterCacheError && error.code === "NoKindMatch") continue;
        throw error;
      }
    }
    throw new ClusterCacheError(
      "NoKindMatch",
      "the management cluster serves no cluster.x-k8s.io Cluster kind (v1beta2 or v1beta1)",
    );
  }

  /** The Cluster (`ns/name`) of a kubeconfig Secret, or `undefined` for another Secret. */
  #clusterOfSecret(secret: KubeObject): string | undefined {
    const cluster = clusterOfKubeconfigSecret(secret);
    return cluster && formatObjectKey(cluster);
  }

  #collect(
    watchId: number,
    events: WatchEvent[],
    into: { clusters: Map<string, KubeObject>; secrets: Map<string, KubeObject> },
  ): void {
    for (const event of events) {
      // Other Cluster API Secrets carry the cluster-name label too; only kubeconfigs are mirrored.
      if (watchId === SECRETS_WATCH && !this.#clusterOfSecret(event.object)) continue;
      const target = watchId === CLUSTERS_WATCH ? into.clusters : into.secrets;
      if (event.type === "delete") target.delete(keyOf(event.object));
      else target.set(keyOf(event.object), event.object);
    }
  }

  #apply(watchId: number, events: WatchEvent[]): void {
    this.#collect(watchId, events, { clusters: this.#clusters, secrets: this.#secrets });
    for (const event of events) {
      const cluster = watchId === CLUSTERS_WATCH
        ? keyOf(event.object)
        : this.#clusterOfSecret(event.object);
      if (cluster) this.#onCluster(cluster);
    }
  }

  /**
   * Probes the management cluster on the workload clusters' schedule and by their rules (see
   * {@linkcode HealthProbe}): a 401, a crashed session, or the failure threshold reached rebuilds the
   * connection; a probe this process was too starved to judge counts for nothing.
   */
  #scheduleProbe(): void {
    if (this.#lifetime.signal.aborted) return;
    this.#probeTimer = setTimeout(async () => {
      const session = this.#session;
      if (session?.alive && !this.#restarting) {
        const token = this.#token;
        const result = await this.#probe.check(
          session,
          this.#options.healthProbe,
          this.#mainLagSince,
        );
        const failures = this.#probe.state.consecutiveFailures;
        const stale = this.#staleKind();
        if (result.verdict === "success" && !stale) {
          this.#healthySinceRestart = true;
          this.#restarts.reset();
        }
        if (result.unauthorized) {
          // A rotated token file is handed over in place; only credentials that stay refused
          // rebuild the connection.
          if (await this.#tokenChangedSince(token, TOKEN_ROTATION_GRACE_MS)) {
            this.#probe.forgiveLastFailure();
          } else {
            this.#log.warn("The management cluster refused our credentials; reconnecting");
            await this.#restart();
          }
        } else if (result.tooManyFailures) {
          this.#log.warn("The management cluster failed its health probes; reconnecting", {
            consecutiveFailures: failures,
          });
          await this.#restart();
        } else if (stale) {
          this.#log.warn(
            "The management cluster keeps refusing the watch of a mirrored kind; reconnecting",
            stale,
          );
          // Its Cluster kind may no longer be served (a Cluster API upgrade): look again.
          this.#clusterKind = undefined;
          await this.#restart();
        } else if (result.verdict === "failure") {
          this.#log.warn("The management cluster's health probe failed", {
            consecutiveFailures: failures,
          });
        }
      }
      this.#scheduleProbe();
    }, this.#options.healthProbe.intervalMs);
  }

  /** A mirrored kind refused for as long as the probes may fail, if any. */
  #staleKind(): { kind: string; failingSeconds: number; error?: string } | undefined {
    const { intervalMs, failureThreshold } = this.#options.healthProbe;
    for (const { kind, phase, refused, failingSince, lastError } of this.#informers.values()) {
      // Only a refusal: a timeout or an overloaded server is the informer's to retry, and a
      // rebuild would only add to the load.
      if (phase !== "failing" || !refused || failingSince === undefined) continue;
      const failingMs = Date.now() - failingSince;
      if (failingMs < intervalMs * failureThreshold) continue;
      return {
        kind,
        failingSeconds: Math.round(failingMs / 1000),
        ...(lastError === undefined ? {} : { error: lastError }),
      };
    }
    return undefined;
  }

  /** The management connection's probe state (for tests and logs). */
  get health(): Readonly<HealthCheckingState> {
    return this.#probe.state;
  }

  #restart(): Promise<void> {
    this.#restarting ??= (async () => {
      this.#session?.terminate();
      this.#session = undefined;
      if (!this.#healthySinceRestart) await sleep(this.#restarts.next(), this.#lifetime.signal);
      this.#healthySinceRestart = false;
      while (!this.#lifetime.signal.aborted) {
        try {
          await this.#connect();
          // A new connection starts healthy: the old one's failures would end it at the next one.
          this.#probe.connected();
          this.#log.info("Reconnected to the management cluster");
          return;
        } catch (error) {
          this.#log.warn("Reconnecting to the management cluster failed; retrying", {
            error: describeError(error),
          });
          await sleep(this.#restarts.next(), this.#lifetime.signal);
        }
      }
    })().finally(() => this.#restarting = undefined);
    return this.#restarting;
  }

  /** Stops the worker and timers. */
  close(): void {
    this.#lifetime.abort();
    clearTimeout(this.#probeTimer);
    clearInterval(this.#tokenTimer);
    this.#session?.terminate("the ClusterCache was closed");
    this.#session = undefined;
  }
}
