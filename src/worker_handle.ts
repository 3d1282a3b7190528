/**
 * The main thread's end of one cluster's worker: typed calls with deadlines and cancellation,
 * dispatch of watch events and forwarded logs, and containment of failure. An uncaught error in the
 * worker is caught here (it would otherwise end the process), the worker is terminated, and every
 * pending call fails with a clear error; so does every call when the handle is terminated.
 *
 * @module
 */

import type { WatchEvent } from "./client_types.ts";
import { Deadlines } from "./deadlines.ts";
import { ClusterCacheError, ClusterNotConnectedError, fromWireError } from "./errors.ts";
import { formatObjectKey, type ObjectKey } from "./kube_object.ts";
import { Outbox } from "./outbox.ts";
import { redact } from "./redact.ts";
import {
  type MainMessage,
  type OpName,
  PROTOCOL_VERSION,
  type RequestOf,
  type ResponseOf,
  type WorkerLogLevel,
  type WorkerMessage,
  type WorkerRequest,
  type WorkerStats,
} from "./protocol.ts";

/** Worker permissions: inherit the process's, or a least-privilege set. */
export type WorkerPermissions = "inherit" | Deno.PermissionOptionsObject;

/** What a handle reports back. */
export interface WorkerHandleHooks {
  onEvents(watchId: number, events: WatchEvent[]): void;
  onLog(level: WorkerLogLevel, message: string, properties: Record<string, unknown>): void;
  onInformer(kind: string, event: "list" | "watchRestart" | "error"): void;
  /** The worker's counters since its last report, for metrics. */
  onStats?(stats: WorkerStats): void;
  /** The worker crashed; it has been terminated and pending calls failed. */
  onFailure(error: ClusterCacheError): void;
  /** Every completed call's round trip, for metrics. */
  onRoundTrip?(op: OpName, seconds: number): void;
}

/** Options of one call. */
export interface CallOptions {
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
}

const WORKER_URL = new URL("../workers/cluster_worker.ts", import.meta.url);

let liveWorkers = 0;
const unanswered = new WeakSet<Error>();

/**
 * Whether `error` is a call's deadline passing on this side: the worker never answered (it may
 * still be working on the request), as opposed to the worker reporting a timeout of its own.
 */
export function isUnanswered(error: unknown): boolean {
  return error instanceof Error && unanswered.has(error);
}
let startedWorkers = 0;

/** Workers started and not yet terminated in this process (for leak checks). */
export function liveWorkerCount(): number {
  return liveWorkers;
}

/** Workers ever started in this process (for tests of what a retry costs). */
export function startedWorkerCount(): number {
  return startedWorkers;
}

/** One worker. */
export class WorkerHandle {
  readonly cluster: ObjectKey;
  readonly #worker: Worker;
  readonly #hooks: WorkerHandleHooks;
  readonly #outbox: Outbox<MainMessage>;
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
    this.#outbox.post({ type: "cancel", id });
  });
  #nextId = 1;
  #state: "alive" | "failed" | "terminated" = "alive";
  readonly #ready = Promise.withResolvers<void>();

  /**
   * Starts a worker.
   *
   * @param cluster The cluster it serves (for messages).
   * @param permissions Its Deno permissions.
   * @param hooks Where events, logs and failures go.
   */
  constructor(cluster: ObjectKey, permissions: WorkerPermissions, hooks: WorkerHandleHooks) {
    this.cluster = cluster;
    this.#hooks = hooks;
    this.#worker = new Worker(WORKER_URL, {
      type: "module",
      name: `clustercache ${formatObjectKey(cluster)}`,
      ...(permissions === "inherit" ? {} : { deno: { permissions } }),
    });
    liveWorkers++;
    startedWorkers++;
    this.#outbox = new Outbox<MainMessage>((message) => this.#worker.postMessage(message));
    this.#worker.onmessage = (event: MessageEvent<WorkerMessage>) => this.#receive(event.data);
    this.#worker.onerror = (event: ErrorEvent) => {
      // Without preventDefault an uncaught error in a worker terminates the whole process.
      event.preventDefault();
      this.#fail(
        `the worker for cluster ${formatObjectKey(cluster)} crashed: ${redact(event.message)}`,
      );
    };
    this.#worker.onmessageerror = () => {
      this.#fail(
        `the worker for cluster ${formatObjectKey(cluster)} sent a message that cannot be read`,
      );
    };
  }

  /**
   * Resolves when the worker has loaded its modules (the CPU-heavy part of starting one); rejects
   * if it fails first.
   */
  get ready(): Promise<void> {
    return this.#ready.promise;
  }

  /** Whether the worker is running and answering is possible. */
  get alive(): boolean {
    return this.#state === "alive";
  }

  /**
   * Sends a request and waits for its answer, at most `timeoutMs`.
   *
   * @throws Whatever the worker's operation threw (class preserved); {@linkcode ClusterCacheError} `Timeout` when the deadline
   *   passes; `AbortError` when `signal` aborts; {@linkcode ClusterNotConnectedError} when the worker is
   *   terminated; {@linkcode ClusterCacheError} `WorkerFailed` when it crashed.
   */
  call<O extends OpName>(request: RequestOf<O>, options: CallOptions): Promise<ResponseOf<O>> {
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
        this.#outbox.post({ type: "cancel", id });
      };
      options.signal.addEventListener("abort", pending.onAbort, { once: true });
    }
    this.#pending.set(id, pending);
    this.#deadlines.set(id, Date.now() + options.timeoutMs);
    this.#outbox.post({
      type: "request",
      v: PROTOCOL_VERSION,
      id,
      deadline: Date.now() + options.timeoutMs,
      request: request as WorkerRequest,
    });
    return promise;
  }

  /** Tells the worker to pause or resume a watch (no answer; ignored once the worker is gone). */
  flow(watchId: number, paused: boolean): void {
    if (this.#state === "alive") this.#outbox.post({ type: "flow", watchId, paused });
  }

  #settle(id: number): Pending | undefined {
    const pending = this.#pending.get(id);
    if (!pending) return undefined;
    this.#pending.delete(id);
    this.#deadlines.delete(id);
    if (pending.onAbort) pending.signal!.removeEventListener("abort", pending.onAbort);
    return pending;
  }

  #receive(message: WorkerMessage): void {
    switch (message.type) {
      case "batch":
        for (const inner of message.messages) this.#receive(inner);
        return;
      case "response": {
        const pending = this.#settle(message.id);
        if (!pending) return;
        this.#hooks.onRoundTrip?.(pending.op, (performance.now() - pending.started) / 1000);
        if (!message.ok) pending.reject(fromWireError(message.error));
        else if ("json" in message) pending.resolve(JSON.parse(message.json));
        else pending.resolve(message.value);
        return;
      }
      case "responses": {
        const values = JSON.parse(message.json) as unknown[];
        message.ids.forEach((id, i) => {
          const pending = this.#settle(id);
          if (!pending) return;
          this.#hooks.onRoundTrip?.(pending.op, (performance.now() - pending.started) / 1000);
          pending.resolve(values[i]);
        });
        return;
      }
      case "events":
        this.#hooks.onEvents(message.watchId, message.events);
        return;
      case "log":
        this.#hooks.onLog(message.level, message.message, message.properties);
        return;
      case "informer":
        this.#hooks.onInformer(message.kind, message.event);
        return;
      case "stats":
        this.#hooks.onStats?.(message.stats);
        return;
      case "ready":
        this.#ready.resolve();
        return;
    }
  }

  #fail(message: string): void {
    if (this.#state !== "alive") return;
    this.#state = "failed";
    const error = new ClusterCacheError("WorkerFailed", message);
    this.#stop(error);
    this.#hooks.onFailure(error);
  }

  #stop(error: Error): void {
    this.#ready.reject(error);
    this.#ready.promise.catch(() => {}); // nobody may be waiting
    this.#outbox.close();
    this.#worker.terminate();
    liveWorkers--;
    for (const id of [...this.#pending.keys()]) this.#settle(id)?.reject(error);
    this.#deadlines.stop();
  }

  /**
   * Terminates the worker (aborting its in-flight requests) and fails pending calls with
   * {@linkcode ClusterNotConnectedError}. Safe to call twice.
   */
  terminate(operation = "connection closed"): void {
    if (this.#state === "terminated") return;
    const wasAlive = this.#state === "alive";
    this.#state = "terminated";
    if (wasAlive) this.#stop(new ClusterNotConnectedError(operation, this.cluster));
  }
}
