/**
 * The cluster sources of a cache (main thread only): one home for "a source". Made and checked here
 * (`getClusterSource`), told after each reconcile what happened to a cluster (Cluster API's
 * `shouldSendEvent`, see `source_events.ts`), and forgotten with their cluster. The real cache and
 * the fake one in `./testing` both use it, so they cannot drift.
 *
 * @module
 */

import type { Logger } from "@logtape/logtape";
import { describeError } from "../../shared/errors.ts";
import type { KubeObject, ObjectKey } from "../../shared/kube_object.ts";
import { parseClusterKey } from "../management/cluster_key.ts";
import {
  type ClusterEvent,
  clusterKeyOf,
  ClusterSource,
  type ClusterSourceOptions,
} from "./cluster_source.ts";
import { shouldSendEvent, type Transition } from "./source_events.ts";

/** What a source is told of a cluster after a reconcile. */
export interface ClusterState {
  /** The current connection's id (`undefined`: not connected). */
  connectionId: number | undefined;
  /** When a probe last succeeded (0: never). */
  lastProbeSuccessTime: number;
  /** Kinds whose informers fail, and since when (epoch ms). */
  failingKinds: readonly { kind: string; since: number }[];
}

/** A cluster source and what it was told. */
interface SourceEntry {
  source: ClusterSource<unknown>;
  mapFn: (cluster: KubeObject) => unknown[];
  /** The connection (id) of each cluster this source was last told about. */
  announced: Map<string, number>;
}

/** Every cluster source, in creation order. */
export class SourceRegistry {
  readonly #log: Logger;
  readonly #connected: () => Iterable<[key: string, cluster: KubeObject, state: ClusterState]>;
  readonly #entries: SourceEntry[] = [];
  #closed = false;

  /** @param connected The clusters connected now: a new source hears `connect` of each at once. */
  constructor(
    log: Logger,
    connected: () => Iterable<[key: string, cluster: KubeObject, state: ClusterState]>,
  ) {
    this.#log = log;
    this.#connected = connected;
  }

  /**
   * A new source (`getClusterSource`): its arguments checked, then registered. Clusters connected
   * already get their `connect` at once; no other would come. After
   * {@linkcode SourceRegistry.close} the source is closed at once.
   *
   * @throws {TypeError} For an empty controller name or a `mapFn` that is not a function.
   * @throws {RangeError} For a probe-failure duration that is not positive.
   */
  add<R>(
    controllerName: string,
    givenMapFn: ((cluster: KubeObject) => R[]) | undefined,
    options: ClusterSourceOptions = {},
  ): ClusterSource<R> {
    const mapFn = givenMapFn ?? (clusterKeyOf as unknown as (cluster: KubeObject) => R[]);
    if (typeof controllerName !== "string" || controllerName === "") {
      throw new TypeError("controllerName cannot be empty");
    }
    if (typeof mapFn !== "function") throw new TypeError("mapFn must be a function");
    for (const name of ["watchForProbeFailure", "watchForKindFailure"] as const) {
      for (const d of options?.[name] ?? []) {
        if (typeof d !== "number" || !Number.isFinite(d) || d <= 0) {
          throw new RangeError(`${name} durations must be positive, got ${String(d)}`);
        }
      }
    }
    const log = this.#log;
    const source: ClusterSource<R> = new ClusterSource<R>(controllerName, options, {
      onDrop: (dropped) =>
        log.warn("A cluster source's queue is full; dropped the oldest request", {
          controllerName,
          dropped,
        }),
      onSubscriberError: (error) =>
        log.error("A cluster source subscriber threw", {
          controllerName,
          error: describeError(error),
        }),
      // A closed source is forgotten: its mapFn no longer runs on every reconcile.
      onClose: () => {
        const at = this.#entries.findIndex((e) => e.source === source);
        if (at >= 0) this.#entries.splice(at, 1);
      },
    });
    if (this.#closed) {
      source.close(); // nothing will ever come: its iteration ends at once
      return source;
    }
    const entry: SourceEntry = {
      source: source as ClusterSource<unknown>,
      mapFn: mapFn as (cluster: KubeObject) => unknown[],
      announced: new Map(),
    };
    this.#entries.push(entry);
    const now = Date.now();
    for (const [key, cluster, state] of this.#connected()) {
      this.#deliver(entry, key, cluster, ["connect"], now, state);
    }
    return source;
  }

  /**
   * What a reconcile did to a cluster: each source gets at most one event, for the reasons
   * `shouldSendEvent` gives (a `connect` it already heard of for this connection is not repeated).
   */
  reconciled(
    key: string,
    cluster: KubeObject,
    state: ClusterState,
    transitions: readonly Transition[],
  ): void {
    const now = Date.now();
    for (const entry of [...this.#entries]) { // a subscriber may close a source
      // A source created after this connection was made has heard of it already.
      const heard = state.connectionId !== undefined &&
        entry.announced.get(key) === state.connectionId;
      const reasons = shouldSendEvent(
        {
          now,
          lastEventSent: entry.source.lastEventSent(key),
          lastProbeSuccess: state.lastProbeSuccessTime,
          transitions: heard ? transitions.filter((t) => t !== "connect") : transitions,
          failingKinds: state.failingKinds,
        },
        entry.source.probeFailureDurations,
        entry.source.kindFailureDurations,
      );
      if (reasons.length > 0) this.#deliver(entry, key, cluster, reasons, now, state);
    }
  }

  /** Tells every source `reasons` about a cluster, whatever they heard before (the fake's trigger). */
  tell(key: string, cluster: KubeObject, reasons: string[], state: ClusterState): void {
    const now = Date.now();
    for (const entry of [...this.#entries]) this.#deliver(entry, key, cluster, reasons, now, state);
  }

  #deliver(
    entry: SourceEntry,
    key: string,
    cluster: KubeObject,
    reasons: string[],
    now: number,
    state: ClusterState,
  ): void {
    const { source, mapFn } = entry;
    if (state.connectionId === undefined) entry.announced.delete(key);
    else entry.announced.set(key, state.connectionId);
    let requests: unknown[];
    try {
      requests = mapFn(cluster);
    } catch (error) {
      this.#log.error("A cluster source's mapFn threw", {
        cluster: key,
        controller: source.controllerName,
        error: describeError(error),
      });
      return;
    }
    const event: ClusterEvent = {
      cluster: parseClusterKey(key) as ObjectKey,
      reasons,
      connected: state.connectionId !== undefined,
      time: now,
    };
    this.#log.debug("Sending cluster event", {
      cluster: key,
      controller: source.controllerName,
      reasons,
    });
    source.deliver(key, Array.isArray(requests) ? requests : [], event);
  }

  /** Forgets a deleted cluster (no event: Cluster API sends none). */
  forget(key: string): void {
    for (const { source, announced } of this.#entries) {
      source.forget(key);
      announced.delete(key);
    }
  }

  /** Closes every source (their iterators end); sources made later are closed at once. */
  close(): void {
    this.#closed = true;
    for (const { source } of [...this.#entries]) source.close();
  }
}
