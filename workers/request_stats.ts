/**
 * Worker: counts of requests to the API server and their latency, kept in the worker and reported
 * to the main thread as deltas (a message per request would cost more than the request).
 *
 * @module
 */

import { REQUEST_LATENCY_BUCKETS, type WorkerStats } from "../src/shared/protocol.ts";

/** Request counters since the last {@linkcode RequestStats.take}. */
export class RequestStats {
  readonly #counts = new Map<string, { method: string; code: string; count: number }>();
  readonly #retries = new Map<string, { method: string; code: string; count: number }>();
  readonly #latency = new Map<string, { verb: string; counts: number[]; sum: number }>();

  /** Records one request: its HTTP method, status code (or `<error>`) and duration. */
  record(verb: string, code: string, seconds: number): void {
    const id = `${verb} ${code}`;
    const count = this.#counts.get(id);
    if (count) count.count++;
    else this.#counts.set(id, { method: verb, code, count: 1 });
    let latency = this.#latency.get(verb);
    if (!latency) {
      latency = { verb, counts: new Array(REQUEST_LATENCY_BUCKETS.length + 1).fill(0), sum: 0 };
      this.#latency.set(verb, latency);
    }
    const bucket = REQUEST_LATENCY_BUCKETS.findIndex((bound) => seconds <= bound);
    latency.counts[bucket < 0 ? REQUEST_LATENCY_BUCKETS.length : bucket]!++;
    latency.sum += seconds;
  }

  /** Records a request sent again because the server said when (`Retry-After`). */
  retried(method: string, code: string): void {
    const id = `${method} ${code}`;
    const count = this.#retries.get(id);
    if (count) count.count++;
    else this.#retries.set(id, { method, code, count: 1 });
  }

  /** The counts since the last call, and starts over. */
  take(): Pick<WorkerStats, "requests" | "latency" | "retries"> {
    const taken = {
      requests: [...this.#counts.values()],
      latency: [...this.#latency.values()],
      retries: [...this.#retries.values()],
    };
    this.#counts.clear();
    this.#latency.clear();
    this.#retries.clear();
    return taken;
  }
}
