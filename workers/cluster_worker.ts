/**
 * The entry of a per-cluster worker: receives {@linkcode MainMessage}s, runs each request with its
 * deadline and cancellation against a {@linkcode ClusterRuntime}, and answers in batches.
 *
 * Nothing here (or below) imports `@kubernetes/client-node` at runtime: a worker would cost ~70 MB
 * with it instead of ~8 MB without.
 *
 * @module
 */

/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />

import { Deadlines } from "../src/deadlines.ts";
import { ClusterCacheError, toWireError } from "../src/errors.ts";
import { Outbox } from "../src/outbox.ts";
import {
  type MainMessage,
  PROTOCOL_VERSION,
  type WorkerMessage,
  type WorkerRequest,
} from "../src/protocol.ts";
import { ClusterRuntime } from "./cluster_runtime.ts";
import { describe } from "./reflector.ts";
import { workerLog } from "./worker_log.ts";

/** Merges a turn's JSON responses into one JSON array, so the main thread parses once. */
function mergeJsonResponses(queue: WorkerMessage[]): WorkerMessage[] {
  const ids: number[] = [];
  const parts: string[] = [];
  const rest: WorkerMessage[] = [];
  for (const message of queue) {
    if (message.type === "response" && message.ok && "json" in message) {
      ids.push(message.id);
      parts.push(message.json);
    } else {
      rest.push(message);
    }
  }
  if (ids.length < 2) return queue;
  rest.push({ type: "responses", ids, json: `[${parts.join(",")}]` });
  return rest;
}

const outbox = new Outbox<WorkerMessage>(
  (message) => self.postMessage(message),
  mergeJsonResponses,
);
const log = workerLog(outbox);
const inflight = new Map<number, AbortController>();
const deadlines = new Deadlines((id) =>
  inflight.get(id)?.abort(new DOMException("the request's deadline passed", "TimeoutError"))
);
let runtime: ClusterRuntime | undefined;

/** Stats go out at least this often, and with every probe. */
const STATS_INTERVAL_MS = 5_000;
let statsTimer: ReturnType<typeof setInterval> | undefined;

function reportStats(): void {
  if (!runtime) return;
  const stats = runtime.takeStats();
  if (stats.requests.length === 0 && stats.informers.length === 0) return;
  outbox.post({ type: "stats", stats });
}

function requireRuntime(): ClusterRuntime {
  if (!runtime) throw new ClusterCacheError("Internal", "the worker was not initialised");
  return runtime;
}

async function dispatch(request: WorkerRequest, signal: AbortSignal): Promise<unknown> {
  switch (request.op) {
    case "init": {
      if (runtime) throw new ClusterCacheError("Internal", "the worker is already initialised");
      const created = new ClusterRuntime(
        request.config,
        log,
        (watchId, event) =>
          outbox.postEvent(
            watchId,
            event,
            (id, events) => ({ type: "events", watchId: id, events }),
          ),
        (kind, event) => outbox.post({ type: "informer", kind, event }),
      );
      runtime = created;
      if (statsTimer === undefined) {
        statsTimer = setInterval(reportStats, STATS_INTERVAL_MS);
        Deno.unrefTimer(statsTimer);
      }
      try {
        return await created.init(signal);
      } catch (error) {
        created.close();
        runtime = undefined;
        throw error;
      }
    }
    case "probe": {
      const result = await requireRuntime().probe(request.timeoutMs, signal);
      reportStats(); // with every probe, so metrics are as fresh as the health check
      return result;
    }
    case "get":
      return await requireRuntime().get(request.kind, request.key, request.cached, signal);
    case "list":
      return await requireRuntime().list(request.kind, request.options, request.cached, signal);
    case "create":
      return await requireRuntime().create(request.object, request.options, signal);
    case "update":
      return await requireRuntime().update(request.object, request.options, signal);
    case "patch":
      return await requireRuntime().patch(
        request.kind,
        request.key,
        request.patch,
        request.options,
        signal,
      );
    case "delete":
      return await requireRuntime().delete(request.kind, request.key, request.options, signal);
    case "watch":
      return await requireRuntime().watch(request.watchId, request.kind, request.filters, signal);
    case "unwatch":
      return requireRuntime().unwatch(request.watchId);
    case "token":
      return requireRuntime().setToken(request.token);
    default:
      throw new ClusterCacheError(
        "Internal",
        `unknown operation ${(request as { op: string }).op}`,
      );
  }
}

async function handle(message: Extract<MainMessage, { type: "request" }>): Promise<void> {
  const { id } = message;
  if (message.v !== PROTOCOL_VERSION) {
    outbox.post({
      type: "response",
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
  inflight.set(id, abort);
  deadlines.set(id, message.deadline);
  try {
    const value = await dispatch(message.request, abort.signal);
    const op = message.request.op;
    if (op === "get" || op === "create" || op === "update" || op === "patch") {
      outbox.post({ type: "response", id, ok: true, json: JSON.stringify(value) });
    } else {
      outbox.post({ type: "response", id, ok: true, value });
    }
  } catch (error) {
    outbox.post({ type: "response", id, ok: false, error: toWireError(error) });
  } finally {
    deadlines.delete(id);
    inflight.delete(id);
  }
}

function receive(message: MainMessage): void {
  switch (message.type) {
    case "batch":
      for (const inner of message.messages) receive(inner);
      break;
    case "cancel":
      inflight.get(message.id)?.abort(new DOMException("the request was cancelled", "AbortError"));
      break;
    case "request":
      void handle(message);
      break;
    case "flow":
      runtime?.flow(message.watchId, message.paused);
      break;
  }
}

self.onmessage = (event: MessageEvent<MainMessage>) => receive(event.data);
self.postMessage({ type: "ready" } satisfies WorkerMessage);

// A stray rejection must not take the worker down (and with it, unhandled, the whole process).
self.addEventListener("unhandledrejection", (event) => {
  event.preventDefault();
  log.error("Unhandled rejection in worker", { error: describe(event.reason) });
});
