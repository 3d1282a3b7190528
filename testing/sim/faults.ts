/**
 * The simulated API server's fault switchboard: which faults there are, their defaults, and the
 * injected error answers.
 *
 * @module
 */

import { errors } from "./status.ts";

/**
 * Faults that stay on until changed.
 *
 * @example A slow, flaky API server that refuses Secrets
 * ```ts
 * import assert from "node:assert/strict";
 * import { type FaultSettings, SimulatedApiServer } from "@fleetkit/clustercache/testing";
 *
 * await using server = await SimulatedApiServer.start({ name: "flaky" });
 * const faults: Partial<FaultSettings> = {
 *   latencyMs: 300,
 *   errorRate: { rate: 0.1, codes: [429, 503], retryAfterSeconds: 1 },
 *   forbiddenKinds: ["secrets"],
 * };
 * server.setFaults(faults);
 * assert.deepEqual(server.faults.forbiddenKinds, ["secrets"]);
 * await server.clearFaults();
 * assert.equal(server.faults.latencyMs, 0);
 * ```
 */
export interface FaultSettings {
  /** Delay before response headers, in ms. */
  latencyMs: number;
  /** Send non-watch response bodies in chunks of `chunkBytes` every `intervalMs`. */
  slowBody: { chunkBytes: number; intervalMs: number } | null;
  /** Answer this fraction of requests with one of `codes` (429 and 503 carry Retry-After). */
  errorRate: { rate: number; codes: number[]; retryAfterSeconds: number } | null;
  /** Watch streams stay open but never write again (no events, no bookmarks, no close). */
  silenceWatches: boolean;
  /** Watch streams carry a line that is not JSON before each batch of events. */
  garbleWatchLines: boolean;
  /** Non-watch answers are an HTML error page with status 200 (a broken proxy in the way). */
  garbleBodies: boolean;
  /** Kinds answered with 403, as `group/plural` (`pods`, `apps/deployments`). */
  forbiddenKinds: string[];
  /** Kinds gone from discovery and answered with 404. */
  removedKinds: string[];
  /**
   * Watch events go out this long after the write, in order (kube-apiserver's watch cache trails
   * etcd): a reconcile that writes and reads its cache back at once does not see its write yet.
   */
  watchLagMs: number;
}

/** No fault. */
export const DEFAULT_FAULTS: FaultSettings = {
  latencyMs: 0,
  slowBody: null,
  errorRate: null,
  silenceWatches: false,
  garbleWatchLines: false,
  garbleBodies: false,
  forbiddenKinds: [],
  removedKinds: [],
  watchLagMs: 0,
};

/** Throws the error an `errorRate` fault picks for this request, if any. */
export function injectError(faults: FaultSettings): void {
  const rate = faults.errorRate;
  if (!rate || rate.codes.length === 0 || Math.random() >= rate.rate) return;
  const code = rate.codes[Math.floor(Math.random() * rate.codes.length)]!;
  switch (code) {
    case 401:
      throw errors.unauthorized();
    case 403:
      throw errors.forbidden("system:anonymous", "get", "", "");
    case 429:
      throw errors.tooManyRequests(rate.retryAfterSeconds);
    case 503:
      throw errors.serviceUnavailable(rate.retryAfterSeconds);
    default:
      throw errors.internalError(`injected failure (${code})`);
  }
}
