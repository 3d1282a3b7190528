/**
 * Read-your-writes for reconciles (main thread only), as Kubernetes' own controllers do it since
 * 1.36 (KEP-5647) and Cluster API copies it: a reconcile's writes are remembered by request; before
 * the request's next run, each cluster's cache of each written kind must have reached the newest
 * resourceVersion written, else the run waits (the controller requeues it shortly). Versions that
 * cannot be compared, and caches that cannot say, let it run (fail open); so does a wait past the
 * bound, said in a log line.
 *
 * @module
 */

import { compareResourceVersions } from "../../shared/resource_version.ts";
import { kindKey } from "../../shared/protocol.ts";
import type { CacheWrite } from "../cache_writes.ts";

/** Whether a request may run now. */
export type Readiness =
  | { ready: true; gaveUp?: undefined }
  /** A cache is behind a write of the request's last run: requeue shortly. */
  | { ready: false; kind: string }
  /** A cache stayed behind past the bound: it runs anyway (say so). */
  | { ready: true; gaveUp: { kind: string; waitedMs: number } };

/** The writes of each request's last runs that its cluster caches have not been seen to reach. */
export class ConsistencyStore {
  readonly #maxWaitMs: number;
  /** By request identity, then by `cluster kind`: the newest write. */
  readonly #writes = new Map<string, Map<string, CacheWrite>>();
  /** Since when each request has been waiting. */
  readonly #waitingSince = new Map<string, number>();

  /** @param maxWaitMs How long a request waits for its caches before it runs anyway. */
  constructor(maxWaitMs: number) {
    this.#maxWaitMs = maxWaitMs;
  }

  /** Remembers a write made by a run of the request `identity`. */
  wrote(identity: string, write: CacheWrite): void {
    let writes = this.#writes.get(identity);
    if (!writes) this.#writes.set(identity, writes = new Map());
    const key = `${write.cluster} ${kindKey(write.kind)}`;
    const before = writes.get(key);
    // Keep the newest; of two that cannot be compared, the later one.
    const order = before && compareResourceVersions(write.resourceVersion, before.resourceVersion);
    if (!before || order === undefined || order >= 0) writes.set(key, write);
  }

  /** Forgets a request (it is done for good). */
  forget(identity: string): void {
    this.#writes.delete(identity);
    this.#waitingSince.delete(identity);
  }

  /** Forgets every request (the controller stops). */
  clear(): void {
    this.#writes.clear();
    this.#waitingSince.clear();
  }

  /** Whether the request's caches have reached its writes; `now` in epoch ms. */
  async check(identity: string, now: number): Promise<Readiness> {
    const writes = this.#writes.get(identity);
    if (!writes) return { ready: true };
    let behind: string | undefined;
    for (const [key, write] of [...writes]) {
      const at = await write.cacheVersion().catch(() => undefined);
      const order = at === undefined
        ? undefined
        : compareResourceVersions(at, write.resourceVersion);
      if (order === undefined || order >= 0) writes.delete(key); // reached, or cannot tell
      else behind ??= kindKey(write.kind);
    }
    if (behind === undefined) {
      this.forget(identity);
      return { ready: true };
    }
    const since = this.#waitingSince.get(identity) ?? now;
    this.#waitingSince.set(identity, since);
    if (now - since < this.#maxWaitMs) return { ready: false, kind: behind };
    this.forget(identity);
    return { ready: true, gaveUp: { kind: behind, waitedMs: now - since } };
  }

  /** Requests with writes still to be seen. */
  get size(): number {
    return this.#writes.size;
  }
}
