/**
 * Worker: counts of requests to the API server and their latency, kept in the worker and reported
 * to the main thread as deltas (a message per request would cost more than the request).
 *
 * @module
 */

import { REQUEST_LATENCY_BUCKETS, type WorkerStats } from "../src/shared/protocol.ts";

/** Request counters since the last {@linkcode RequestStats.take}. */
export class RequestStats {
  readonly #counts = new Map<string, { verb: string; code: string; count: number }>();
  readonly #latency = new Map<string, { verb: string; counts: number[]; sum: number }>();

  /** Records one request: its HTTP method, status code (or `<error>`) and duration. */
  record(verb: string, code: string, seconds: number): void {
    const id = `${verb} ${code}`;
    const count = this.#counts.get(id);
    if (count) count.count++;
    else this.#counts.set(id, { verb, code, count: 1 });
    let latency = this.#latency.get(verb);
    if (!latency) {
      latency = { verb, counts: new Array(REQUEST_LATENCY_BUCKETS.length + 1).fill(0), sum: 0 };
      this.#latency.set(verb, latency);
    }
    const bucket = REQUEST_LATENCY_BUCKETS.findIndex((bound) => seconds <= bound);
    latency.counts[bucket < 0 ? REQUEST_LATENCY_BUCKETS.length : bucket]!++;
    latency.sum += seconds;
  }

  /** The counts since the last call, and starts over. */
  take(): Pick<WorkerStats, "requests" | "latency"> {
    const taken = { requests: [...this.#counts.values()], latency: [...this.#latency.values()] };
    this.#counts.clear();
    this.#latency.clear();
    return taken;
  }
}
