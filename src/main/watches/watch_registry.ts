/**
 * The watches added through the cache (main thread only): one home for "a watch". Each is named on
 * its connection (a name watched again is a no-op), served by one session at a time (a move hands
 * it to another), delivers through its {@linkcode WatchDispatch}, and ends with its connection.
 *
 * @module
 */

import type { WatchEvent } from "../../shared/client_types.ts";
import { ClusterCacheError, ClusterNotConnectedError, describeError } from "../../shared/errors.ts";
import {
  checkKind,
  type KindRef,
  type KubeObject,
  type ObjectKey,
} from "../../shared/kube_object.ts";
import type { PushdownFilters } from "../../shared/protocol.ts";
import { splitPredicates } from "../../shared/predicates.ts";
import type { WatchHandle, WatchInput } from "../cache_api.ts";
import type { Logger } from "@logtape/logtape";
import { Backoff, sleep } from "../../shared/backoff.ts";
import { WATCH_WINDOW, WatchDispatch } from "./watch_dispatch.ts";
import type { Session } from "../sessions/session.ts";

/** A watch as a move sees it (`reconcile/session_move.ts`). */
export interface MovingWatch {
  readonly watchId: number;
  readonly kind: KindRef;
  readonly filters: PushdownFilters;
  /** The session serving it (updated by the move). */
  session: Session;
  /**
   * Events its handler has been sent and not yet got through: the new session may send only the
   * rest of the window, so a handler that is behind stays within it across the move.
   */
  readonly outstanding: number;
  /**
   * Whether its session has subscribed it (it may have sent events): a move hands it over, rather
   * than start it afresh.
   */
  subscribed: boolean;
  /** Starts it afresh on a session (a watch its old session had not subscribed when it moved). */
  start(worker: Session): void;
  /**
   * Starts it afresh on `session` after a failed handover (its handler may be told of objects
   * again), and keeps trying with backoff while that fails, until it starts, ends or moves on: a
   * watch lives as long as its connection. Resolves after the first attempt.
   */
  rewatch(session: Session): Promise<void>;
}

/** A watch added through the cache. */
export interface WatchRegistration extends MovingWatch {
  /** The connection it was added on (the same across moves: its name lives there). */
  connectionId: number;
  /** The cluster (`namespace/name`). */
  cluster: string;
  dispatch: WatchDispatch;
  /**
   * Ends it for good: its handler hears nothing more and its handle's `done` resolves; a `synced`
   * still waiting resolves if it was stopped, and fails if its connection is gone or the cache
   * closed.
   */
  end(why: "stopped" | "disconnected" | "closed"): void;
  /** Its session sent every object it began with: `synced` resolves once the handler has them. */
  sentAll(): void;
}

/** A watch's input, checked: what its errors say, and its predicates split. */
export interface CheckedWatchInput {
  /** The prefix of its errors: `error creating watch <name> for <apiVersion> <kind>`. */
  operation: string;
  /** Predicates the worker applies (selectors). */
  pushdown: ReturnType<typeof splitPredicates>["pushdown"];
  /** Predicates run here, before the handler. */
  local: ((event: WatchEvent) => boolean)[];
}

/**
 * Checks a watch's input as Go's `Watch` does, in its order (the cache and its fake share it).
 *
 * @param connected Whether the cluster is connected now.
 * @throws {ClusterNotConnectedError} Naming the watch and the kind.
 * @throws {TypeError} For an empty name, a bad kind, handler or predicate.
 */
export function checkWatchInput<T extends KubeObject>(
  cluster: ObjectKey,
  input: WatchInput<T>,
  connected: boolean,
): CheckedWatchInput {
  checkKind(input?.kind);
  const operation =
    `error creating watch ${input.name} for ${input.kind.apiVersion} ${input.kind.kind}`;
  if (!connected) throw new ClusterNotConnectedError(operation, cluster);
  if (typeof input.name !== "string" || input.name === "") {
    throw new TypeError("watch name cannot be empty");
  }
  if (typeof input.handler !== "function") {
    throw new TypeError("watch handler must be a function");
  }
  const { pushdown, local } = splitPredicates(input.predicates);
  return { operation, pushdown, local: local as ((event: WatchEvent) => boolean)[] };
}

/**
 * Ends a watch in a session, best effort: a session that does not answer is ending, or its
 * worker is gone, and the watch with it.
 */
export function unwatchQuietly(
  session: Session,
  watchId: number,
  timeoutMs: number,
): Promise<void> {
  return session.call({ op: "unwatch", watchId }, {
    timeoutMs,
    operation: "error ending a watch",
  }).then(() => {}, () => {});
}

/** The connection a watch is added on: named by its id, served by its session. */
export interface WatchedConnection {
  readonly id: number;
  readonly session: Session;
}

/** A name watched on a connection: what a second `watch()` of it shares. */
interface Named {
  synced: Promise<void>;
  done: Promise<void>;
}

/** Timeouts of the watch calls. */
export interface WatchTimeouts {
  /** How long a watch may take to sync (the informer's sync timeout, and the way back). */
  syncMs: number;
  /** How long a quick call may take. */
  callMs: number;
}

/** Every watch added through the cache, by id and by name on its connection. */
export class WatchRegistry {
  readonly #timeouts: WatchTimeouts;
  readonly #log: Logger;
  readonly #byId = new Map<number, WatchRegistration>();
  readonly #names = new Map<number, Map<string, Named>>();
  #nextId = 1;

  constructor(timeouts: WatchTimeouts, log: Logger) {
    this.#timeouts = timeouts;
    this.#log = log;
  }

  /**
   * Adds a watch on `connection` (`undefined`: the cluster is not connected): Go's `Watch`. A name
   * already watched there registers nothing and shares the first one's `synced`.
   *
   * @throws {ClusterNotConnectedError} Naming the watch and the kind.
   * @throws {TypeError} For an empty name, a bad kind, handler or predicate.
   */
  add<T extends KubeObject>(
    cluster: ObjectKey,
    key: string,
    connection: WatchedConnection | undefined,
    input: WatchInput<T>,
  ): WatchHandle {
    const { operation, pushdown, local } = checkWatchInput(
      cluster,
      input,
      connection !== undefined,
    );
    if (!connection) throw new ClusterNotConnectedError(operation, cluster); // (for the compiler)
    let names = this.#names.get(connection.id);
    if (!names) this.#names.set(connection.id, names = new Map());
    const existing = names.get(input.name);
    // A name already watched is a no-op, but not a blind one: its sync (or failure) is shared.
    if (existing) {
      return { ...existing, stop: () => {}, [Symbol.dispose]: () => {} };
    }
    const watchId = this.#nextId++;
    const ended = Promise.withResolvers<void>();
    const life = new AbortController(); // ends its retries
    // Settled by the session serving the watch: its handler has finished the events it sent before
    // saying the watch synced. A watch moved to another worker is synced by its new session.
    const { promise: synced, resolve, reject } = Promise.withResolvers<void>();
    const log = this.#log;
    const registration: WatchRegistration = {
      watchId,
      kind: input.kind,
      filters: pushdown,
      session: connection.session,
      get outstanding() {
        return this.dispatch.outstanding;
      },
      connectionId: connection.id,
      cluster: key,
      subscribed: false,
      start: () => {},
      rewatch: () => Promise.resolve(),
      end: (why) => {
        life.abort();
        registration.dispatch.stop();
        ended.resolve();
        if (why === "stopped") resolve();
        else if (why === "disconnected") reject(new ClusterNotConnectedError(operation, cluster));
        else reject(new ClusterCacheError("Closed", `${operation}: the cache was closed`));
      },
      sentAll: () => registration.dispatch.whenHandled(resolve),
      dispatch: new WatchDispatch(
        input.handler as (event: WatchEvent) => void | Promise<void>,
        local,
        (error) =>
          log.error("A watch handler failed", {
            cluster: key,
            watch: input.name,
            error: describeError(error),
          }),
        (count) => registration.session.ack(watchId, count),
      ),
    };
    this.#byId.set(watchId, registration);
    // Subscribes it on `session`; the call's timeout covers the informer's sync, the handler then
    // takes its own time. Settles `subscribed` if the watch is still that session's.
    const subscribe = (session: Session, signal?: AbortSignal) => {
      registration.session = session;
      registration.subscribed = false;
      return session.call(
        {
          op: "watch",
          watchId,
          kind: input.kind,
          filters: pushdown,
          window: Math.max(0, WATCH_WINDOW - registration.dispatch.outstanding),
        },
        { timeoutMs: this.#timeouts.syncMs, ...(signal ? { signal } : {}), operation },
      ).then(() => {
        if (registration.session === session) registration.subscribed = true;
      });
    };
    registration.start = (session) => {
      subscribe(session, input.signal).catch((error) => {
        if (registration.session === session) reject(error);
      });
    };
    registration.start(connection.session);
    const named = { synced, done: ended.promise };
    names.set(input.name, named);
    let stopped = false;
    const stop = () => {
      if (stopped) return;
      stopped = true;
      if (names.get(input.name) === named) names.delete(input.name);
      this.#byId.delete(watchId);
      registration.end("stopped");
      if (registration.session.alive) {
        void unwatchQuietly(registration.session, watchId, this.#timeouts.callMs);
      }
    };
    // A failed sync unregisters the name, so the next watch() tries again. (This also handles the
    // rejection for callers that never await `synced`.)
    synced.catch(stop);
    registration.rewatch = (session) => {
      const serving = () =>
        this.#byId.get(watchId) === registration && registration.session === session &&
        session.alive;
      let failures = 0;
      // Not with the caller's signal: that one bounded the first sync, long ago.
      const attempt = () =>
        subscribe(session).then(() => true, (error: Error) => {
          if (serving()) {
            // Loud once; a kind the new worker cannot serve would say so every 30 s otherwise.
            log[failures++ === 0 ? "warn" : "debug"](
              "A watch could not start on its cluster's new worker; trying again",
              { cluster: key, watch: input.name, error: describeError(error) },
            );
          }
          return false;
        });
      const first = attempt();
      void first.then(async (started) => {
        const backoff = new Backoff(1_000, 30_000);
        while (!started && serving()) {
          // The failed call may have subscribed after all (answered too late): start clean.
          await unwatchQuietly(session, watchId, this.#timeouts.callMs);
          if (!await sleep(backoff.next(), life.signal) || !serving()) return;
          started = await attempt();
        }
      });
      return first.then(() => {});
    };
    return { synced, done: ended.promise, stop, [Symbol.dispose]: stop };
  }

  /** Events of a watch: delivered when they come from the session serving it (a move's old one does not). */
  deliver(watchId: number, events: WatchEvent[], from: Session): void {
    const registration = this.#byId.get(watchId);
    if (registration?.session !== from) return;
    registration.subscribed = true;
    registration.dispatch.push(events);
  }

  /**
   * A watch's session sent every object it began with: its `synced` resolves once its handler has
   * finished them (a move's old session is not heard).
   */
  sentAll(watchId: number, from: Session): void {
    const registration = this.#byId.get(watchId);
    if (registration?.session !== from) return;
    registration.subscribed = true;
    registration.sentAll();
  }

  /** The watches a session serves (a move hands them over). */
  servedBy(session: Session): WatchRegistration[] {
    return [...this.#byId.values()].filter((w) => w.session === session);
  }

  /** Whether a watch is still registered (not stopped meanwhile). */
  active(registration: WatchRegistration): boolean {
    return this.#byId.get(registration.watchId) === registration;
  }

  /** Names watched on a connection. */
  names(connectionId: number): string[] {
    return [...(this.#names.get(connectionId)?.keys() ?? [])];
  }

  /** Ends the watches of a connection (it is gone): a reconnect watches again. */
  forget(connectionId: number | undefined): void {
    if (connectionId === undefined) return;
    this.#names.delete(connectionId);
    for (const [watchId, registration] of this.#byId) {
      if (registration.connectionId !== connectionId) continue;
      this.#byId.delete(watchId);
      registration.end("disconnected");
    }
  }

  /** Ends every watch (the cache closes). */
  close(): void {
    for (const registration of this.#byId.values()) registration.end("closed");
    this.#byId.clear();
    this.#names.clear();
  }
}
