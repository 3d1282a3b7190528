/**
 * Moving a connected cluster to another worker, make-before-break (main thread only): the new
 * session starts the informers the old one runs and syncs them while the old one serves; then it
 * takes over, and each watch is handed over so its handler is told exactly what changed in
 * between, nothing twice and nothing missed; then the old session ends once its calls are answered.
 *
 * Reads never go back in time: the new session warms up until it has reached the resourceVersions
 * the old one serves, then holds reads; once adopted, it asks the old session where it ended (every
 * read that session answered was at or before that) and answers reads again only from there on.
 *
 * ```
 * new: warm(kinds@rv)… ─ hold ─ adopt ─ warm(kinds@final rv, release) ─┬ watch(handover) → snapshot ─┬ resume(state)
 * old: serving ──────────────────────── kinds → final rv ──────────────┴── unwatch(snapshot) → state ┘ drain, end
 * ```
 *
 * @module
 */

import type { InformerProgress } from "../../shared/protocol.ts";
import { WATCH_WINDOW } from "../watches/watch_dispatch.ts";
import { type MovingWatch, unwatchQuietly } from "../watches/watch_registry.ts";
import type { Session } from "../sessions/session.ts";

/** Timeouts of a move. */
export interface MoveTimeouts {
  /** For a call that reads or syncs informers. */
  syncMs: number;
  /** For quick calls. */
  callMs: number;
}

const operation = "error moving the cluster to another worker";

/** Rounds of warming up after which the new session takes over even if the old one is still ahead. */
const MAX_WARM_ROUNDS = 10;

/**
 * Starts the kinds the old session's informers run in the new one and waits for them to sync and
 * to reach the resourceVersions the old session serves, round after round (the old session goes on
 * meanwhile) until a round finds them level; then the new session holds its reads (see
 * {@linkcode catchUp}). `signal` abandons the move (the cluster disconnected, the cache closed).
 */
export async function warmUp(
  from: Session,
  to: Session,
  timeouts: MoveTimeouts,
  signal: AbortSignal,
): Promise<void> {
  for (let round = 1;; round++) {
    const kinds = await from.call({ op: "kinds" }, {
      timeoutMs: timeouts.callMs,
      operation,
      signal,
    });
    const level = await to.call({ op: "warm", kinds }, {
      timeoutMs: timeouts.syncMs,
      operation,
      signal,
    });
    if (level || round >= MAX_WARM_ROUNDS) break;
  }
  await to.call({ op: "hold", timeoutMs: timeouts.syncMs }, {
    timeoutMs: timeouts.callMs,
    operation,
    signal,
  });
}

/**
 * After the new session was adopted: asks the old one where its informers ended (it answers after
 * every read sent to it before, each at or before that point) and lets the new session answer
 * reads once it is there. Never throws: a session that fails to answer leaves the hold to expire.
 */
export async function catchUp(
  from: Session,
  to: Session,
  timeouts: MoveTimeouts,
): Promise<void> {
  let kinds: InformerProgress[] = [];
  try {
    kinds = await from.call({ op: "kinds" }, { timeoutMs: timeouts.callMs, operation });
  } catch { /* the old session is gone: nothing it answers from now on */ }
  await to.call({ op: "warm", kinds, release: true }, { timeoutMs: timeouts.syncMs, operation })
    .catch(() => {});
}

/**
 * Hands one watch from its session to `to`. When the handover fails (a session stopped answering),
 * the watch starts afresh on `to`, trying again while that fails ({@linkcode MovingWatch.rewatch}):
 * its handler may then be told of objects again, and is not told of those deleted meanwhile (what
 * it was told is lost with the old session).
 *
 * @returns Whether the handover was exact.
 */
export async function handOver(
  watch: MovingWatch,
  to: Session,
  timeouts: MoveTimeouts,
): Promise<boolean> {
  const from = watch.session;
  const { watchId, kind, filters } = watch;
  try {
    const snapshot = await to.call(
      { op: "watch", watchId, kind, filters, window: 0, handover: true },
      { timeoutMs: timeouts.syncMs, operation },
    );
    const state = await from.call(
      { op: "unwatch", watchId, handover: snapshot ?? [] },
      { timeoutMs: timeouts.callMs, operation },
    );
    watch.session = to;
    await to.call(
      {
        op: "resume",
        watchId,
        state: state ?? { seen: [], objects: [] },
        window: Math.max(0, WATCH_WINDOW - watch.outstanding),
      },
      { timeoutMs: timeouts.syncMs, operation },
    );
    return true;
  } catch {
    watch.session = to;
    void unwatchQuietly(from, watchId, timeouts.callMs);
    await unwatchQuietly(to, watchId, timeouts.callMs);
    await watch.rewatch(to);
    return false;
  }
}
