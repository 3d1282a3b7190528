/**
 * Moving connected clusters between pooled workers and workers of their own (main thread only):
 * when a cluster's placement (`placement.ts`) differs from where its session runs, it moves,
 * make-before-break (`session_move.ts`): its cached reads and watches go on without a gap, a lost
 * or a repeated event. A move that cannot be made leaves the cluster where it is, and is tried again
 * later.
 *
 * @module
 */

import type { Logger } from "@logtape/logtape";
import type { PressureReport } from "../../shared/protocol.ts";
import type { ClusterAccessor, ConnectContext } from "./accessor.ts";
import type { ClusterHistory } from "./cluster_history.ts";
import type { ClusterCacheMetrics } from "../metrics/metrics.ts";
import type { ResolvedOptions } from "../options.ts";
import { catchUp, handOver, warmUp } from "./session_move.ts";
import { unwatchQuietly, type WatchRegistry } from "../watches/watch_registry.ts";
import type { Placement } from "../sessions/session.ts";

/** What moves need of the reconciler. */
export interface MovesContext {
  options: Pick<ResolvedOptions, "client" | "initialSyncTimeoutMs" | "workers">;
  log: Logger;
  history: ClusterHistory;
  metrics: ClusterCacheMetrics;
  watches: WatchRegistry;
  connectContext(key: string, accessor: ClusterAccessor): ConnectContext;
  /** With sharding: until when (epoch ms) this replica may write to the cluster. */
  writableUntil(key: string): number | undefined;
  /** Aborted when the cache closes. */
  signal: AbortSignal;
}

/** The moves under way, by cluster. */
export class Moves {
  readonly #context: MovesContext;
  /** Aborting `abandon` ends a move soon after. */
  readonly #moving = new Map<ClusterAccessor, { abandon: AbortController; done: Promise<void> }>();

  constructor(context: MovesContext) {
    this.#context = context;
  }

  /** A pooled cluster's load is too much for its neighbours, or a promoted one calmed down. */
  pressure(key: string, accessor: ClusterAccessor, pressure: PressureReport): void {
    if (this.#context.options.workers.mode !== "pooled" || this.#context.signal.aborted) return;
    accessor.placement.report(pressure, Date.now());
    this.place(key, accessor);
  }

  /**
   * Moves a connected cluster whose session runs elsewhere than where it should, unless it is
   * moving already or its last move failed too lately: a wish that came during another move, or a
   * move that failed, is acted on here, at the next reconcile.
   */
  place(key: string, accessor: ClusterAccessor): void {
    const { options, signal } = this.#context;
    const session = accessor.connection?.session;
    const mode = options.workers.mode;
    if (mode !== "pooled" || signal.aborted || !session?.alive || this.#moving.has(accessor)) {
      return;
    }
    const now = Date.now();
    if (now < accessor.placement.notBefore) return;
    const wanted = accessor.placement.wanted(mode, options.workers.pressure.calmMs, now);
    if (wanted === session.placement) return;
    this.#start(key, accessor, wanted, accessor.placement.reason ?? "it calmed down");
  }

  /** Ends a cluster's move (it disconnected): its new worker would outlive the connection. */
  abandon(accessor: ClusterAccessor): void {
    this.#moving.get(accessor)?.abandon.abort();
  }

  /** Resolves once every move has ended (abandoned ones end their workers first). */
  async settled(): Promise<void> {
    await Promise.all([...this.#moving.values()].map((move) => move.done));
  }

  #start(key: string, accessor: ClusterAccessor, placement: Placement, why: string): void {
    const abandon = new AbortController();
    const signal = AbortSignal.any([this.#context.signal, abandon.signal]);
    const done = this.#move(key, accessor, placement, why, signal)
      .catch((error) => {
        this.#context.log.error("Moving the cluster failed", {
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
    const { options, log, metrics, watches } = this.#context;
    const started = performance.now();
    const timeouts = {
      syncMs: options.initialSyncTimeoutMs + options.client.timeoutMs,
      callMs: options.client.timeoutMs,
    };
    const old = accessor.connection;
    if (!old) return;
    const tokenBefore = old.target.token;
    log.info(
      placement === "dedicated"
        ? "Moving a cluster to a worker of its own"
        : "Moving a calm cluster back into the pool",
      { cluster: key, reason: why },
    );
    let next;
    try {
      next = await accessor.prepare(
        { ...this.#context.connectContext(key, accessor), signal },
        placement,
      );
      await warmUp(old.session, next.session, timeouts, signal);
    } catch (error) {
      next?.session.terminate("the move was abandoned");
      accessor.placement.failed(Date.now());
      this.#context.history.record(
        key,
        "move-failed",
        `a move to a ${placement} worker failed: ${(error as Error).message}`,
      );
      log.warn("Moving the cluster failed; it stays where it is for now", {
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
    const startedWith = next.target.token;
    accessor.adopt(next); // the connection's record (its target) is the old one's from now on
    accessor.placement.moved(placement);
    const writableUntil = this.#context.writableUntil(key);
    if (writableUntil !== undefined) next.session.fence(writableUntil);
    const rotated = old.target.token !== tokenBefore;
    if (rotated && startedWith !== old.target.token) {
      // The token was rotated into the old session while this one started: the new worker takes
      // the one its adopted record holds (if it had read a newer one, the next reconcile sees the
      // Secret moved on and applies that).
      void next.session.call({ op: "token", token: old.target.token ?? "" }, {
        timeoutMs: timeouts.callMs,
        operation: "error updating the bearer token",
      }).catch(() => {});
    }
    await catchUp(old.session, next.session, timeouts);
    const moving = watches.servedBy(old.session);
    let exact = 0;
    for (const watch of moving) {
      if (!watches.active(watch)) continue; // stopped meanwhile
      if (!watch.subscribed) {
        // Its handler has heard nothing yet: the new session starts it afresh.
        void unwatchQuietly(old.session, watch.watchId, timeouts.callMs);
        watch.start(next.session);
        exact++;
      } else if (await handOver(watch, next.session, timeouts)) exact++;
      if (!watches.active(watch)) {
        // Stopped while it was handed over: its stop reached the old session only.
        void unwatchQuietly(next.session, watch.watchId, timeouts.callMs);
      }
    }
    metrics.moved(placement === "dedicated" ? "promote" : "demote");
    metrics.placement(accessor.key, placement === "dedicated");
    this.#context.history.record(key, "moved", `moved to a ${placement} worker: ${why}`);
    log.info("Moved the cluster", {
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
}
