/**
 * One workload cluster as the main thread knows it: its connection (a worker, the REST config, the
 * kubeconfig's hash), its health-checking state, and its private key. Rules
 * are Cluster API's `clusterAccessor`: connect is a no-op when connected, a failed connect counts as a
 * failed probe, disconnect keeps the health state, 401 is reported separately.
 *
 * @module
 */

import { generateClientCertificateKey } from "./client_certificate_key.ts";
import { ClusterCacheError, ClusterNotConnectedError } from "../../shared/errors.ts";
import {
  type HealthCheckingState,
  type HealthCheckResult,
  HealthProbe,
} from "../sessions/health_probe.ts";
import { formatObjectKey, type KubeObject, type ObjectKey } from "../../shared/kube_object.ts";
import {
  checkUntrustedKubeconfig,
  kubeconfigHash,
  parseKubeconfig,
  type RESTTarget,
  restTargetFromKubeConfig,
} from "../management/kubeconfig.ts";
import type { AccessorOptions, ProbeOptions } from "../options.ts";
import type { InformerState } from "../../shared/protocol.ts";
import type { RESTConfig } from "../../shared/rest_config.ts";
import type { AimdLimit, AimdOutcome } from "./aimd_limit.ts";
import { initTimeoutMs, workerConfig } from "../sessions/worker_config.ts";
import {
  isUnanswered,
  type Placement,
  type Session,
  type SessionHooks,
  type WorkerPermissions,
} from "../sessions/session.ts";
import type { WorkerPool } from "../sessions/worker_pool.ts";
import { placementOf, PlacementState } from "../sessions/placement.ts";
import { kubeconfigSecret } from "../management/cluster_object.ts";
import { resolveAllowed } from "../sessions/server_address.ts";

export type { HealthCheckResult } from "../sessions/health_probe.ts";

/** A live connection. */
export interface Connection {
  /** Stays the same when the cluster moves to another worker (it is the same connection to users). */
  id: number;
  readonly session: Session;
  rest: RESTConfig;
  /** What the kubeconfig said (before the in-cluster switch), to tell a token rotation apart. */
  target: RESTTarget;
  kubeconfigHash: string;
  /** The hash a token update in flight will make current. */
  pendingHash?: string | undefined;
  /** The Secret's resourceVersion when its hash was last checked. */
  secretVersion: string | undefined;
  /** Its informers as its session last reported them, by kind. */
  readonly informers: Map<string, InformerState>;
}

/**
 * A connection is opened with the write fence of when it started (its worker's init can take
 * seconds, while ownership lapses and comes back): it learns the fence of now once installed.
 */
function fenceNow(connection: Connection, context: ConnectContext): void {
  const until = context.writableUntil();
  if (until !== undefined) connection.session.fence(until);
}

/** What connecting needs from the ClusterCache. */
export interface ConnectContext {
  options: AccessorOptions;
  /** Reads the `<name>-kubeconfig` Secret. */
  readSecret(signal: AbortSignal): Promise<KubeObject | undefined>;
  /** Hooks of the new worker. */
  hooks(accessor: ClusterAccessor): SessionHooks;
  /** Permissions of the new worker (pooled workers serve many API servers). */
  permissions(rest: RESTConfig, placement: Placement): WorkerPermissions;
  /** Where sessions run. */
  pool: WorkerPool;
  /** Lifetime signal of the ClusterCache. */
  signal: AbortSignal;
  /** Admits connection attempts at the rate the machine and the API servers sustain. */
  admission: AimdLimit;
  /** Until when (epoch ms) the session may write, with sharding; `undefined`: no bound. */
  writableUntil(): number | undefined;
}

let connectionIds = 0;

function sorted(o: Record<string, unknown>): [string, unknown][] {
  return Object.entries(o).filter(([, v]) => v !== undefined).sort(([a], [b]) => a < b ? -1 : 1);
}

/** A worker that has not loaded its modules by then is not worth holding an admission for. */
const WORKER_START_TIMEOUT_MS = 10_000;

function isTimeout(error: unknown): boolean {
  return error instanceof ClusterCacheError && error.code === "Timeout";
}

/** Reads and decodes the kubeconfig of a Secret; errors say what is wrong, never what is in it. */
export function kubeconfigFromSecret(secret: KubeObject | undefined, name: string): string {
  if (!secret) {
    throw new ClusterCacheError(
      "InvalidKubeconfig",
      `error creating REST config: error getting kubeconfig secret: Secret "${name}" not found`,
    );
  }
  const value = (secret.data as Record<string, unknown> | undefined)?.value;
  if (typeof value !== "string" || value === "") {
    throw new ClusterCacheError(
      "InvalidKubeconfig",
      `error creating REST config: missing key "value" in secret data`,
    );
  }
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(
      // Decoded natively: a callback per character was the main thread's largest cost at connect.
      Uint8Array.fromBase64(value),
    );
  } catch {
    throw new ClusterCacheError(
      "InvalidKubeconfig",
      `error creating REST config: key "value" is not valid base64 UTF-8`,
    );
  }
}

/** One cluster's connection and health. */
export class ClusterAccessor {
  /** The Cluster's key. */
  readonly key: ObjectKey;
  /** The health-checking state. */
  readonly #probe = new HealthProbe();
  readonly health: HealthCheckingState = this.#probe.state;
  /** When the last connection attempt failed (0: never, or succeeded since). */
  lastConnectionCreationErrorTime = 0;
  /** Why the last connection attempt failed (credential-free). */
  lastConnectionError: string | undefined;
  #connection: Connection | undefined;
  /** The worker of the last failed attempt, kept for the next one (with its permissions' key). */
  #spare:
    | { session: Session; permissions: string; placement: Placement }
    | undefined;
  #lastAttemptTimedOut = false;
  #failedSecretVersion: string | undefined | null = null;
  #everConnected = false;
  #privateKey: Promise<CryptoKeyPair> | undefined;

  /** When a reader last asked for stale reads of this cluster (0: never): then a disconnect keeps its cache. */
  staleReadsAskedAt = 0;
  #retained:
    | {
      session: Session;
      informers: Map<string, InformerState>;
      since: number;
      timer: ReturnType<typeof setTimeout>;
    }
    | undefined;

  /** Where the cluster's session should run, and its moves (see {@linkcode PlacementState}). */
  readonly placement: PlacementState = new PlacementState();

  /** The Cluster's UID when it was first seen (a new UID under the same name is a new cluster). */
  readonly uid: string | undefined;

  /**
   * @param key The Cluster's key.
   * @param uid The Cluster's UID.
   */
  constructor(key: ObjectKey, uid?: string) {
    this.uid = uid;
    this.key = key;
  }

  /** The current connection. */
  get connection(): Connection | undefined {
    return this.#connection;
  }

  /** Whether connected. */
  get connected(): boolean {
    return this.#connection !== undefined;
  }

  /** Whether the cluster has ever connected (private keys exist only then). */
  get everConnected(): boolean {
    return this.#everConnected;
  }

  /** The connection, or a {@linkcode ClusterNotConnectedError} with `operation` as prefix. */
  require(operation: string): Connection {
    if (!this.#connection) throw new ClusterNotConnectedError(operation, this.key);
    return this.#connection;
  }

  /**
   * Connects: builds the REST config from the kubeconfig Secret, starts a worker that probes the
   * cluster (`GET /`), discovers it and checks for this process's Pod. No-op when connected.
   *
   * @throws {ClusterCacheError} With Cluster API's message for what failed.
   */
  async connect(context: ConnectContext): Promise<void> {
    if (this.#connection) return;
    const now = Date.now();
    try {
      this.#connection = await this.#open(context, this.#wanted(context));
      fenceNow(this.#connection, context);
      this.dropRetained(); // fresh data from now on
      this.health.lastProbeTime = Date.now();
      this.health.lastProbeSuccessTime = this.health.lastProbeTime;
      this.health.consecutiveFailures = 0;
      this.lastConnectionCreationErrorTime = 0;
      this.lastConnectionError = undefined;
      this.#everConnected = true;
    } catch (error) {
      this.lastConnectionCreationErrorTime = now;
      this.lastConnectionError = (error as Error).message;
      this.health.lastProbeTime = now;
      this.health.consecutiveFailures++;
      throw error;
    }
  }

  /**
   * Connects anew while the current connection (if any) keeps serving; then the new one replaces
   * it and the old worker stops (make before break). When the new one cannot connect, the old one
   * stays, and the error is thrown (and recorded, like a failed connect, without counting a failed
   * probe: the cluster still answers on the old connection). A connection let go meanwhile (the
   * cluster was handed to another replica) is not replaced: the new one is ended.
   *
   * @returns The connection replaced, or `undefined` when it was let go or moved meanwhile.
   */
  async swap(context: ConnectContext): Promise<{ replaced: number | undefined } | undefined> {
    const now = Date.now();
    const old = this.#connection;
    let next: Connection;
    try {
      next = await this.#open(context, this.#wanted(context));
    } catch (error) {
      this.lastConnectionCreationErrorTime = now;
      this.lastConnectionError = (error as Error).message;
      throw error;
    }
    if (this.#connection !== old) {
      next.session.terminate(
        `cluster ${formatObjectKey(this.key)} was let go while connecting anew`,
      );
      return undefined;
    }
    this.#connection = next;
    fenceNow(next, context);
    this.lastConnectionCreationErrorTime = 0;
    this.lastConnectionError = undefined;
    this.#everConnected = true;
    old?.session.terminate(`cluster ${formatObjectKey(this.key)} moved to a new connection`);
    return { replaced: old?.id };
  }

  #wanted(context: ConnectContext): Placement {
    return this.placement.wanted(
      context.pool.mode,
      context.options.workers.pressure.calmMs,
      Date.now(),
    );
  }

  /**
   * Opens a second connection in another placement while the current one serves (the first half of
   * a move; {@linkcode ClusterAccessor.adopt} is the second). Changes no state.
   */
  prepare(context: ConnectContext, placement: Placement): Promise<Connection> {
    return this.#open(context, placement);
  }

  /**
   * Makes a prepared connection the current one, keeping the old connection's kubeconfig state, and
   * returns the old one (its owner ends it once it has let go of its watches).
   */
  adopt(next: Connection): Connection | undefined {
    const old = this.#connection;
    this.#connection = next;
    if (old) {
      next.id = old.id;
      next.secretVersion = old.secretVersion;
      // Until the new session reports its own (it starts the same informers).
      for (const [kind, state] of old.informers) next.informers.set(kind, state);
      next.kubeconfigHash = old.kubeconfigHash;
      next.target = old.target;
    }
    return old;
  }

  /**
   * The Secret's resourceVersion (`undefined`: there was none) at the last connection attempt, while
   * that attempt's failure stands; `null` when no failed attempt is recorded.
   */
  get failedSecretVersion(): string | undefined | null {
    return this.#failedSecretVersion;
  }

  async #open(context: ConnectContext, placement: Placement): Promise<Connection> {
    const { options } = context;
    const secretName = kubeconfigSecret(this.key).name;
    const timeout = AbortSignal.any([
      context.signal,
      AbortSignal.timeout(options.client.timeoutMs),
    ]);
    const secret = await context.readSecret(timeout);
    this.#failedSecretVersion = secret?.metadata?.resourceVersion;
    const text = kubeconfigFromSecret(secret, secretName);
    let target;
    try {
      checkUntrustedKubeconfig(text);
      target = restTargetFromKubeConfig(parseKubeconfig(text));
    } catch (error) {
      throw new ClusterCacheError(
        "InvalidKubeconfig",
        `error creating REST config: ${(error as Error).message}`,
      );
    }
    try {
      // Before anything is sent: a Secret must not point this process's credentials at a
      // metadata endpoint, not even by a name that resolves to one (workers check again).
      await resolveAllowed(new URL(target.server).hostname, options.deniedNetworks);
    } catch (error) {
      if (error instanceof ClusterCacheError && error.code === "InvalidKubeconfig") {
        throw new ClusterCacheError(
          "InvalidKubeconfig",
          `error creating REST config: ${error.message}`,
        );
      }
      // A name that does not resolve now: the worker says so, with the probe's words.
    }
    const rest: RESTConfig = {
      ...target,
      userAgent: options.client.userAgent,
      timeoutMs: options.client.timeoutMs,
      qps: options.client.qps,
      burst: options.client.burst,
    };
    const admission = await context.admission.acquire(context.signal);
    let outcome: AimdOutcome = "neutral";
    try {
      const permissions = context.permissions(rest, placement);
      const session = await this.#startSession(context, permissions, placement);
      const writableUntil = context.writableUntil();
      const config = workerConfig(this.key, rest, options, {
        dedicated: placementOf(context.pool.mode, placement) === "dedicated",
        podCheck: true,
        ...(writableUntil === undefined ? {} : { writableUntil }),
      });
      if (!session) {
        outcome = "overload";
        throw new ClusterCacheError(
          "Timeout",
          `cluster is not reachable: its worker did not start within ${WORKER_START_TIMEOUT_MS}ms`,
        );
      }
      let init;
      try {
        init = await session.call({ op: "init", config }, {
          // probe + discovery + pod check, each bounded in the session; this is the outer bound.
          timeoutMs: initTimeoutMs(options),
          signal: context.signal,
          operation: "error connecting",
        });
      } catch (error) {
        const timedOut = isTimeout(error);
        // A cluster that timed out last time too is more likely hung than a victim of load.
        if (timedOut && !this.#lastAttemptTimedOut) outcome = "overload";
        this.#lastAttemptTimedOut = timedOut;
        // A session that answered can serve the next attempt: retries cost no new session. One that
        // did not answer in time may still be busy with this attempt.
        if (session.alive && !isUnanswered(error) && !context.signal.aborted) {
          // Two opens at once (a move's and a swap's) may both fail: one spare is kept, not two.
          this.dropSpare("a newer spare replaces it");
          this.#spare = { session, permissions: JSON.stringify(permissions), placement };
        } else session.terminate("error connecting");
        if (isUnanswered(error)) {
          throw new ClusterCacheError(
            "Timeout",
            `cluster is not reachable: ${(error as Error).message}`,
          );
        }
        throw error;
      }
      this.#lastAttemptTimedOut = false;
      outcome = "success";
      this.#failedSecretVersion = null;
      return {
        id: ++connectionIds,
        session,
        rest: init.runningOnWorkloadCluster && options.inClusterConfig
          ? { ...rest, server: init.server, caPem: options.inClusterConfig.caPem }
          : rest,
        target,
        kubeconfigHash: kubeconfigHash(text),
        secretVersion: secret?.metadata?.resourceVersion,
        informers: new Map(),
      };
    } finally {
      admission.release(outcome);
    }
  }

  /**
   * The spare session of a failed attempt when its permissions still fit, else a new one once it has
   * loaded its modules; `undefined` when it did not load in time (the machine is overloaded).
   */
  async #startSession(
    context: ConnectContext,
    permissions: WorkerPermissions,
    placement: Placement,
  ): Promise<Session | undefined> {
    const spare = this.#spare;
    this.#spare = undefined;
    if (
      spare?.session.alive && spare.permissions === JSON.stringify(permissions) &&
      spare.placement === placement
    ) {
      return spare.session;
    }
    spare?.session.terminate("error connecting");
    const session = context.pool.open(this.key, permissions, context.hooks(this), placement);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), WORKER_START_TIMEOUT_MS);
    });
    const loaded = await Promise.race([session.ready.then(() => true, () => true), late]);
    clearTimeout(timer);
    if (loaded && session.alive) return session;
    session.terminate("error connecting");
    if (!loaded) return undefined;
    throw new ClusterCacheError(
      "WorkerFailed",
      `error connecting: the worker for cluster ${formatObjectKey(this.key)} failed while starting`,
    );
  }

  /**
   * Stops the spare worker kept from a failed attempt: the cluster is forgotten, the cache closes,
   * another replica serves it, or a newer spare replaces it (`why` says which, to the worker).
   */
  dropSpare(why = "the cluster was forgotten"): void {
    this.#spare?.session.terminate(why);
    this.#spare = undefined;
  }

  /**
   * What changed in the kubeconfig Secret since the connection was built from it: `"none"`, only
   * the bearer token (`"token"`: update it in place), or anything else (`"other"`: connect anew).
   * Looks only when the Secret's resourceVersion moved, unless `force` (after a 401). A broken
   * Secret does not break a working connection: it reads as `"none"`.
   */
  kubeconfigChange(
    secret: KubeObject | undefined,
    force = false,
  ): { kind: "none" } | { kind: "token" | "other"; token: string | undefined } {
    const connection = this.#connection;
    if (!connection || !secret) return { kind: "none" };
    const version = secret.metadata?.resourceVersion;
    if (!force && version !== undefined && version === connection.secretVersion) {
      return { kind: "none" };
    }
    let text: string;
    let target: RESTTarget;
    try {
      text = kubeconfigFromSecret(secret, kubeconfigSecret(this.key).name);
      checkUntrustedKubeconfig(text);
      target = restTargetFromKubeConfig(parseKubeconfig(text));
    } catch {
      return { kind: "none" };
    }
    connection.secretVersion = version;
    const hash = kubeconfigHash(text);
    if (hash === connection.kubeconfigHash) return { kind: "none" };
    const { token: _old, ...before } = connection.target;
    const { token, ...after } = target;
    if (JSON.stringify(sorted(before)) !== JSON.stringify(sorted(after))) {
      return { kind: "other", token };
    }
    if (token === connection.target.token) {
      connection.kubeconfigHash = hash; // the same credentials, written differently
      return { kind: "none" };
    }
    connection.pendingHash = hash;
    return { kind: "token", token };
  }

  /**
   * Gives the worker a rotated bearer token: no new connection, no events, no relist (EKS rotates
   * tokens every ~15 minutes).
   */
  async updateToken(token: string | undefined, timeoutMs: number): Promise<void> {
    const connection = this.#connection;
    if (!connection) return;
    const hash = connection.pendingHash;
    connection.pendingHash = undefined;
    const give = async (to: Connection) => {
      await to.session.call({ op: "token", token: token ?? "" }, {
        timeoutMs,
        operation: "error updating the bearer token",
      });
      to.target = { ...to.target, ...(token ? { token } : {}) };
      to.rest = { ...to.rest, ...(token ? { token } : {}) };
      if (hash) to.kubeconfigHash = hash;
    };
    const failure = await give(connection).then(() => undefined, (error: unknown) => error);
    // A move adopted its new connection meanwhile, started with the token before this one (the
    // old worker may have ended under the call, failing it: the new one is what matters).
    const current = this.#connection;
    if (current && current !== connection) return await give(current);
    if (failure !== undefined) throw failure;
  }

  /** Takes back the failure a probe just counted (a 401 that a rotated Secret explains). */
  forgiveLastFailure(): void {
    this.#probe.forgiveLastFailure();
  }

  /**
   * Probes the cluster through its connection's session and says what it means (Cluster API's
   * `HealthCheck`): `unauthorized`, `tooManyFailures` (see {@linkcode HealthProbe.check}).
   *
   * @param mainLagSince The main thread's worst event-loop lag since a `performance.now()` time.
   */
  healthCheck(
    probe: ProbeOptions,
    mainLagSince: (since: number) => number,
  ): Promise<HealthCheckResult> {
    const connection = this.#connection;
    if (!connection) {
      return Promise.resolve({
        verdict: "failure",
        overload: false,
        unauthorized: false,
        tooManyFailures: this.#probe.failing(probe),
      });
    }
    return this.#probe.check(connection.session, probe, mainLagSince);
  }

  /** Whether the failures reached the threshold (again after a failure was taken back). */
  tooManyFailures(probe: ProbeOptions): boolean {
    return this.#probe.failing(probe);
  }

  /** The current connection's informers, as last reported (none while disconnected). */
  informerStates(): InformerState[] {
    return [...(this.#connection?.informers.values() ?? [])];
  }

  /** Keeps what a session reported of its informers, if it serves the current connection. */
  noteInformers(states: readonly InformerState[], from: Session): void {
    const connection = this.#connection;
    if (!connection || connection.session !== from) return;
    for (const state of states) {
      const { relists: _relists, ...kept } = state as InformerState & { relists?: number };
      connection.informers.set(state.kind, kept);
    }
  }

  /** Records a failed probe without running one (a crashed worker). */
  recordFailedProbe(): void {
    this.health.lastProbeTime = Date.now();
    this.health.consecutiveFailures++;
  }

  /** Stops the worker (and with it every informer and watch). Keeps the health state. No-op when disconnected. */
  /**
   * Disconnects. With `retainMs`, and a reader that asked for stale reads of this cluster, the
   * connection's session is kept that long, talking to no server, so its last cache can be read.
   */
  disconnect(retainMs = 0): boolean {
    const connection = this.#connection;
    if (!connection) return false;
    this.#connection = undefined;
    this.dropRetained();
    const session = connection.session;
    if (retainMs > 0 && this.staleReadsAskedAt > 0 && session.alive) {
      void session.call({ op: "freeze" }, {
        timeoutMs: 5_000,
        operation: "error keeping the last cache",
      }).catch(() => {});
      const timer = setTimeout(() => this.dropRetained(), retainMs);
      Deno.unrefTimer(timer);
      this.#retained = { session, informers: connection.informers, since: Date.now(), timer };
      return true;
    }
    session.terminate(`cluster ${formatObjectKey(this.key)} was disconnected`);
    return true;
  }

  /** The last connection's session and informers, kept for stale reads since `since`. */
  retained():
    | { session: Session; informers: ReadonlyMap<string, InformerState>; since: number }
    | undefined {
    const retained = this.#retained;
    return retained?.session.alive ? retained : undefined;
  }

  /** Ends the session kept for stale reads (the bound passed, a new connection, or the end). */
  dropRetained(): void {
    const retained = this.#retained;
    if (!retained) return;
    this.#retained = undefined;
    clearTimeout(retained.timer);
    retained.session.terminate(`cluster ${formatObjectKey(this.key)}: its last cache was let go`);
  }

  /**
   * The cluster's RSA-2048 private key for signing client certificates: generated on first use once
   * the cluster has connected, then kept across reconnects until the Cluster is deleted.
   *
   * @returns The key pair, or `undefined` when the cluster never connected.
   */
  privateKey(): Promise<CryptoKeyPair> | undefined {
    if (!this.#everConnected) return undefined;
    this.#privateKey ??= generateClientCertificateKey();
    return this.#privateKey;
  }
}
