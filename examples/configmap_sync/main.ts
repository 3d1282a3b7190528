/**
 * The ConfigMap sync operator, wired up: a `@kubernetes/client-node` informer follows the source
 * ConfigMap in the management cluster, a {@linkcode ClusterCache} connects to every workload cluster,
 * and the {@linkcode ConfigMapSyncController} keeps the copies in step.
 *
 * Run it against the simulator:
 *
 * ```sh
 * deno task sim --clusters 3 --out /tmp/fleet &
 * kubectl --kubeconfig /tmp/fleet/management.kubeconfig create configmap fleet-settings \
 *   --from-literal=logLevel=debug --dry-run=client -o yaml |
 *   kubectl --kubeconfig /tmp/fleet/management.kubeconfig apply -f -
 * deno run -A --unstable-worker-options examples/configmap_sync/main.ts /tmp/fleet/management.kubeconfig
 * kubectl --kubeconfig /tmp/fleet/workload-2.kubeconfig get configmap fleet-settings -o yaml
 * ```
 *
 * Replicas share the fleet when each runs with its own `SHARD_IDENTITY` (Leases go in the source
 * ConfigMap's namespace):
 *
 * ```sh
 * SHARD_IDENTITY=replica-1 deno run -A examples/configmap_sync/main.ts /tmp/fleet/management.kubeconfig &
 * SHARD_IDENTITY=replica-2 deno run -A examples/configmap_sync/main.ts /tmp/fleet/management.kubeconfig &
 * ```
 *
 * @module
 */

import * as k8s from "@kubernetes/client-node";
import { configure, getConsoleSink, getLogger } from "@logtape/logtape";
import { ClusterCache } from "../../mod.ts";
import { ConfigMapSyncController } from "./controller.ts";

/** Options of {@linkcode startConfigMapSync}. */
export interface ConfigMapSyncSetup {
  /** The management cluster. */
  management: k8s.KubeConfig;
  /** The source ConfigMap in the management cluster. */
  source: { namespace: string; name: string };
  /** Where copies go in workload clusters; default: the same namespace and name. */
  target?: { namespace: string; name: string };
  /** Extra ClusterCache options (tests shorten intervals). */
  cache?: Omit<Parameters<typeof ClusterCache.setup>[0], "management">;
}

/** A running operator. */
export interface RunningConfigMapSync extends AsyncDisposable {
  /** The controller (for its outcome counts). */
  controller: ConfigMapSyncController;
  /** The cache it runs on. */
  cache: ClusterCache;
  /** Stops the informer, the controller and the cache. */
  close(): Promise<void>;
}

/**
 * Starts the operator: the management informer first (so the desired content is known), then the
 * cache and the controller.
 */
export async function startConfigMapSync(setup: ConfigMapSyncSetup): Promise<RunningConfigMapSync> {
  const log = getLogger(["configmap-sync"]);
  const { namespace, name } = setup.source;
  const cache = await ClusterCache.setup({
    ...setup.cache,
    management: setup.management,
    client: { userAgent: "configmap-sync", ...setup.cache?.client },
  });
  const controller = new ConfigMapSyncController(cache, {
    target: setup.target ?? { namespace, name },
  });

  const api = setup.management.makeApiClient(k8s.CoreV1Api);
  const informer = k8s.makeInformer(
    setup.management,
    `/api/v1/namespaces/${namespace}/configmaps`,
    () => api.listNamespacedConfigMap({ namespace }),
  );
  const follow = (object: k8s.V1ConfigMap) => {
    if (object.metadata?.name === name) controller.setDesired(object.data ?? {});
  };
  informer.on("add", follow);
  informer.on("update", follow);
  informer.on("delete", (object) => {
    if (object.metadata?.name === name) controller.setDesired(null);
  });
  // After the first list: a source that does not exist means "delete the copies".
  const syncDesired = () => {
    const current = informer.get(name, namespace);
    controller.setDesired(current ? current.data ?? {} : null);
  };
  // client-node's informer stops on an error; start it again with backoff, as its docs advise.
  let stopped = false;
  let restartDelay = 500;
  let restartTimer: ReturnType<typeof setTimeout> | undefined;
  informer.on("connect", () => restartDelay = 500);
  informer.on("error", (error) => {
    if (stopped) return;
    log.warn("Management informer failed, restarting in {delay} ms: {error}", {
      delay: restartDelay,
      error: error instanceof Error ? error.message : String(error),
    });
    restartTimer = setTimeout(() => {
      informer.start().then(syncDesired, () => {});
    }, restartDelay);
    restartDelay = Math.min(restartDelay * 2, 30_000);
  });

  try {
    await informer.start();
  } catch (error) {
    await cache.close();
    throw error;
  }
  syncDesired();
  controller.start();

  const close = async () => {
    if (stopped) return;
    stopped = true;
    clearTimeout(restartTimer);
    await informer.stop();
    await controller.close();
    await cache.close();
  };
  return { controller, cache, close, [Symbol.asyncDispose]: close };
}

if (import.meta.main) {
  const [path, source = "default/fleet-settings"] = Deno.args;
  if (!path) {
    console.error(
      "usage: main.ts MANAGEMENT_KUBECONFIG [NAMESPACE/NAME of the source ConfigMap]",
    );
    Deno.exit(2);
  }
  const [namespace, name] = source.includes("/") ? source.split("/", 2) : ["default", source];
  await configure({
    sinks: { console: getConsoleSink() },
    loggers: [
      { category: ["configmap-sync"], lowestLevel: "info", sinks: ["console"] },
      { category: ["clustercache"], lowestLevel: "info", sinks: ["console"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["console"] },
    ],
  });
  const management = new k8s.KubeConfig();
  management.loadFromFile(path);
  const shardIdentity = Deno.env.get("SHARD_IDENTITY");
  const running = await startConfigMapSync({
    management,
    source: { namespace: namespace!, name: name! },
    // Several replicas share the fleet when each has its own SHARD_IDENTITY (a Pod name).
    ...(shardIdentity
      ? {
        cache: {
          client: { userAgent: "configmap-sync" },
          sharding: { identity: shardIdentity, leaseNamespace: namespace! },
        },
      }
      : {}),
  });
  console.log(
    `syncing ${namespace}/${name} to every workload cluster${
      shardIdentity ? ` this replica (${shardIdentity}) serves` : ""
    }; Ctrl-C stops`,
  );
  const done = Promise.withResolvers<void>();
  // Ctrl-C, or the SIGTERM a Pod gets when it is stopped.
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => done.resolve());
  }
  const report = setInterval(
    () => console.log(JSON.stringify(running.controller.outcomes)),
    10_000,
  );
  await done.promise;
  clearInterval(report);
  await running.close();
  // The final counts, after every reconcile in flight has ended (the periodic line may be older).
  console.log(JSON.stringify(running.controller.outcomes));
}
