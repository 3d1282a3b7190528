/**
 * What a session does for each operation of the protocol (worker side), one line each. The table's
 * type is the protocol's own mapped type, so an operation left out, or an answer of the wrong
 * shape, does not compile. `init` is the session's own business: it makes the runtime this table
 * works on.
 *
 * @module
 */

import type { OpName, RequestOf, ResponseOf } from "../src/shared/protocol.ts";
import type { ClusterRuntime } from "./cluster_runtime.ts";

/** How one operation is served. */
export type Handler<O extends OpName> = (
  request: RequestOf<O>,
  signal: AbortSignal,
) => ResponseOf<O> | Promise<ResponseOf<O>>;

/** Every operation but `init`, and how it is served. */
export type OperationTable = { [O in Exclude<OpName, "init">]: Handler<O> };

/** The operations of one session's runtime. */
export function operations(s: ClusterRuntime): OperationTable {
  return {
    probe: (r, signal) => s.probe(r.timeoutMs, signal),
    get: (r, signal) =>
      s.cache.serves(r.kind, r.cached)
        ? s.cache.get(r.kind, r.key, signal)
        : s.live.get(r.kind, r.key, signal),
    list: (r, signal) =>
      s.cache.serves(r.kind, r.cached)
        ? s.cache.list(r.kind, r.options, signal)
        : s.live.list(r.kind, r.options, signal),
    create: (r, signal) => s.live.create(r.object, r.options, signal),
    update: (r, signal) => s.live.update(r.object, r.options, signal),
    patch: (r, signal) => s.live.patch(r.kind, r.key, r.patch, r.options, signal),
    delete: (r, signal) => s.live.delete(r.kind, r.key, r.options, signal),
    watch: (r, signal) =>
      s.watches.watch(r.watchId, r.kind, r.filters, r.window, r.handover === true, signal),
    unwatch: (r) => s.watches.unwatch(r.watchId, r.handover),
    resume: (r, signal) => s.watches.resume(r.watchId, r.state, r.window, signal),
    kinds: () => s.cache.kinds(),
    warm: (r, signal) => s.cache.warm(r.kinds, r.release === true, signal),
    hold: (r) => s.cache.hold(r.timeoutMs),
    token: (r) => s.setToken(r.token),
    freeze: () => s.cache.freeze(),
  };
}
