/**
 * The main thread's end of cluster workers (main thread only). A {@linkcode WorkerHost} is one Web
 * Worker, dedicated to one cluster or pooled by several; a {@linkcode Session} is one cluster's
 * session in it: typed calls with deadlines and cancellation, dispatch of watch events and
 * forwarded logs, and containment of failure. An uncaught error in a worker is caught (it would
 * otherwise end the process) and blamed on one session, which fails with every pending call; a hung
 * worker is terminated, failing its sessions. Every call fails with a clear error once its handle is
 * terminated.
 *
 * @module
 */

import type { WatchEvent } from "../../shared/client_types.ts";
import { Deadlines } from "../../shared/deadlines.ts";
import { ClusterCacheError, ClusterNotConnectedError, fromWireError } from "../../shared/errors.ts";
import { formatObjectKey, type ObjectKey } from "../../shared/kube_object.ts";
import { Outbox } from "../../shared/outbox.ts";
import { redact } from "../../shared/redact.ts";
import {
  type MainMessage,
  type OpName,
  type PressureReport,
  PROTOCOL_VERSION,
  type RequestOf,
  type ResponseOf,
  type SessionMessage,
  type WorkerLogLevel,
  type WorkerMessage,
  type WorkerRequest,
  type WorkerStats,
} from "../../shared/protocol.ts";

/** Worker permissions: inherit the process's, or a least-privilege set. */
export type WorkerPermissions = "inherit" | Deno.PermissionOptionsObject;

/** What a handle reports back. */
export interface SessionHooks {
  /** Events of a watch, from the session `from` (a moving watch hears only its current session). */
  onEvents(watchId: number, events: WatchEvent[], from: Session): void;
  /** The events of a watch received so far tell of every object it began with (see `watchSynced`). */
  onWatchSynced?(watchId: number, from: Session): void;
  onLog(level: WorkerLogLevel, message: string, properties: Record<string, unknown>): void;
  onInformer(kind: string, event: "list" | "watchRestart" | "error"): void;
  /** The worker's counters and informer states since its last report, from the session `from`. */
  onStats?(stats: WorkerStats, from: Session): void;
  /**
   * The session failed (its worker crashed or hung) and its pending calls with it. `culprit`: the
   * session is blamed for it, rather than a neighbour in the same pooled worker.
   */
  onFailure(error: ClusterCacheError, culprit: boolean, from: Session): void;
  /** The session's load changed level (see {@linkcode PressureReport}). */
  onPressure?(pressure: PressureReport): void;
  /** Every completed call's round trip, for metrics. */
  onRoundTrip?(op: OpName, seconds: number): void;
  /** An informer asks to list (see `ListBudget`); answer with {@linkcode Session.grantList}. */
  onListPermit?(kind: string, objects: number | undefined, urgent: boolean, from: Session): void;
  /** An informer's list is over (or was given up). */
  onListDone?(kind: string, from: Session): void;
}

/** Options of one call. */
export interface SessionCallOptions {
  /** Deadline from now. */
  timeoutMs: number;
  /** Cancels the call (and the work in the worker). */
  signal?: AbortSignal | undefined;
  /** Prefix of the ClusterNotConnectedError raised if the worker is gone. */
  operation: string;
}

interface Pending {
  op: OpName;
  started: number;
  operation: string;
  timeoutMs: number;
  resolve(value: unknown): void;
  reject(error: unknown): void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  /** The items of a big list that came ahead of its response, parsed as they came. */
  parts?: unknown[][];
}

const WORKER_URL = new URL("../../../workers/cluster_worker.ts", import.meta.url);

let liveWorkers = 0;
const unanswered = new WeakSet<Error>();
const movedAway = new WeakSet<Error>();

/**
 * Whether `error` ended a call because its cluster moved to another worker while the call waited:
 * a read may be asked again of the cluster's current session.
 */
export function isMovedAway(error: unknown): boolean {
  return error instanceof Error && movedAway.has(error);
}

/**
 * Whether `error` is a call's deadline passing on this side: the worker never answered (it may
 * still be working on the request), as opposed to the worker reporting a timeout of its own.
 */
export function isUnanswered(error: unknown): boolean {
  return error instanceof Error && unanswered.has(error);
}
let startedWorkers = 0;

/** A list answered in parts: the parts' items, then the response's own. */
function withParts(value: unknown, pending: Pending): unknown {
  if (!pending.parts) return value;
  const list = value as { items: unknown[] };
  list.items = [...pending.parts.flat(), ...list.items];
  return list;
}

/** A session's worker: of its own, or shared by a pool. */
export type Placement = "dedicated" | "pooled";

/** Workers started and not yet terminated in this process (for leak checks). */
export function liveWorkerCount(): number {
  return liveWorkers;
}

/** Workers ever started in this process (for tests of what a retry costs). */
export function startedWorkerCount(): number {
  return startedWorkers;
}

/**
 * One Web Worker hosting sessions: one (dedicated) or up to a pool's share of clusters (pooled).
 * Terminated when its last session ends.
 */
export class WorkerHost {
  /** Dedicated to one cluster, or shared. */
  readonly placement: Placement;
  /** Its name: `clustercache <namespace>/<name>` for a dedicated worker, `clustercache pool <n>`. */
  readonly name: string;
  /** The key its permissions were made from (a pool shares a worker only between equal keys). */
  readonly permissionsKey: string;
  readonly #ended = new Set<() => void>();
  readonly #worker: Worker;
  readonly #outbox: Outbox<MainMessage>;
  readonly #sessions = new Map<number, Session>();
  readonly #pongs = new Map<number, () => void>();
  readonly #ready = Promise.withResolvers<void>();
  #running: Int32Array | undefined;
  #nextSession = 1;
  #nextPing = 1;
  #alive = true;
  /** Sessions opened over the host's life (a pool fills a host up to its share once). */
  opened = 0;

  /**
   * Starts a worker.
   *
   * @param name Its name (for debuggers).
   * @param permissions Its Deno permissions.
   */
  constructor(name: string, permissions: WorkerPermissions, placement: Placement) {
    this.placement = placement;
    this.name = name;
    this.permissionsKey = JSON.stringify(permissions);
    this.#worker = new Worker(WORKER_URL, {
      type: "module",
      name,
      ...(permissions === "inherit" ? {} : { deno: { permissions } }),
    });
    liveWorkers++;
    startedWorkers++;
    this.#outbox = new Outbox<MainMessage>(
      (message) => this.#worker.postMessage(message),
      undefined,
      // Only a request carries the caller's values (what it writes): the call fails, nothing else.
      (message, error) => {
        if (message.type === "request") {
          this.#sessions.get(message.session)?.refuse(message.id, error);
        }
      },
    );
    this.#worker.onmessage = (event: MessageEvent<WorkerMessage>) => this.#receive(event.data);
    this.#worker.onerror = (event: ErrorEvent) => {
      // Without preventDefault an uncaught error in a worker terminates the whole process. The
      // worker contains its sessions' errors itself; one that reaches here ends the worker.
      event.preventDefault();
      this.#crash(undefined, `the worker ${name} crashed: ${redact(event.message)}`);
    };
    this.#worker.onmessageerror = () => {
      this.#crash(undefined, `the worker ${name} sent a message that cannot be read`);
    };
  }

  /** Resolves when the worker has loaded its modules; rejects if it fails first. */
  get ready(): Promise<void> {
    return this.#ready.promise;
  }

  /** Calls `listener` once the worker is terminated (at once when it is already). */
  onEnd(listener: () => void): void {
    if (this.#alive) this.#ended.add(listener);
    else listener();
  }

  /** Whether the worker runs. */
  get alive(): boolean {
    return this.#alive;
  }

  /** Sessions open now. */
  get size(): number {
    return this.#sessions.size;
  }

  /** Opens a session for a cluster. */
  open(cluster: ObjectKey, hooks: SessionHooks): Session {
    const session = this.#nextSession++;
    this.opened++;
    const handle = new Session(cluster, this, session, hooks);
    this.#sessions.set(session, handle);
    return handle;
  }

  /** Posts a message to the worker (dropped once it is gone). */
  post(message: MainMessage): void {
    if (this.#alive) this.#outbox.post(message);
  }

  /** Ends a session: the worker stops its work; the last one ends the worker. */
  release(session: number): void {
    if (!this.#sessions.delete(session)) return;
    this.post({ type: "close", session });
    if (this.#sessions.size === 0) this.#terminate();
  }

  /**
   * Whether the worker's thread answers within `timeoutMs`. `undefined` when this thread itself
   * was starved for more than half of that time (then nothing can be told).
   *
   * @param mainLagSince This thread's worst event-loop lag since a `performance.now()` time.
   */
  async responsive(
    timeoutMs: number,
    mainLagSince: (since: number) => number,
  ): Promise<boolean | undefined> {
    if (!this.#alive) return false;
    const id = this.#nextPing++;
    const started = performance.now();
    const answered = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        this.#pongs.delete(id);
        resolve(false);
      }, timeoutMs);
      this.#pongs.set(id, () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
    this.#worker.postMessage({ type: "ping", id } satisfies MainMessage);
    const ok = await answered;
    if (ok) return true;
    return mainLagSince(started) > timeoutMs / 2 ? undefined : false;
  }

  /**
   * Ends a worker whose thread no longer answers: the session whose code ran last is blamed; every
   * session fails.
   */
  hung(): void {
    if (!this.#alive) return;
    const blamed = this.#running ? Atomics.load(this.#running, 0) : 0;
    this.#crash(blamed === 0 ? undefined : blamed, "its worker stopped answering", true);
  }

  #receive(message: WorkerMessage): void {
    switch (message.type) {
      case "batch":
        for (const inner of message.messages) this.#receive(inner);
        return;
      case "ready":
        this.#running = message.running;
        this.#ready.resolve();
        return;
      case "pong":
        this.#pongs.get(message.id)?.();
        this.#pongs.delete(message.id);
        return;
      case "crash":
        this.#crash(message.session, `an uncaught error in its worker: ${redact(message.message)}`);
        return;
      default:
        this.#sessions.get(message.session)?.receive(message);
    }
  }

  /**
   * A session crashed (`session`), or the whole worker did (`undefined`). A pooled worker goes on
   * with the others unless it is `hung`; a dedicated one ends.
   */
  #crash(session: number | undefined, why: string, hung = false): void {
    if (!this.#alive) return;
    const whole = session === undefined || hung || this.placement === "dedicated";
    const failed = whole ? [...this.#sessions.values()] : [this.#sessions.get(session)!];
    for (const handle of failed) {
      if (!handle) continue;
      this.#sessions.delete(handle.session);
      // In a dedicated worker the one session is to blame, whatever the worker said.
      const culprit = this.placement === "dedicated" || handle.session === session;
      const message = culprit
        ? `the worker for cluster ${formatObjectKey(handle.cluster)} failed: ${why}`
        : `the pooled worker of cluster ${
          formatObjectKey(handle.cluster)
        } failed because of a neighbour: ${why}`;
      handle.fail(new ClusterCacheError("WorkerFailed", message), culprit);
    }
    if (whole || this.#sessions.size === 0) this.#terminate();
  }

  #terminate(): void {
    if (!this.#alive) return;
    this.#alive = false;
    const error = new ClusterCacheError("WorkerFailed", "the worker was terminated");
    this.#ready.reject(error);
    this.#ready.promise.catch(() => {}); // nobody may be waiting
    this.#outbox.close();
    this.#worker.terminate();
    liveWorkers--;
    for (const resolve of this.#pongs.values()) resolve();
    this.#pongs.clear();
    for (const handle of [...this.#sessions.values()]) {
      handle.fail(new ClusterCacheError("WorkerFailed", "its worker was terminated"), false);
    }
    this.#sessions.clear();
    for (const listener of this.#ended) listener();
    this.#ended.clear();
  }
}

/**
 * Starts a worker of its own for one cluster (or the management cluster) and opens its session.
 *
 * @param cluster The cluster it serves (for messages).
 * @param permissions Its Deno permissions.
 * @param hooks Where events, logs and failures go.
 */
export function dedicatedSession(
  cluster: ObjectKey,
  permissions: WorkerPermissions,
  hooks: SessionHooks,
): Session {
  return new WorkerHost(`clustercache ${formatObjectKey(cluster)}`, permissions, "dedicated")
    .open(cluster, hooks);
}

/** One cluster's session in a worker. */
export class Session {
  readonly cluster: ObjectKey;
  /** The worker hosting the session. */
  readonly host: WorkerHost;
  /** The session's number in its worker. */
  readonly session: number;
  readonly #hooks: SessionHooks;
  readonly #pending = new Map<number, Pending>();
  readonly #deadlines = new Deadlines((id) => {
    const pending = this.#settle(id);
    if (!pending) return;
    const error = new ClusterCacheError(
      "Timeout",
      `${pending.operation}: no answer within ${pending.timeoutMs}ms`,
    );
    unanswered.add(error);
    pending.reject(error);
    this.host.post({ type: "cancel", session: this.session, id });
  });
  #nextId = 1;
  #state: "alive" | "failed" | "terminated" = "alive";
  /** Whether the session was blamed for its failure. */
  #culprit = false;

  /** Opened by {@linkcode WorkerHost.open}. */
  constructor(cluster: ObjectKey, host: WorkerHost, session: number, hooks: SessionHooks) {
    this.cluster = cluster;
    this.host = host;
    this.session = session;
    this.#hooks = hooks;
  }

  /**
   * Resolves when the worker has loaded its modules (the CPU-heavy part of starting one); rejects
   * if it fails first.
   */
  get ready(): Promise<void> {
    return this.host.ready;
  }

  /** Whether the session is open and answering is possible. */
  get alive(): boolean {
    return this.#state === "alive";
  }

  /** Whether the session failed because of its own doing (not a pooled neighbour's). */
  get culprit(): boolean {
    return this.#culprit;
  }

  /** Dedicated to this cluster, or shared. */
  get placement(): Placement {
    return this.host.placement;
  }

  /**
   * Sends a request and waits for its answer, at most `timeoutMs`.
   *
   * @throws Whatever the worker's operation threw (class preserved); {@linkcode ClusterCacheError} `Timeout` when the deadline
   *   passes; `AbortError` when `signal` aborts; {@linkcode ClusterNotConnectedError} when the worker is
   *   terminated; {@linkcode ClusterCacheError} `WorkerFailed` when it crashed.
   */
  call<O extends OpName>(
    request: RequestOf<O>,
    options: SessionCallOptions,
  ): Promise<ResponseOf<O>> {
    if (this.#state === "terminated") {
      return Promise.reject(new ClusterNotConnectedError(options.operation, this.cluster));
    }
    if (this.#state === "failed") {
      return Promise.reject(
        new ClusterCacheError(
          "WorkerFailed",
          `${options.operation}: the cluster's worker has failed`,
        ),
      );
    }
    if (options.signal?.aborted) return Promise.reject(options.signal.reason);
    const id = this.#nextId++;
    const { promise, resolve, reject } = Promise.withResolvers<ResponseOf<O>>();
    const pending: Pending = {
      op: request.op,
      started: performance.now(),
      operation: options.operation,
      timeoutMs: options.timeoutMs,
      resolve: resolve as (value: unknown) => void,
      reject,
      signal: options.signal,
      onAbort: undefined,
    };
    if (options.signal) {
      pending.onAbort = () => {
        this.#settle(id)?.reject(options.signal!.reason);
        this.host.post({ type: "cancel", session: this.session, id });
      };
      options.signal.addEventListener("abort", pending.onAbort, { once: true });
    }
    this.#pending.set(id, pending);
    this.#deadlines.set(id, Date.now() + options.timeoutMs);
    this.host.post({
      type: "request",
      v: PROTOCOL_VERSION,
      session: this.session,
      id,
      deadline: Date.now() + options.timeoutMs,
      request: request as WorkerRequest,
    });
    return promise;
  }

  /** A request that could not be sent (its values cannot be cloned) fails its call. */
  refuse(id: number, error: unknown): void {
    const pending = this.#settle(id);
    if (!pending) return;
    // The error's name only: its message may quote the caller's values.
    pending.reject(
      new TypeError(
        `${pending.operation}: the request cannot be sent to the cluster's worker (${
          (error as Error)?.name ?? "an error"
        }: it holds a value that cannot be cloned, such as a function)`,
      ),
    );
  }

  /** Lets the session write until `until` (epoch ms): this replica renewed its ownership. */
  fence(until: number): void {
    if (this.#state === "alive") this.host.post({ type: "fence", session: this.session, until });
  }

  /** Lets an informer that asked (`onListPermit`) start its list. */
  grantList(kind: string): void {
    if (this.#state === "alive") {
      this.host.post({ type: "listGranted", session: this.session, kind });
    }
  }

  /** Lets the worker send a watch `count` more events (its handler got through as many). */
  ack(watchId: number, count: number): void {
    if (this.#state === "alive") {
      this.host.post({ type: "ack", session: this.session, watchId, count });
    }
  }

  #settle(id: number): Pending | undefined {
    const pending = this.#pending.get(id);
    if (!pending) return undefined;
    this.#pending.delete(id);
    this.#deadlines.delete(id);
    if (pending.onAbort) pending.signal!.removeEventListener("abort", pending.onAbort);
    return pending;
  }

  /** A message of this session from the worker. */
  receive(message: SessionMessage): void {
    if (this.#state !== "alive") return;
    switch (message.type) {
      case "response": {
        const pending = this.#settle(message.id);
        if (!pending) return;
        this.#hooks.onRoundTrip?.(pending.op, (performance.now() - pending.started) / 1000);
        if (!message.ok) pending.reject(fromWireError(message.error));
        else if ("json" in message) pending.resolve(withParts(JSON.parse(message.json), pending));
        else pending.resolve(message.value);
        return;
      }
      case "part": {
        const pending = this.#pending.get(message.id);
        if (!pending) return; // given up: its cancel went out
        (pending.parts ??= []).push(JSON.parse(message.json));
        this.host.post({ type: "more", session: this.session, id: message.id });
        return;
      }
      case "responses": {
        const values = JSON.parse(message.json) as unknown[];
        message.ids.forEach((id, i) => {
          const pending = this.#settle(id);
          if (!pending) return;
          this.#hooks.onRoundTrip?.(pending.op, (performance.now() - pending.started) / 1000);
          pending.resolve(withParts(values[i], pending));
        });
        return;
      }
      case "events":
        this.#hooks.onEvents(message.watchId, message.events, this);
        return;
      case "watchSynced":
        this.#hooks.onWatchSynced?.(message.watchId, this);
        return;
      case "log":
        this.#hooks.onLog(message.level, message.message, message.properties);
        return;
      case "informer":
        this.#hooks.onInformer(message.kind, message.event);
        return;
      case "stats":
        this.#hooks.onStats?.(message.stats, this);
        return;
      case "pressure":
        this.#hooks.onPressure?.(message.pressure);
        return;
      case "listPermit":
        this.#hooks.onListPermit?.(message.kind, message.objects, message.urgent, this);
        return;
      case "listDone":
        this.#hooks.onListDone?.(message.kind, this);
        return;
    }
  }

  /**
   * Resolves once no call is pending but those of the operations in `except`, or after `timeoutMs`
   * (a moved session finishes what it started), or once `signal` aborts.
   */
  async drained(timeoutMs: number, except: OpName[] = [], signal?: AbortSignal): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const busy = () => [...this.#pending.values()].some((p) => !except.includes(p.op));
    while (busy() && this.alive && Date.now() < deadline && !signal?.aborted) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** The session failed (called by its host): pending calls fail, the owner hears of it. */
  fail(error: ClusterCacheError, culprit: boolean): void {
    if (this.#state !== "alive") return;
    this.#state = "failed";
    this.#culprit = culprit;
    this.#stop(error);
    this.#hooks.onFailure(error, culprit, this);
  }

  #stop(error: Error): void {
    for (const id of [...this.#pending.keys()]) this.#settle(id)?.reject(error);
    this.#deadlines.stop();
  }

  /**
   * Ends the session (aborting its in-flight requests; the last session ends its worker) and fails
   * pending calls with {@linkcode ClusterNotConnectedError} (`moved`: because the cluster moved to
   * another worker, see {@linkcode isMovedAway}). Safe to call twice.
   */
  terminate(operation = "connection closed", moved = false): void {
    if (this.#state === "terminated") return;
    const wasAlive = this.#state === "alive";
    this.#state = "terminated";
    if (wasAlive) {
      const error = new ClusterNotConnectedError(operation, this.cluster);
      if (moved) movedAway.add(error);
      this.#stop(error);
    }
    this.host.release(this.session);
  }
}
