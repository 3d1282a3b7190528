/**
 * What one reconcile of a cluster collects as it goes (main thread only): the connects and
 * disconnects it made, in order, for the cluster sources, and the durations it asks to be requeued
 * after (Cluster API requeues after the smallest, else the default).
 *
 * @module
 */

import { minDurationOrDefault } from "./requeue.ts";
import type { Transition } from "../sources/source_events.ts";

/** One reconcile's transitions and requeues. */
export class ReconcileStep {
  /** Connects and disconnects, in the order they happened. */
  readonly transitions: Transition[] = [];
  /** Durations (ms) to be requeued after; the smallest wins. */
  readonly requeues: number[] = [];

  /** The requeue to ask for: the smallest collected, else `fallbackMs`. */
  requeueAfter(fallbackMs: number): number {
    return minDurationOrDefault(this.requeues, fallbackMs);
  }
}
