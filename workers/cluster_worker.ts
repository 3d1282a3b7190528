/**
 * The entry of a cluster worker: hosts sessions, one per cluster connection (one in a dedicated
 * worker, many in a pooled one). Receives {@linkcode MainMessage}s, runs each request with its
 * deadline and cancellation against the session's {@linkcode ClusterRuntime}, and answers in batches.
 *
 * An uncaught error is blamed on the session whose code ran last: that session is closed and
 * reported as crashed, and the worker goes on serving the others.
 *
 * Nothing here (or below) imports `@kubernetes/client-node` at runtime: a worker would cost ~70 MB
 * with it instead of ~8 MB without.
 *
 * @module
 */

/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />

import { Deadlines } from "../src/shared/deadlines.ts";
import { ClusterCacheError, toWireError } from "../src/shared/errors.ts";
import { jsonParts, MAX_PART_BYTES } from "../src/shared/json_parts.ts";
import type { KubeList } from "../src/shared/kube_object.ts";
import { Outbox } from "../src/shared/outbox.ts";
import {
  type InitResult,
  type MainMessage,
  PROTOCOL_VERSION,
  type SessionMessage,
  type WorkerConfig,
  type WorkerMessage,
  type WorkerRequest,
} from "../src/shared/protocol.ts";
import { ClusterRuntime } from "./cluster_runtime.ts";
import { operations, type OperationTable } from "./operations.ts";
import { LoadMeter, NO_SESSION, running } from "./load_meter.ts";
import { describe } from "./reflector.ts";
import { workerLog } from "./worker_log.ts";

/**
 * Merges a turn's small JSON responses of each session into one JSON array, so the main thread
 * parses once; a merge stops at `MAX_PART_BYTES` so that no parse holds the main thread long.
 */
function mergeJsonResponses(queue: WorkerMessage[]): WorkerMessage[] {
  const bySession = new Map<number, { ids: number[]; parts: string[]; bytes: number }>();
  const rest: WorkerMessage[] = [];
  let merged = 0;
  for (const message of queue) {
    if (message.type === "response" && message.ok && "json" in message) {
      let group = bySession.get(message.session);
      if (!group || group.bytes + message.json.length > MAX_PART_BYTES) {
        if (group) rest.push(merge(message.session, group));
        bySession.set(message.session, group = { ids: [], parts: [], bytes: 0 });
      }
      group.ids.push(message.id);
      group.parts.push(message.json);
      group.bytes += message.json.length;
      merged++;
    } else {
      rest.push(message);
    }
  }
  if (merged < 2) return queue;
  for (const [session, group] of bySession) rest.push(merge(session, group));
  return rest;
}

function merge(session: number, group: { ids: number[]; parts: string[] }): WorkerMessage {
  return { type: "responses", session, ids: group.ids, json: `[${group.parts.join(",")}]` };
}

/** A list's envelope as JSON with `items` spliced in (already JSON). */
function listJson(list: KubeList, items: string): string {
  const envelope = JSON.stringify({ ...list, items: undefined });
  return `${envelope.slice(0, -1)}${envelope.length > 2 ? "," : ""}"items":${items}}`;
}

const outbox = new Outbox<WorkerMessage>(
  (message) => self.postMessage(message),
  mergeJsonResponses,
);

/** Pressure is assessed this often in a pool (a busy neighbour must be moved out quickly). */
const PRESSURE_INTERVAL_MS = 1_000;
/** Stats go out at least this often (and with every probe). */
const STATS_INTERVAL_MS = 5_000;
/** How soon an informer's change of state (synced, failing) is reported. */
const STATS_SOON_MS = 100;

/** Thresholds of a session that reports no pressure (the cache does not pool). */
const NO_PRESSURE = {
  objects: Infinity,
  eventsPerSecond: Infinity,
  busyRatio: Infinity,
  windowMs: 10_000,
  calmMs: Infinity,
};

/** One cluster connection served by this worker. */
class Session {
  readonly id: number;
  readonly #inflight = new Map<number, AbortController>();
  /** List responses sent in parts: what is still to go, by request id. */
  readonly #parts = new Map<number, { parts: string[]; final: string }>();
  readonly #deadlines = new Deadlines((id) =>
    this.#inflight.get(id)?.abort(new DOMException("the request's deadline passed", "TimeoutError"))
  );
  readonly #log;
  #runtime: ClusterRuntime | undefined;
  /** What each operation does, once `init` made the runtime. */
  #operations: OperationTable | undefined;
  #meter: LoadMeter | undefined;
  #reportsPressure = false;
  #closed = false;

  constructor(id: number) {
    this.id = id;
    this.#log = workerLog((message) => this.post(message), id);
  }

  post(message: SessionMessage): void {
    if (!this.#closed) outbox.post(message);
  }

  #statsQueued: ReturnType<typeof setTimeout> | undefined;
  /** Lists waiting for the main thread's go (`listGranted`), by kind. */
  readonly #permits = new Map<string, () => void>();

  /**
   * Asks the main thread for a place in the fleet's list budget and waits for it. The permit ends
   * (`listDone`) when the list is over, or at once when the wait is given up.
   */
  #listPermit(
    kind: string,
    objects: number | undefined,
    urgent: boolean,
    signal: AbortSignal,
  ): Promise<() => void> {
    const done = () => this.post({ type: "listDone", session: this.id, kind });
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        this.#permits.delete(kind);
        done();
        reject(signal.reason);
      };
      if (signal.aborted) return onAbort();
      signal.addEventListener("abort", onAbort, { once: true });
      this.#permits.set(kind, () => {
        signal.removeEventListener("abort", onAbort);
        let ended = false;
        resolve(() => {
          if (ended) return;
          ended = true;
          done();
        });
      });
      this.post({
        type: "listPermit",
        session: this.id,
        kind,
        ...(objects === undefined ? {} : { objects }),
        urgent,
      });
    });
  }

  /** The main thread's go for a list asked for. */
  granted(kind: string): void {
    const grant = this.#permits.get(kind);
    this.#permits.delete(kind);
    grant?.();
  }

  /** Reports stats shortly (one report for a burst of changes). */
  #statsSoon(): void {
    if (this.#statsQueued !== undefined || this.#closed) return;
    this.#statsQueued = setTimeout(() => {
      this.#statsQueued = undefined;
      this.reportStats();
    }, STATS_SOON_MS);
  }

  /** Sends stats when something changed. */
  reportStats(): void {
    if (!this.#runtime) return;
    const stats = this.#runtime.takeStats();
    if (stats.requests.length === 0 && stats.informers.length === 0 && stats.retries.length === 0) {
      return;
    }
    this.post({ type: "stats", session: this.id, stats });
  }

  /** Sends a pressure report when the session's level changed. */
  reportPressure(): void {
    if (!this.#runtime || !this.#meter || !this.#reportsPressure) return;
    const pressure = this.#meter.assess(this.#runtime.objectCount());
    if (pressure) this.post({ type: "pressure", session: this.id, pressure });
  }

  /** Serves a request: `init` makes the runtime; every other operation is in its table. */
  async #dispatch(request: WorkerRequest, signal: AbortSignal): Promise<unknown> {
    if (request.op === "init") return await this.#init(request.config, signal);
    const table = this.#operations;
    if (!table) throw new ClusterCacheError("Internal", "the session was not initialised");
    const handler = table[request.op] as (r: WorkerRequest, s: AbortSignal) => unknown;
    const value = await handler(request, signal);
    if (request.op === "probe") this.reportStats(); // metrics as fresh as the health check
    return value;
  }

  async #init(config: WorkerConfig, signal: AbortSignal): Promise<InitResult> {
    if (this.#runtime) {
      throw new ClusterCacheError("Internal", "the session is already initialised");
    }
    const meter = new LoadMeter(
      this.id,
      config.pressure ?? NO_PRESSURE,
      config.dedicated ? "high" : "calm",
    );
    this.#reportsPressure = config.pressure !== undefined;
    if (config.pressure) assessPressure();
    const created = new ClusterRuntime(config, {
      log: this.#log,
      watches: {
        event: (watchId, event) =>
          !this.#closed && outbox.postEvent(
            watchId,
            event,
            (id, events) => ({ type: "events", session: this.id, watchId: id, events }),
          ),
        // Queued behind the events it follows: the outbox keeps their order.
        synced: (watchId) =>
          !this.#closed && this.post({ type: "watchSynced", session: this.id, watchId }),
      },
      count: (kind, event) => {
        this.post({ type: "informer", session: this.id, kind, event });
        // A kind that synced or started failing is news for health: report it soon, not in 5 s.
        if (event !== "watchRestart") this.#statsSoon();
      },
      meter,
      report: (pressure) => this.post({ type: "pressure", session: this.id, pressure }),
      ...(config.listBudget
        ? { permit: (kind, objects, urgent, s) => this.#listPermit(kind, objects, urgent, s) }
        : {}),
    });
    this.#runtime = created;
    this.#operations = operations(created);
    this.#meter = meter;
    try {
      return await created.init(signal);
    } catch (error) {
      created.close();
      this.#runtime = undefined;
      this.#operations = undefined;
      this.#meter = undefined;
      throw error;
    }
  }

  async handle(message: Extract<MainMessage, { type: "request" }>): Promise<void> {
    const { id } = message;
    const session = this.id;
    if (message.v !== PROTOCOL_VERSION) {
      this.post({
        type: "response",
        session,
        id,
        ok: false,
        error: toWireError(
          new ClusterCacheError(
            "Internal",
            `protocol version ${message.v} is not ${PROTOCOL_VERSION}`,
          ),
        ),
      });
      return;
    }
    const abort = new AbortController();
    this.#inflight.set(id, abort);
    this.#deadlines.set(id, message.deadline);
    try {
      Atomics.store(running, 0, session);
      const value = await this.#dispatch(message.request, abort.signal);
      const op = message.request.op;
      if (op === "get" || op === "create" || op === "update" || op === "patch") {
        this.post({ type: "response", session, id, ok: true, json: JSON.stringify(value) });
      } else if (op === "list") {
        // In parts, one at a time: the main thread parses each in a task of its own and asks for
        // the next, so other answers are not held behind a big list.
        const parts = jsonParts((value as KubeList).items);
        const final = listJson(value as KubeList, parts.pop()!);
        if (parts.length === 0) this.post({ type: "response", session, id, ok: true, json: final });
        else {
          this.#parts.set(id, { parts, final });
          this.more(id);
        }
      } else {
        this.post({ type: "response", session, id, ok: true, value });
      }
    } catch (error) {
      this.post({ type: "response", session, id, ok: false, error: toWireError(error) });
    } finally {
      this.#deadlines.delete(id);
      this.#inflight.delete(id);
    }
  }

  cancel(id: number): void {
    this.#inflight.get(id)?.abort(new DOMException("the request was cancelled", "AbortError"));
    this.#parts.delete(id);
  }

  /** Sends the next part of a list response, or its end. */
  more(id: number): void {
    const waiting = this.#parts.get(id);
    if (!waiting) return;
    const json = waiting.parts.shift();
    if (json !== undefined) this.post({ type: "part", session: this.id, id, json });
    else {
      this.#parts.delete(id);
      this.post({ type: "response", session: this.id, id, ok: true, json: waiting.final });
    }
  }

  ack(watchId: number, count: number): void {
    this.#runtime?.watches.ack(watchId, count);
  }

  fence(until: number): void {
    this.#runtime?.fence(until);
  }

  /** Aborts every request and stops the runtime; nothing more is sent for this session. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const abort of this.#inflight.values()) {
      abort.abort(new DOMException("the session was closed", "AbortError"));
    }
    this.#inflight.clear();
    this.#parts.clear();
    this.#deadlines.stop();
    clearTimeout(this.#statsQueued);
    this.#runtime?.close();
    this.#runtime = undefined;
    this.#operations = undefined;
  }
}

const sessions = new Map<number, Session>();
const statsTimer = setInterval(() => {
  for (const session of sessions.values()) session.reportStats();
}, STATS_INTERVAL_MS);
Deno.unrefTimer(statsTimer);

// Started by the first session that reports pressure (none does when the cache does not pool):
// a thousand dedicated workers need not wake every second.
let pressureTimer: ReturnType<typeof setInterval> | undefined;
function assessPressure(): void {
  if (pressureTimer !== undefined) return;
  pressureTimer = setInterval(() => {
    for (const session of sessions.values()) session.reportPressure();
  }, PRESSURE_INTERVAL_MS);
  Deno.unrefTimer(pressureTimer);
}

function session(id: number): Session {
  let found = sessions.get(id);
  if (!found) sessions.set(id, found = new Session(id));
  return found;
}

function receive(message: MainMessage): void {
  switch (message.type) {
    case "batch":
      for (const inner of message.messages) receive(inner);
      break;
    case "cancel":
      sessions.get(message.session)?.cancel(message.id);
      break;
    case "more":
      sessions.get(message.session)?.more(message.id);
      break;
    case "request":
      void session(message.session).handle(message);
      break;
    case "ack":
      sessions.get(message.session)?.ack(message.watchId, message.count);
      break;
    case "fence":
      sessions.get(message.session)?.fence(message.until);
      break;
    case "listGranted":
      sessions.get(message.session)?.granted(message.kind);
      break;
    case "close":
      sessions.get(message.session)?.close();
      sessions.delete(message.session);
      break;
    case "ping":
      self.postMessage({ type: "pong", id: message.id } satisfies WorkerMessage);
      break;
  }
}

self.onmessage = (event: MessageEvent<MainMessage>) => receive(event.data);
self.postMessage({ type: "ready", running } satisfies WorkerMessage);

// An uncaught error would end the worker and every session in it: blame the session that ran last,
// close it, and go on serving the others. (Blame is a best guess: a timer a session armed may fire
// after another session ran.)
self.addEventListener("error", (event) => {
  event.preventDefault();
  const blamed = Atomics.load(running, 0);
  const culprit = blamed === NO_SESSION ? undefined : blamed;
  if (culprit !== undefined) {
    sessions.get(culprit)?.close();
    sessions.delete(culprit);
  }
  outbox.post({ type: "crash", session: culprit, message: describe(event.error ?? event.message) });
  outbox.flush();
});

// A stray rejection must not take the worker down (and with it, unhandled, the whole process).
self.addEventListener("unhandledrejection", (event) => {
  event.preventDefault();
  const blamed = Atomics.load(running, 0);
  outbox.post({
    type: "log",
    session: blamed,
    level: "error",
    message: "Unhandled rejection in worker",
    properties: { error: describe(event.reason) },
  });
});
