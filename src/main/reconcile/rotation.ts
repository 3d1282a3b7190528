/**
 * A connected cluster's kubeconfig Secret changed (main thread only): a rotated bearer token goes to
 * the session in place (no events, no relist: EKS rotates tokens every ~15 minutes); anything else
 * connects anew and swaps, make before break, keeping the old connection when the new one cannot
 * connect. Also what explains a 401: credentials rotated under us. Cluster API waits for a failed
 * probe; this is the gap it leaves, closed.
 *
 * @module
 */

import type { Logger } from "@logtape/logtape";
import type { KubeObject } from "../../shared/kube_object.ts";
import type { ClusterAccessor, ConnectContext } from "./accessor.ts";
import type { ClusterHistory } from "./cluster_history.ts";
import type { ClusterCacheMetrics } from "../metrics/metrics.ts";
import type { ResolvedOptions } from "../options.ts";
import { shouldRequeue } from "./requeue.ts";
import type { ReconcileStep } from "./reconcile_step.ts";
import type { WatchRegistry } from "../watches/watch_registry.ts";

/** What rotation needs of the reconciler. */
export interface RotationContext {
  options: Pick<ResolvedOptions, "client" | "connectionCreationRetryIntervalMs">;
  log: Logger;
  history: ClusterHistory;
  metrics: ClusterCacheMetrics;
  watches: WatchRegistry;
  /** The cluster's kubeconfig Secret: from the mirror, or `live` whatever the mirror says. */
  readSecret(accessor: ClusterAccessor, live: boolean): Promise<KubeObject | undefined>;
  connectContext(key: string, accessor: ClusterAccessor): ConnectContext;
}

/** Kubeconfig rotation of connected clusters. */
export class KubeconfigRotation {
  readonly #context: RotationContext;

  constructor(context: RotationContext) {
    this.#context = context;
  }

  /** Picks up a rotated kubeconfig without waiting for a failed probe (the mirror only: no live read). */
  async check(key: string, accessor: ClusterAccessor, step: ReconcileStep): Promise<void> {
    if (!accessor.connection) return;
    const change = accessor.kubeconfigChange(await this.#context.readSecret(accessor, false));
    await this.#apply(key, accessor, change, step);
  }

  /**
   * A 401 may only mean the credentials were rotated under us: reads the Secret live (whatever its
   * resourceVersion says) and applies what changed.
   *
   * @returns Whether that explains the 401 (the new credentials are in use).
   */
  async explainsUnauthorized(
    key: string,
    accessor: ClusterAccessor,
    step: ReconcileStep,
  ): Promise<boolean> {
    const change = accessor.kubeconfigChange(
      await this.#context.readSecret(accessor, true),
      true,
    );
    return change.kind !== "none" && await this.#apply(key, accessor, change, step);
  }

  /** @returns Whether the change was applied (the token updated, or the connection replaced). */
  async #apply(
    key: string,
    accessor: ClusterAccessor,
    change: Awaited<ReturnType<ClusterAccessor["kubeconfigChange"]>>,
    step: ReconcileStep,
  ): Promise<boolean> {
    const { options, log, metrics, watches } = this.#context;
    if (change.kind === "token") {
      try {
        await accessor.updateToken(change.token, options.client.timeoutMs);
        log.info("The kubeconfig Secret's token was rotated; updated in place", { cluster: key });
        this.#context.history.record(key, "rotated", "the bearer token was rotated in place");
        return true;
      } catch (error) {
        log.warn("Updating the rotated token failed; the next probe decides", {
          cluster: key,
          error: (error as Error).message,
        });
        return false;
      }
    }
    if (change.kind !== "other") return false;
    const wait = shouldRequeue(
      Date.now(),
      accessor.lastConnectionCreationErrorTime,
      options.connectionCreationRetryIntervalMs,
    );
    if (wait.requeue) {
      step.requeues.push(wait.afterMs);
      accessor.connection!.secretVersion = undefined; // look again next time
      return false;
    }
    log.info("The kubeconfig Secret changed; connecting anew before letting go", { cluster: key });
    try {
      const swapped = await accessor.swap(this.#context.connectContext(key, accessor));
      if (!swapped) {
        // Let go meanwhile (handed to another replica), or moved to another worker: a connection
        // that still serves looks at the Secret again.
        if (accessor.connection) accessor.connection.secretVersion = undefined;
        step.requeues.push(options.connectionCreationRetryIntervalMs);
        return false;
      }
      watches.forget(swapped.replaced);
      this.#context.history.record(key, "rotated", "the kubeconfig changed: connected anew");
      step.transitions.push("disconnect", "connect");
      metrics.connection(accessor.key, true);
      return true;
    } catch (error) {
      log.warn("The changed kubeconfig does not connect; keeping the old connection", {
        cluster: key,
        error: (error as Error).message,
      });
      if (accessor.connection) accessor.connection.secretVersion = undefined;
      step.requeues.push(options.connectionCreationRetryIntervalMs);
      return false;
    }
  }
}
