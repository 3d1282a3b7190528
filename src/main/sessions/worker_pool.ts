/**
 * Where a cluster's session runs (main thread only): in a worker of its own, or in one of a bounded
 * set of pooled workers, each shared by up to `clustersPerWorker` clusters.
 *
 * @module
 */

import type { ObjectKey } from "../../shared/kube_object.ts";
import { placementOf } from "./placement.ts";
import type { PoolSettings } from "../options.ts";

export type { PoolSettings };
import {
  dedicatedSession,
  type Placement,
  type Session,
  type SessionHooks,
  WorkerHost,
  type WorkerPermissions,
} from "./session.ts";

/** Places sessions on workers. */
export class WorkerPool {
  readonly #settings: PoolSettings;
  readonly #pooled = new Set<WorkerHost>();
  #overfullWarned = false;
  readonly #onOverfull: (message: string) => void;

  /** @param onOverfull Told once when every pooled worker is full and clusters must crowd in. */
  constructor(settings: PoolSettings, onOverfull: (message: string) => void = () => {}) {
    this.#settings = settings;
    this.#onOverfull = onOverfull;
  }

  /** The mode. */
  get mode(): PoolSettings["mode"] {
    return this.#settings.mode;
  }

  /**
   * Opens a session for `cluster`: in a worker of its own when `placement` is dedicated (or the
   * mode is), else in the pooled worker with the most room (a new one while there may be more).
   */
  open(
    cluster: ObjectKey,
    permissions: WorkerPermissions,
    hooks: SessionHooks,
    placement: Placement,
  ): Session {
    if (placementOf(this.#settings.mode, placement) === "dedicated") {
      return dedicatedSession(cluster, permissions, hooks);
    }
    return this.#host(permissions).open(cluster, hooks);
  }

  #host(permissions: WorkerPermissions): WorkerHost {
    const key = JSON.stringify(permissions);
    let best: WorkerHost | undefined;
    for (const host of [...this.#pooled]) {
      if (!host.alive) {
        this.#pooled.delete(host);
        continue;
      }
      if (host.permissionsKey !== key) continue;
      if (!best || host.size < best.size) best = host;
    }
    const { clustersPerWorker, maxWorkers } = this.#settings;
    if (best && best.size < clustersPerWorker) return best;
    if (this.#pooled.size < maxWorkers || !best) {
      const host = new WorkerHost(
        `clustercache pool ${this.#pooled.size + 1}`,
        permissions,
        "pooled",
      );
      this.#pooled.add(host);
      return host;
    }
    if (!this.#overfullWarned) {
      this.#overfullWarned = true;
      this.#onOverfull(
        `every one of the ${maxWorkers} pooled workers holds ${clustersPerWorker} clusters; more ` +
          `share them (raise workers.maxWorkers or workers.clustersPerWorker)`,
      );
    }
    return best;
  }

  /** Pooled workers running now, and the sessions in them. */
  stats(): { pooledWorkers: number; pooledSessions: number } {
    let sessions = 0;
    let workers = 0;
    for (const host of this.#pooled) {
      if (!host.alive) continue;
      workers++;
      sessions += host.size;
    }
    return { pooledWorkers: workers, pooledSessions: sessions };
  }
}
