/**
 * One cluster as a worker session serves it (worker side): the connection probe and Pod check at
 * init, the health probe, and the session's parts put together: its HTTP client and REST mapper,
 * its informer cache, live reads and writes, and watch subscriptions (which the operation table,
 * `operations.ts`, calls directly).
 *
 * @module
 */

import { starved } from "../src/shared/probe_verdict.ts";
import { ClusterCacheError, isNotFound } from "../src/shared/errors.ts";
import type { KubeObject } from "../src/shared/kube_object.ts";
import type {
  InitResult,
  PressureReport,
  WorkerConfig,
  WorkerStats,
} from "../src/shared/protocol.ts";
import { Transport } from "./http_transport.ts";
import { InformerCache, type InformerCacheHooks } from "./informer_cache.ts";
import { LiveClient } from "./live_client.ts";
import type { LoadMeter } from "./load_meter.ts";
import { RequestStats } from "./request_stats.ts";
import { describe } from "./reflector.ts";
import { RestMapper } from "./rest_mapper.ts";
import { type WatchOutput, WatchSubscriptions } from "./watch_subscriptions.ts";
import type { WorkerLog } from "./worker_log.ts";

/** What a session's runtime reports through. */
export interface RuntimeHooks {
  log: WorkerLog;
  /** Sends watch events, and syncs, to the main thread. */
  watches: WatchOutput;
  /** Reports informer counters. */
  count(kind: string, event: "list" | "watchRestart" | "error"): void;
  /** Measures the session's work (and marks it as the one running). */
  meter: LoadMeter;
  /** Sends a pressure report to the main thread. */
  report(pressure: PressureReport): void;
  /** Waits for the fleet's list budget (see `InformerCacheHooks.permit`). */
  permit?: InformerCacheHooks["permit"];
}

/** One cluster, as its worker serves it. */
export class ClusterRuntime {
  readonly #config: WorkerConfig;
  readonly #meter: LoadMeter;
  #transport: Transport;
  /** Transports made so far (the first uses the session's first socket, an in-cluster one the second). */
  #mapper: RestMapper;
  readonly #requests = new RequestStats();
  /** Its informers and cached reads. */
  readonly cache: InformerCache;
  /** Its live reads and writes. */
  readonly live: LiveClient;
  /** Its watch subscriptions. */
  readonly watches: WatchSubscriptions;

  constructor(config: WorkerConfig, hooks: RuntimeHooks) {
    this.#config = config;
    this.#meter = hooks.meter;
    this.#transport = this.#newTransport(config.rest);
    this.#mapper = new RestMapper(this.#transport);
    const api = () => ({ transport: this.#transport, mapper: this.#mapper });
    this.cache = new InformerCache(config, api, hooks);
    this.live = new LiveClient(api);
    this.watches = new WatchSubscriptions(config, this.cache, hooks.watches);
  }

  #newTransport(rest: WorkerConfig["rest"]): Transport {
    const transport = new Transport(
      rest,
      this.#config.maxResponseBytes,
      (verb, code, seconds) => this.#requests.record(verb, code, seconds),
      (work) => this.#meter.measure(work),
      (method, code) => this.#requests.retried(method, code),
      this.#config.deniedNetworks,
    );
    if (this.#config.writableUntil !== undefined) transport.fence(this.#config.writableUntil);
    return transport;
  }

  /** Objects held by every informer (for the load meter). */
  objectCount(): number {
    return this.cache.objectCount();
  }

  /** What changed since the last call: request counts and latency, informer relists and versions. */
  takeStats(): WorkerStats {
    return { ...this.#requests.take(), informers: this.cache.takeStats() };
  }

  /**
   * Checks the cluster answers (`GET /`), discovers core v1, and detects whether this process runs as
   * a Pod of the cluster (then switches to the in-cluster address, as Cluster API does).
   */
  async init(signal: AbortSignal): Promise<InitResult> {
    try {
      await this.probe(this.#config.probeTimeoutMs, signal);
    } catch (error) {
      // A server that is not the kubeconfig's, or one in a denied network, keeps its code.
      if (
        error instanceof ClusterCacheError &&
        (error.code === "UntrustedCertificate" || error.code === "InvalidKubeconfig")
      ) throw new ClusterCacheError(error.code, `cluster is not reachable: ${error.message}`);
      // A timeout is told apart: connect admission reads it as overload.
      const timedOut = error instanceof ClusterCacheError &&
        (error.code === "Timeout" || error.code === "Overloaded");
      throw new ClusterCacheError(
        timedOut ? "Timeout" : "Unreachable",
        `cluster is not reachable: ${describe(error)}`,
      );
    }
    try {
      await this.#mapper.mapping({ apiVersion: "v1", kind: "Node" }, signal);
    } catch (error) {
      throw new ClusterCacheError("Unreachable", `error getting REST mapping: ${describe(error)}`);
    }
    const running = await this.#runningOnWorkloadCluster(signal);
    if (running && this.#config.inCluster) {
      this.#transport.close();
      this.#transport = this.#newTransport({
        ...this.#config.rest,
        server: this.#config.inCluster.server,
        caPem: this.#config.inCluster.caPem,
      });
      this.#mapper = new RestMapper(this.#transport);
      try {
        await this.probe(this.#config.probeTimeoutMs, signal);
      } catch (error) {
        throw new ClusterCacheError(
          "Unreachable",
          `cluster is not reachable: ${describe(error)} (using in-cluster config)`,
        );
      }
    }
    return { server: this.#transport.server, runningOnWorkloadCluster: running };
  }

  async #runningOnWorkloadCluster(signal: AbortSignal): Promise<boolean> {
    const pod = this.#config.podIdentity;
    if (!pod) return false;
    try {
      const found = await this.#transport.json<KubeObject>(
        "GET",
        `/api/v1/namespaces/${encodeURIComponent(pod.namespace)}/pods/${
          encodeURIComponent(pod.name)
        }`,
        { signal },
      );
      return found?.metadata?.uid === pod.uid;
    } catch (error) {
      if (isNotFound(error)) return false;
      throw new ClusterCacheError(
        "Unreachable",
        `error checking if we're running on workload cluster: ${describe(error)}`,
      );
    }
  }

  /**
   * `GET /` within `timeoutMs`, outside the QPS limiter; reports this worker's heap size too.
   *
   * @throws {ClusterCacheError} `Overloaded` when it timed out but this worker itself ran far
   *   behind its timer (starved of CPU): the cluster may well have answered in time.
   */
  async probe(timeoutMs: number, signal: AbortSignal): Promise<{ heapUsedBytes: number }> {
    const started = performance.now();
    try {
      await this.#transport.json("GET", "/", { timeoutMs, signal, limited: false });
    } catch (error) {
      const late = performance.now() - started - timeoutMs;
      if (
        error instanceof ClusterCacheError && error.code === "Timeout" && starved(late, timeoutMs)
      ) {
        throw new ClusterCacheError(
          "Overloaded",
          `GET / timed out, but this worker ran ${Math.round(late)}ms behind its timer`,
        );
      }
      throw error;
    }
    return { heapUsedBytes: Deno.memoryUsage().heapUsed };
  }

  /** Allows writes until `until` (epoch ms): with sharding, this replica renewed its ownership. */
  fence(until: number): void {
    this.#transport.fence(until);
  }

  /** Uses a rotated bearer token from now on (watches in flight keep theirs until they restart). */
  setToken(token: string): null {
    this.#transport.setToken(token);
    return null;
  }

  /** Stops every informer and closes the HTTP client. */
  close(): void {
    this.watches.close();
    this.cache.close();
    this.#transport.close();
  }
}
