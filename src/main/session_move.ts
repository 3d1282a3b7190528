/**
 * Moving a connected cluster to another worker, make-before-break (main thread only): the new
 * session starts the informers the old one runs and syncs them while the old one serves; then it
 * takes over, and each watch is handed over so its handler is told exactly what changed in
 * between, nothing twice and nothing missed; then the old session ends once its calls are answered.
 *
 * ```
 * new: warm(kinds) ─ synced ─ adopt ─┬ watch(handover) → snapshot ────────────┬ resume(state) → live
 * old: serving ───────────────────── └─────────── unwatch(snapshot) → state ──┘ drain, terminate
 * ```
 *
 * @module
 */

import type { KindRef } from "../shared/kube_object.ts";
import type { PushdownFilters } from "../shared/protocol.ts";
import type { WorkerHandle } from "./worker_handle.ts";

/** A watch as the move sees it. */
export interface MovingWatch {
  readonly watchId: number;
  readonly kind: KindRef;
  readonly filters: PushdownFilters;
  /** The session serving it (updated by the move). */
  worker: WorkerHandle;
  /** Whether its handler is behind (the new session then holds its deltas too). */
  readonly paused: boolean;
  /** Whether it has synced (its handler has been told of the objects that existed). */
  isSynced: boolean;
  /** Starts it afresh on a session (a watch that had not synced when its cluster moved). */
  start(worker: WorkerHandle): void;
}

/** Timeouts of a move. */
export interface MoveTimeouts {
  /** For a call that reads or syncs informers. */
  syncMs: number;
  /** For quick calls. */
  callMs: number;
}

const operation = "error moving the cluster to another worker";

/**
 * Starts the kinds the old session's informers run in the new one and waits for them to sync and
 * to reach the resourceVersions the old session serves, so reads never go back in time when the new
 * session takes over. Twice: the old session went on while the new one synced, and the second
 * round, with both nearly level, takes moments. `signal` abandons the move (the cluster
 * disconnected, the cache closed).
 */
export async function warmUp(
  from: WorkerHandle,
  to: WorkerHandle,
  timeouts: MoveTimeouts,
  signal: AbortSignal,
): Promise<void> {
  for (let round = 0; round < 2; round++) {
    const kinds = await from.call({ op: "kinds" }, {
      timeoutMs: timeouts.callMs,
      operation,
      signal,
    });
    await to.call({ op: "warm", kinds }, { timeoutMs: timeouts.syncMs, operation, signal });
  }
}

/**
 * Hands one watch from its session to `to`. When the handover fails (a session stopped answering),
 * the watch starts afresh on `to`: its handler may then be told of objects again, but misses none.
 *
 * @returns Whether the handover was exact.
 */
export async function handOver(
  watch: MovingWatch,
  to: WorkerHandle,
  timeouts: MoveTimeouts,
): Promise<boolean> {
  const from = watch.worker;
  const { watchId, kind, filters } = watch;
  try {
    const snapshot = await to.call(
      { op: "watch", watchId, kind, filters, handover: true },
      { timeoutMs: timeouts.syncMs, operation },
    );
    const state = await from.call(
      { op: "unwatch", watchId, handover: snapshot ?? [] },
      { timeoutMs: timeouts.callMs, operation },
    );
    if (watch.paused) to.flow(watchId, true);
    watch.worker = to;
    await to.call(
      { op: "resume", watchId, state: state ?? { seen: [], objects: [] } },
      { timeoutMs: timeouts.callMs, operation },
    );
    return true;
  } catch {
    watch.worker = to;
    void from.call({ op: "unwatch", watchId }, { timeoutMs: timeouts.callMs, operation })
      .catch(() => {});
    await to.call({ op: "unwatch", watchId }, { timeoutMs: timeouts.callMs, operation })
      .catch(() => {});
    await to.call({ op: "watch", watchId, kind, filters }, {
      timeoutMs: timeouts.syncMs,
      operation,
    })
      .catch(() => {});
    return false;
  }
}
