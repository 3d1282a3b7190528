/**
 * The health probe of one cluster connection (main thread), workload or management: `GET /` with
 * the probe timeout in the connection's worker, and what it means. An unanswered or failed probe is
 * a failure, unless this process was too starved of CPU to tell (then it is inconclusive: the probe
 * time moves, the failure count does not). A crash is reported for the caller to count. A pooled
 * worker whose thread no longer answers is found out here.
 *
 * @module
 */

import { ClusterCacheError, isUnauthorized } from "../../shared/errors.ts";
import { type ProbeVerdict, probeVerdict } from "../../shared/probe_verdict.ts";
import type { ProbeOptions } from "../options.ts";
import { isUnanswered, type Session } from "./session.ts";

/**
 * The health-checking state of a cluster (times are epoch ms; 0 = never).
 *
 * @example Reporting a cluster's health on a status page
 * ```ts
 * import type { HealthCheckingState } from "@fleetkit/clustercache";
 * import { FakeClient, FakeClusterCache } from "@fleetkit/clustercache/testing";
 *
 * const cluster = { namespace: "default", name: "workload-1" };
 * const cache = new FakeClusterCache(new FakeClient(), cluster); // or a ClusterCache
 * const state: HealthCheckingState = cache.getHealthCheckingState(cluster);
 * const healthy = state.consecutiveFailures === 0 && state.lastProbeSuccessTime > 0;
 * console.log(`${cluster.name}: ${healthy ? "healthy" : `${state.consecutiveFailures} failed probes`}`);
 * ```
 */
export interface HealthCheckingState {
  /** When the last probe (or connection attempt) ran. */
  lastProbeTime: number;
  /** When a probe last succeeded. */
  lastProbeSuccessTime: number;
  /** Failed probes since the last success. */
  consecutiveFailures: number;
}

/**
 * What a health check found, and what it means (Cluster API's `HealthCheck` returns
 * `tooManyConsecutiveFailures, unauthorized`): the caller acts on the decision.
 */
export interface HealthCheckResult {
  /** `"crashed"`: the worker died while the probe was out (the caller counts it, once). */
  verdict: ProbeVerdict | "crashed";
  /**
   * The probe says the machine or the API servers are overloaded: inconclusive, or a first timeout
   * (a cluster whose previous probe timed out too is more likely hung).
   */
  overload: boolean;
  /** The worker's heap, when the probe succeeded. */
  heapUsedBytes?: number;
  /** The server refused our credentials (401): disconnect at once, reconnect soon. */
  unauthorized: boolean;
  /** The failures reached the threshold: disconnect, retry after the retry interval. */
  tooManyFailures: boolean;
}

/** A pooled worker's thread that does not answer a ping this long after a probe went unanswered is hung. */
const HUNG_CHECK_MS = 1_000;

function isTimeout(error: unknown): boolean {
  return error instanceof ClusterCacheError && error.code === "Timeout";
}

/** One connection's probe state and the probe itself. */
export class HealthProbe {
  /** The health-checking state. */
  readonly state: HealthCheckingState = {
    lastProbeTime: 0,
    lastProbeSuccessTime: 0,
    consecutiveFailures: 0,
  };
  #lastProbeTimedOut = false;
  /** Successes in a row (toward the success threshold). */
  #successes = 0;

  /** A new connection answered: healthy from now on, whatever the old one's probes counted. */
  connected(): void {
    this.state.lastProbeTime = Date.now();
    this.state.lastProbeSuccessTime = this.state.lastProbeTime;
    this.state.consecutiveFailures = 0;
    this.#successes = 0;
    this.#lastProbeTimedOut = false;
  }

  /** Takes back the failure the last probe counted (a 401 that rotated credentials explain). */
  forgiveLastFailure(): void {
    if (this.state.consecutiveFailures > 0) this.state.consecutiveFailures--;
  }

  /**
   * Probes through `worker` and records the outcome.
   *
   * @param mainLagSince The main thread's worst event-loop lag since a `performance.now()` time.
   */
  async check(
    worker: Session,
    probe: ProbeOptions,
    mainLagSince: (since: number) => number,
  ): Promise<HealthCheckResult> {
    const timeoutMs = probe.timeoutMs;
    const started = performance.now();
    let verdict: ProbeVerdict;
    let heapUsedBytes: number | undefined;
    let timedOut = false;
    try {
      ({ heapUsedBytes } = await worker.call({ op: "probe", timeoutMs }, {
        timeoutMs: timeoutMs + 1_000,
        operation: "error probing",
      }));
      verdict = "success";
    } catch (error) {
      // A crash while the probe was out is one failure, counted where the crash is handled.
      if (!worker.alive) return this.#crashed();
      timedOut = isTimeout(error) || isUnanswered(error);
      verdict = probeVerdict({
        ok: false,
        unauthorized: isUnauthorized(error),
        workerStarved: error instanceof ClusterCacheError && error.code === "Overloaded",
        unanswered: isUnanswered(error),
        mainLagMs: mainLagSince(started),
        timeoutMs,
      });
      // A pooled worker whose thread no longer answers is hung by one of its sessions: end it (the
      // one to blame gets a worker of its own; its neighbours reconnect at once). Not when this
      // thread was too starved to tell.
      if (verdict === "failure" && isUnanswered(error) && worker.placement === "pooled") {
        const responsive = await worker.host.responsive(HUNG_CHECK_MS, mainLagSince);
        if (responsive === false) worker.host.hung();
        if (!worker.alive) return this.#crashed();
      }
    }
    this.state.lastProbeTime = Date.now();
    if (verdict === "success") {
      // Healthy again only after enough successes in a row (1 by default: Cluster API's rule).
      if (++this.#successes >= probe.successThreshold) {
        this.state.consecutiveFailures = 0;
        this.state.lastProbeSuccessTime = this.state.lastProbeTime;
      }
    } else if (verdict !== "inconclusive") {
      this.#successes = 0;
      this.state.consecutiveFailures++;
    }
    const overload = verdict === "inconclusive" ||
      (verdict === "failure" && timedOut && !this.#lastProbeTimedOut);
    this.#lastProbeTimedOut = verdict === "failure" && timedOut;
    return {
      verdict,
      overload,
      ...(heapUsedBytes === undefined ? {} : { heapUsedBytes }),
      unauthorized: verdict === "unauthorized",
      tooManyFailures: this.failing(probe),
    };
  }

  /** Whether the failures reached the probe's threshold. */
  failing(probe: ProbeOptions): boolean {
    return this.state.consecutiveFailures >= probe.failureThreshold;
  }

  #crashed(): HealthCheckResult {
    return { verdict: "crashed", overload: false, unauthorized: false, tooManyFailures: false };
  }
}
