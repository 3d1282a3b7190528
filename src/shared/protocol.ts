/**
 * The message protocol between the main-thread facade and a cluster's worker. Both sides import this
 * module and nothing else defines a message.
 *
 * ```
 * main                                   worker (one per cluster, or a pool of clusters)
 *  | request {session, id, op: init}   ->  a new session: HTTP client, probe GET /, discover, pod check
 *  | <- response {id, ok, value|error}
 *  | request {op: get|list, cached}    ->  start the kind's informer, wait for sync, read the store
 *  | request {op: watch, watchId}      ->  subscribe; initial adds, then live events
 *  | <- events {watchId, events[]}         (batched per turn; at most a window not yet acked)
 *  | ack {watchId, count}              ->  the handler got through count more: send as many
 *  | cancel {id}                       ->  abort that request
 *  | fence {session, until}            ->  (sharding) writes allowed until then
 *  | <- log {level, message, properties}   (the main thread forwards to LogTape)
 *  | <- pressure {session, level}          (a session outgrows a shared worker, or calmed down)
 *  | <- crash {session}                    (an uncaught error, blamed on the session that ran last)
 *  | close {session}                   ->  end a session (stop its informers, abort its requests)
 * ```
 *
 * Every message but `ready` and `batch` names its session: one cluster's connection. A dedicated
 * worker holds one session; a pooled worker holds many, each with its own HTTP client, informers,
 * rate limiter and probe.
 *
 * Messages posted in one turn of an event loop travel together as a `batch`, so pipelined calls pay
 * the postMessage overhead once. Objects read from a cluster travel as JSON text, stringified on the
 * worker's core, because `JSON.parse` is the cheapest way to hand the main thread a fresh copy. Every request carries a deadline (epoch ms) after which the worker
 * aborts it; the main thread also gives up at the deadline, so an unresponsive worker can never hold
 * a caller. Errors travel as {@linkcode WireError} so their class survives.
 *
 * @module
 */

import type { CacheIndex, Transform } from "./cache_options.ts";
import type {
  DeleteOptions,
  ListOptions,
  Patch,
  WatchEvent,
  WriteOptions,
} from "./client_types.ts";
import type { WireError } from "./errors.ts";
import type { KindRef, KubeList, KubeObject, ObjectKey } from "./kube_object.ts";
import type { RESTConfig } from "./rest_config.ts";

/** Bumped on any incompatible change; both sides check it. */
export const PROTOCOL_VERSION = 1;

/**
 * The Pod this process runs as, for detecting that it runs inside a workload cluster (then the
 * cache talks to that cluster's API server at its in-cluster address).
 *
 * @example Setting it explicitly instead of from the environment
 * ```ts
 * import type { ClusterCacheOptions, PodIdentity } from "@fleetkit/clustercache";
 *
 * const self: PodIdentity = {
 *   namespace: "capi-system",
 *   name: "capi-controller-manager-7d9c",
 *   uid: "6c5a8f1e-3f0a-4c1e-9a59-0c0d6f2b7e11",
 * };
 * const options: Partial<ClusterCacheOptions> = { podIdentity: self };
 * ```
 */
export interface PodIdentity {
  /** The Pod's namespace (`POD_NAMESPACE`). */
  namespace: string;
  /** The Pod's name (`POD_NAME`). */
  name: string;
  /** The Pod's UID (`POD_UID`). */
  uid: string;
}

/** Everything a worker needs to serve one cluster. */
export interface WorkerConfig {
  /** The cluster (for logs). */
  cluster: ObjectKey;
  rest: RESTConfig;
  probeTimeoutMs: number;
  /** How long a kind's informer may take to sync before reads of it fail. */
  cacheSyncTimeoutMs: number;
  /** Timeout of watch requests (longer than the server-side `timeoutSeconds`). */
  watchRequestTimeoutMs: number;
  /** A watch that delivers nothing (no event, no bookmark) for this long is restarted. */
  watchIdleTimeoutMs: number;
  /** Page size of informer lists. */
  pageSize: number;
  /** Sync informers by streaming (WatchList) where the server supports it. */
  watchList: boolean;
  /** Retry backoff of informers. */
  backoff: { initialMs: number; maxMs: number };
  /** Largest response body accepted. */
  maxResponseBytes: number;
  /** CIDRs the server's addresses may not fall in (checked on every connection). */
  deniedNetworks: string[];
  cache: WorkerCacheConfig;
  /** When set, the worker checks whether this Pod runs in the cluster (Cluster API's rule). */
  podIdentity?: PodIdentity;
  /**
   * When this session's load is reported as too much for a shared worker, and as calm again (only
   * when the cache pools workers).
   */
  pressure?: PressureThresholds;
  /** Whether the session has a worker of its own (then it reports when it calms down). */
  dedicated: boolean;
  /**
   * Whether informers ask the main thread before they list (`listPermit`): the fleet-wide budget
   * of lists in flight that keeps a restart of 1,000 clusters from listing everything at once.
   */
  listBudget: boolean;
  /**
   * With sharding: until when (epoch ms) this replica owns the cluster. Writes are refused past it
   * (`NotOwner`) until a `fence` message moves it: a stalled main thread cannot keep writing to a
   * cluster another replica has taken over.
   */
  writableUntil?: number;
  /** Where the API server is from inside the cluster, used when that Pod is found. */
  inCluster?: { server: string; caPem: string };
}

/**
 * A session is under pressure (it would slow the neighbours of a shared worker) when, over the last
 * {@linkcode PressureThresholds.windowMs}, it holds more than `objects` cached objects, or applies
 * more than `eventsPerSecond` watch events a second, or keeps the worker's thread busy for more than
 * `busyRatio` of the time. It is calm when it has stayed under half of each for `calmMs`.
 */
export interface PressureThresholds {
  objects: number;
  eventsPerSecond: number;
  busyRatio: number;
  windowMs: number;
  calmMs: number;
}

/** What a session reports about its load. */
export interface PressureReport {
  level: "high" | "calm";
  /** What crossed its threshold (for logs), e.g. `objects 52000 > 20000`. */
  reason: string;
}

/** The cache options as the worker receives them (defaults applied). */
export interface WorkerCacheConfig {
  syncPeriodMs?: number;
  byObject: {
    kind: KindRef;
    labelSelector?: string;
    fieldSelector?: string;
    transform?: Transform;
  }[];
  indexes: CacheIndex[];
  defaultTransform?: Transform;
  /** Kinds always read live. */
  disableFor: KindRef[];
}

/** What `init` reports. */
export interface InitResult {
  /** The server the worker talks to (the in-cluster one when running on the workload cluster). */
  server: string;
  /** Whether this process runs as a Pod of this cluster. */
  runningOnWorkloadCluster: boolean;
}

/** Filters applied in the worker before events cross to the main thread. */
export interface PushdownFilters {
  labelSelector?: string;
  fieldSelector?: string;
  /** Pass updates only when `metadata.generation` changed. */
  generationChanged?: boolean;
  /** Pass updates only when `metadata.resourceVersion` changed (drops resyncs). */
  resourceVersionChanged?: boolean;
}

/** Options of live calls as they travel (signals stay on the main thread). */
export type WireListOptions = Omit<ListOptions, "signal">;
/** Write options as they travel. */
export type WireWriteOptions = Omit<WriteOptions, "signal">;
/** Delete options as they travel. */
export type WireDeleteOptions = Omit<DeleteOptions, "signal">;

/** Every operation: its request fields and its response. */
export interface Operations {
  init: { request: { config: WorkerConfig }; response: InitResult };
  /** Answers with the worker's V8 heap size (for metrics), or fails like the probe did. */
  probe: { request: { timeoutMs: number }; response: { heapUsedBytes: number } };
  get: { request: { kind: KindRef; key: ObjectKey; cached: boolean }; response: KubeObject };
  list: {
    request: { kind: KindRef; options: WireListOptions; cached: boolean };
    response: KubeList;
  };
  create: { request: { object: KubeObject; options: WireWriteOptions }; response: KubeObject };
  update: { request: { object: KubeObject; options: WireWriteOptions }; response: KubeObject };
  patch: {
    request: { kind: KindRef; key: ObjectKey; patch: Patch; options: WireWriteOptions };
    response: KubeObject;
  };
  /** Answers with the resourceVersion the server returned for the deletion (none for a Status). */
  delete: {
    request: { kind: KindRef; key: ObjectKey; options: WireDeleteOptions };
    response: { resourceVersion: string | undefined };
  };
  /**
   * Subscribes a watch, answering once its informer has synced; a `watchSynced` message follows its
   * last initial add (sent as the window allows). With `handover`, the subscription stays silent
   * and answers with what it would have sent as initial adds (`[storeKey, resourceVersion]`),
   * until `resume`.
   */
  watch: {
    request: {
      watchId: number;
      kind: KindRef;
      filters: PushdownFilters;
      /** Events it may send before the main thread acknowledges some (`ack`). */
      window: number;
      handover?: boolean;
    };
    response: HandoverSnapshot | null;
  };
  /**
   * Ends a watch. With `handover` (the new session's snapshot), answers with what its handler has
   * been sent (what it held back is not) and the objects the new session cannot know.
   */
  unwatch: {
    request: { watchId: number; handover?: HandoverSnapshot };
    response: HandoverState | null;
  };
  /**
   * Starts a handed-over watch once the session's informer has reached where the old one ended: the
   * difference from what the handler saw, then `watchSynced`, then live changes; at most `window`
   * events before an `ack`.
   */
  resume: { request: { watchId: number; state: HandoverState; window: number }; response: null };
  /** The kinds whose informers run (a moving cluster's new session starts the same ones). */
  kinds: { request: Record<never, never>; response: InformerProgress[] };
  /**
   * Starts these kinds' informers and waits for each to sync and to reach the given
   * resourceVersion (what the old session had: reads must not go back in time when the new one
   * takes over). Answers whether they were there already. `release` ends a `hold` once there.
   */
  warm: { request: { kinds: InformerProgress[]; release?: boolean }; response: boolean };
  /**
   * Holds cached reads until a `warm` with `release` (or `timeoutMs`): a session taking over from
   * another must not answer before it has reached what the other last answered.
   */
  hold: { request: { timeoutMs: number }; response: null };
  /** A rotated bearer token, for every request from now on ("" for none). */
  token: { request: { token: string }; response: null };
  /**
   * The cluster was disconnected and a reader asked for stale reads: informers stop talking to the
   * server and keep what they hold; cached reads of those kinds go on, other kinds are refused.
   */
  freeze: { request: Record<never, never>; response: null };
}

/** A kind's informer and the resourceVersion its store is at (none before it synced). */
export interface InformerProgress {
  kind: KindRef;
  resourceVersion?: string;
}

/** `[storeKey, resourceVersion]` of every object a watch passes, at one moment. */
export type HandoverSnapshot = [string, string][];

/**
 * What a watch's handler has seen when its old session lets go: every object as
 * `[storeKey, resourceVersion]`, and in full those the new session's snapshot lacks or holds at
 * another resourceVersion (they are the `oldObject` of updates and the object of deletes).
 */
export interface HandoverState {
  seen: HandoverSnapshot;
  objects: KubeObject[];
  /** Where the old session's informer was when it let go: the new one resumes from there on. */
  resourceVersion?: string;
}

/** An operation name. */
export type OpName = keyof Operations;
/** The request of one operation. */
export type RequestOf<O extends OpName> = { op: O } & Operations[O]["request"];
/** Any request. */
export type WorkerRequest = { [O in OpName]: RequestOf<O> }[OpName];
/** The response of one operation. */
export type ResponseOf<O extends OpName> = Operations[O]["response"];

/** Messages from the main thread to a worker. */
export type MainMessage =
  | {
    type: "request";
    v: typeof PROTOCOL_VERSION;
    session: number;
    id: number;
    deadline: number;
    request: WorkerRequest;
  }
  | { type: "cancel"; session: number; id: number }
  /**
   * Flow control of one watch: the main thread's handler got through `count` more events, so the
   * worker may send that many more. Until then it holds the watch's deltas, merged per object.
   */
  | { type: "ack"; session: number; watchId: number; count: number }
  /**
   * The main thread parsed a part of response `id` and takes the next one: big lists cross a part
   * at a time, so other answers reach the main thread between parts instead of waiting behind all.
   */
  | { type: "more"; session: number; id: number }
  /** A list the session asked to start (`listPermit`) may start now. */
  | { type: "listGranted"; session: number; kind: string }
  /** Ownership renewed (sharding): the session may write until `until` (epoch ms). */
  | { type: "fence"; session: number; until: number }
  /** Ends a session: its requests are aborted, its informers stopped. */
  | { type: "close"; session: number }
  /** Is the worker's thread free? Answered with `pong` at once when it is. */
  | { type: "ping"; id: number }
  | { type: "batch"; messages: MainMessage[] };

/** Log levels forwarded from workers. */
export type WorkerLogLevel = "debug" | "info" | "warning" | "error";

/** Messages from a worker to the main thread. */
export type WorkerMessage =
  | SessionMessage
  /**
   * The worker's modules are loaded: its start-up is over. `running` (shared memory) holds the
   * session whose code ran last: when the worker hangs, that is the session hanging it.
   */
  | { type: "ready"; running: Int32Array }
  /**
   * An uncaught error, blamed on the session whose code ran last (`undefined`: none had run). A
   * pooled worker has closed that session and goes on serving the others.
   */
  | { type: "crash"; session: number | undefined; message: string }
  | { type: "pong"; id: number }
  | { type: "batch"; messages: WorkerMessage[] };

/** Messages from a worker about one session. */
export type SessionMessage =
  | { type: "response"; session: number; id: number; ok: true; value: unknown }
  /** Objects travel as JSON text: parsing it costs the main thread less than deserialising a clone. */
  | { type: "response"; session: number; id: number; ok: true; json: string }
  /**
   * The next items of list response `id`, as a JSON array: a big list travels as parts of at most
   * `MAX_PART_BYTES`, one at a time (the main thread asks for the next with `more`), each parsed in
   * its own task on the main thread; the response has the last items.
   */
  | { type: "part"; session: number; id: number; json: string }
  /** Several small JSON responses of one turn, as one JSON array (one parse for all). */
  | { type: "responses"; session: number; ids: number[]; json: string }
  | { type: "response"; session: number; id: number; ok: false; error: WireError }
  | { type: "events"; session: number; watchId: number; events: WatchEvent[] }
  /**
   * The events of watch `watchId` sent before this one tell its handler of every object that
   * existed when it began (or, resumed after a move, of every change since).
   */
  | { type: "watchSynced"; session: number; watchId: number }
  | {
    type: "log";
    session: number;
    level: WorkerLogLevel;
    message: string;
    properties: Record<string, unknown>;
  }
  | { type: "informer"; session: number; kind: string; event: "list" | "watchRestart" | "error" }
  /** What changed since the last stats message: requests to the API server, informer progress. */
  | { type: "stats"; session: number; stats: WorkerStats }
  | { type: "pressure"; session: number; pressure: PressureReport }
  /**
   * An informer would list `kind` (about `objects` of them, when known); `urgent`: a read waits for
   * it. It waits for `listGranted`.
   */
  | { type: "listPermit"; session: number; kind: string; objects?: number; urgent: boolean }
  /** The list is over (synced, failed, or given up before it was granted). */
  | { type: "listDone"; session: number; kind: string };

/** Upper bounds (seconds) of the request latency histogram: client-go's `rest_client` buckets. */
export const REQUEST_LATENCY_BUCKETS = [
  0.005,
  0.025,
  0.1,
  0.25,
  0.5,
  1,
  2,
  4,
  8,
  15,
  30,
  60,
];

/** A worker's counters since its previous report. */
export interface WorkerStats {
  /** Requests by HTTP method and status code (`<error>` when no answer came). */
  requests: { method: string; code: string; count: number }[];
  /** Requests sent again after a 429 or 5xx with `Retry-After`, by method and the code that said so. */
  retries: { method: string; code: string; count: number }[];
  /**
   * Latency by HTTP method: per-bucket counts of {@linkcode REQUEST_LATENCY_BUCKETS}, then one for
   * slower requests, and the sum in seconds.
   */
  latency: { verb: string; counts: number[]; sum: number }[];
  /** Per informer whose state changed: relists since the last report, and where it is now. */
  informers: (InformerState & { relists: number })[];
}

/**
 * A kind's informer as its session sees it. A kind that fails (its watch forbidden, its aggregated
 * API down) is `failing` while the cluster and its other kinds stay healthy: "connected but partly
 * blind", said out loud.
 */
export interface InformerState {
  /** The kind, `apps/v1 Deployment`. */
  kind: string;
  /** `failing` since `failingSince`; otherwise `synced` once its first list completed. */
  phase: "syncing" | "synced" | "failing";
  /** Whether its first list completed (a failing kind may still serve what it synced before). */
  synced: boolean;
  /** The resourceVersion its store is at (none before it synced). */
  resourceVersion: string | undefined;
  /** Objects cached. */
  objects: number;
  /** Watch events applied so far (a rate between two reports says how busy the kind is). */
  events: number;
  /** When the server last answered for it (a list, an opened watch, an event, a bookmark); 0: never. */
  lastHeardAt: number;
  /** Since when its list and watch attempts have failed (epoch ms), while failing. */
  failingSince?: number | undefined;
  /** The last failure (a status reason or message from the server, never a credential). */
  lastError?: string | undefined;
  /**
   * While failing: whether the last failure was a refusal (forbidden, unauthorized, or the kind not
   * served), which retrying alone will not mend, unlike a timeout or an overloaded server.
   */
  refused?: boolean | undefined;
}

/** Canonical string of a kind, `apps/v1 Deployment`. */
export function kindKey(kind: KindRef): string {
  return `${kind.apiVersion} ${kind.kind}`;
}
