/**
 * Writes made through a cluster's cached client while a reconcile runs, told to that reconcile
 * (main thread only). The reconcile runs in an async context ({@linkcode recordingWrites}); every
 * write through `getClient()` inside it reports the resourceVersion the server returned, and how to
 * ask how far the cluster's cache of that kind has come. The controller uses them to keep the next
 * run of the same request from acting on a cache older than its own writes (KEP-5647).
 *
 * @module
 */

import { AsyncLocalStorage } from "node:async_hooks";
import type { KindRef } from "../shared/kube_object.ts";

/** A write through a cached client. */
export interface CacheWrite {
  /** The cluster (`namespace/name`). */
  cluster: string;
  kind: KindRef;
  /** What the server returned for the write. */
  resourceVersion: string;
  /**
   * The resourceVersion the cluster's cache of this kind is at now; `undefined` when it has no
   * informer for the kind (a read would sync it afresh) or the cluster is not connected.
   */
  cacheVersion(): Promise<string | undefined>;
}

const recorders = new AsyncLocalStorage<(write: CacheWrite) => void>();

/** Runs `fn`, telling `record` of every write through a cached client inside it. */
export function recordingWrites<T>(record: (write: CacheWrite) => void, fn: () => T): T {
  return recorders.run(record, fn);
}

/** Tells the reconcile running (if any) of a write; `write` is built only when one listens. */
export function wrote(write: () => CacheWrite | undefined): void {
  const record = recorders.getStore();
  if (!record) return;
  const made = write();
  if (made) record(made);
}
