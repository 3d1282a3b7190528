/**
 * What happened to each cluster lately (main thread only): connects, disconnects and why, failed
 * connects and probes, moves between workers, rotated credentials, kinds that started failing. A
 * bounded ring per cluster, for operators (the status page) and for tests; never a credential.
 *
 * @module
 */

/** What happened. */
export type ClusterHistoryKind =
  | "connected"
  | "disconnected"
  | "connect-failed"
  | "probe-failed"
  | "moved"
  | "move-failed"
  | "rotated"
  | "kind-failing"
  | "kind-recovered";

/**
 * One thing that happened to a cluster.
 *
 * @example
 * ```ts
 * import type { ClusterHistoryEntry } from "@fleetkit/clustercache";
 *
 * const entry: ClusterHistoryEntry = {
 *   time: Date.now(),
 *   kind: "disconnected",
 *   message: "too many failed health probes",
 * };
 * ```
 */
export interface ClusterHistoryEntry {
  /** When (epoch ms). */
  time: number;
  /** What kind of thing it was. */
  kind: ClusterHistoryKind;
  /** What it was, in words (credential-free). */
  message: string;
}

/** Entries kept per cluster. */
const KEPT = 50;

/** The recent history of every cluster. */
export class ClusterHistory {
  readonly #entries = new Map<string, ClusterHistoryEntry[]>();

  /** Records what happened to the cluster `key`. */
  record(key: string, kind: ClusterHistoryKind, message: string): void {
    let entries = this.#entries.get(key);
    if (!entries) this.#entries.set(key, entries = []);
    entries.push({ time: Date.now(), kind, message });
    if (entries.length > KEPT) entries.splice(0, entries.length - KEPT);
  }

  /** The cluster's recent history, oldest first. */
  of(key: string): ClusterHistoryEntry[] {
    return [...(this.#entries.get(key) ?? [])];
  }

  /** Forgets a deleted cluster. */
  forget(key: string): void {
    this.#entries.delete(key);
  }
}
