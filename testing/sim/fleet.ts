/**
 * A simulated fleet: one management cluster that holds Cluster API `Cluster` objects and their
 * `<name>-kubeconfig` Secrets, and any number of workload clusters, each its own
 * {@linkcode SimulatedApiServer} on 127.0.0.1, all in one process.
 *
 * @module
 */

import type { KubeObject } from "../../src/shared/kube_object.ts";
import { CLUSTER_NAME_LABEL, kubeconfigSecret } from "../../src/main/management/cluster_object.ts";
import { SimulatedApiServer, type SimulatedApiServerOptions } from "./api_server.ts";
import { BUILTIN_TYPES, CLUSTER_TYPE, groupVersion, type ResourceType } from "./resource_types.ts";

/**
 * Options of {@linkcode SimulatedFleet.start}.
 *
 * @example Token-authenticated clusters in their own namespace
 * ```ts
 * import assert from "node:assert/strict";
 * import { SimulatedFleet, type SimulatedFleetOptions } from "@fleetkit/clustercache/testing";
 *
 * const options: SimulatedFleetOptions = {
 *   clusters: 2,
 *   namespace: "fleet",
 *   kubeconfigAuth: "token",
 *   clusterVersions: ["v1beta1"],
 *   server: { bookmarkIntervalMs: 5_000 },
 * };
 * await using fleet = await SimulatedFleet.start(options);
 * const secrets = fleet.management.typeOf("", "secrets")!;
 * const secret = fleet.management.store.get(secrets, "fleet", "workload-1-kubeconfig");
 * assert.ok(secret, "kubeconfig Secrets live next to their Clusters");
 * ```
 */
export interface SimulatedFleetOptions {
  /** Workload clusters to start, named `workload-1` … `workload-N`. Default 0. */
  clusters?: number;
  /** Namespace of the Cluster objects and Secrets. Default `"default"`. */
  namespace?: string;
  /** Server options applied to every cluster (names and ports excepted). */
  server?: Omit<SimulatedApiServerOptions, "name" | "port" | "extraTypes">;
  /** How kubeconfig Secrets authenticate. Default `"certificate"`. */
  kubeconfigAuth?: "certificate" | "token";
  /** How many workload clusters start at once. Default 50. */
  startConcurrency?: number;
  /** Versions of Cluster API's `Cluster` the management cluster serves. Default both, v1beta2 preferred. */
  clusterVersions?: ("v1beta2" | "v1beta1")[];
}

/**
 * Options of {@linkcode SimulatedFleet.addCluster}.
 *
 * @example A cluster that is not provisioned yet, with a Deployment in it
 * ```ts
 * import assert from "node:assert/strict";
 * import { type AddClusterOptions, SimulatedFleet } from "@fleetkit/clustercache/testing";
 *
 * await using fleet = await SimulatedFleet.start();
 * const options: AddClusterOptions = {
 *   infrastructureReady: false, // a ClusterCache does not connect until it is
 *   labels: { env: "staging" },
 *   objects: [{
 *     apiVersion: "apps/v1",
 *     kind: "Deployment",
 *     metadata: { namespace: "default", name: "web" },
 *     spec: { replicas: 2 },
 *   }],
 * };
 * const server = await fleet.addCluster("staging-1", options);
 * assert.ok(server.store.get(server.typeOf("apps", "deployments")!, "default", "web"));
 * fleet.setInfrastructureReady("staging-1", true); // now it would connect
 * ```
 */
export interface AddClusterOptions {
  /** Create the Cluster object and its kubeconfig Secret. Default true. */
  register?: boolean;
  /** Infrastructure readiness of the registered Cluster. Default true. */
  infrastructureReady?: boolean;
  /** Labels of the Cluster object (e.g. `cluster.x-k8s.io/watch-filter`). */
  labels?: Record<string, string>;
  /** Extra objects to create in the workload cluster. */
  objects?: KubeObject[];
}

function typeFor(apiVersion: string, kind: string): ResourceType {
  const type = BUILTIN_TYPES.find((t) =>
    t.kind === kind && t.versions.some((v) => groupVersion(t.group, v) === apiVersion)
  );
  if (!type) throw new TypeError(`Unknown kind for the simulator: ${apiVersion} ${kind}`);
  return type;
}

function base64(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary);
}

/**
 * A management cluster plus workload clusters.
 *
 * @example A fleet that changes under a ClusterCache
 * ```ts
 * import assert from "node:assert/strict";
 * import { KubeConfig } from "@kubernetes/client-node";
 * import { ClusterCache } from "@fleetkit/clustercache";
 * import { SimulatedFleet } from "@fleetkit/clustercache/testing";
 *
 * await using fleet = await SimulatedFleet.start({ clusters: 1 });
 * const management = new KubeConfig();
 * management.loadFromString(fleet.managementKubeconfig());
 * await using cache = await ClusterCache.setup({ management, client: { userAgent: "docs" } });
 * const until = async (done: () => boolean) => {
 *   for (const deadline = Date.now() + 10_000; !done(); await new Promise((r) => setTimeout(r, 20))) {
 *     if (Date.now() > deadline) throw new Error("timed out");
 *   }
 * };
 * const connected = new Set<string>();
 * const source = cache.getClusterSource("docs", (c) => [c.metadata!.name!]);
 * source.subscribe((name, event) => event.reasons.includes("connect") && connected.add(name));
 *
 * await fleet.addCluster("workload-2"); // a new Cluster and kubeconfig Secret
 * await until(() => connected.has("workload-2"));
 * await fleet.removeCluster("workload-1"); // the Cluster is deleted, the server stops
 * await until(() => cache.clusters().every((c) => c.name !== "workload-1"));
 * assert.deepEqual(cache.clusters().map((c) => c.name), ["workload-2"]);
 * source.close();
 * ```
 */
export class SimulatedFleet {
  /** The management cluster (serves `Cluster` objects in v1beta1 and v1beta2). */
  readonly management: SimulatedApiServer;
  /** Namespace of Cluster objects and kubeconfig Secrets. */
  readonly namespace: string;
  readonly #clusters = new Map<string, SimulatedApiServer>();
  /** Registered clusters served by another process (`deno task sim` past one process). */
  readonly #external = new Set<string>();
  readonly #options: SimulatedFleetOptions;
  #closed = false;

  private constructor(management: SimulatedApiServer, options: SimulatedFleetOptions) {
    this.management = management;
    this.namespace = options.namespace ?? "default";
    this.#options = options;
  }

  /**
   * Starts the management cluster and `clusters` registered workload clusters.
   *
   * @example A fleet of three clusters
   * ```ts
   * import assert from "node:assert/strict";
   * import { SimulatedFleet } from "@fleetkit/clustercache/testing";
   *
   * await using fleet = await SimulatedFleet.start({ clusters: 3 });
   * assert.deepEqual(fleet.clusters.map((c) => c.name), ["workload-1", "workload-2", "workload-3"]);
   * ```
   */
  static async start(options: SimulatedFleetOptions = {}): Promise<SimulatedFleet> {
    const versions = options.clusterVersions ?? ["v1beta2", "v1beta1"];
    if (versions.length === 0) throw new RangeError("clusterVersions cannot be empty");
    const management = await SimulatedApiServer.start({
      ...(options.server ?? {}),
      name: "management",
      extraTypes: [{ ...CLUSTER_TYPE, versions }],
    });
    const fleet = new SimulatedFleet(management, options);
    if (fleet.namespace !== "default") {
      management.store.create(BUILTIN_TYPES[0]!, { metadata: { name: fleet.namespace } });
    }
    const count = options.clusters ?? 0;
    const concurrency = Math.max(1, options.startConcurrency ?? 50);
    try {
      for (let i = 1; i <= count; i += concurrency) {
        const batch = [];
        for (let j = i; j < Math.min(i + concurrency, count + 1); j++) {
          batch.push(fleet.addCluster(`workload-${j}`));
        }
        await Promise.all(batch);
      }
    } catch (error) {
      await fleet.close();
      throw error;
    }
    return fleet;
  }

  /** Workload clusters, in creation order. */
  get clusters(): SimulatedApiServer[] {
    return [...this.#clusters.values()].filter((c) => c !== undefined);
  }

  /** A workload cluster by name. @throws {RangeError} When there is none. */
  cluster(name: string): SimulatedApiServer {
    const cluster = this.#clusters.get(name) as SimulatedApiServer | undefined;
    if (!cluster) throw new RangeError(`No simulated workload cluster named "${name}"`);
    return cluster;
  }

  /**
   * Starts a workload cluster and (by default) registers it in the management cluster.
   *
   * @returns The new cluster's server.
   */
  async addCluster(name: string, options: AddClusterOptions = {}): Promise<SimulatedApiServer> {
    if (this.#closed) throw new Error("The fleet is closed");
    if (this.#clusters.has(name) || this.#external.has(name)) {
      throw new RangeError(`Workload cluster "${name}" already exists`);
    }
    // Reserve the slot now so the fleet keeps the order clusters were asked for, not the order they started.
    this.#clusters.set(name, undefined as unknown as SimulatedApiServer);
    let server: SimulatedApiServer;
    try {
      server = await SimulatedApiServer.start({ ...(this.#options.server ?? {}), name });
    } catch (error) {
      this.#clusters.delete(name);
      throw error;
    }
    this.#clusters.set(name, server);
    seedWorkloadCluster(server);
    for (const object of options.objects ?? []) {
      server.store.create(typeFor(object.apiVersion ?? "", object.kind ?? ""), object, {
        keepStatus: true,
      });
    }
    if (options.register ?? true) {
      this.#register(name, server, options);
      server.onCredentialsChanged(() => this.#writeSecret(name, server));
    }
    return server;
  }

  /**
   * Registers a workload cluster that another process serves: its Cluster object (endpoint
   * 127.0.0.1:`port`) and a kubeconfig Secret holding `kubeconfig`. This is how one management
   * cluster fronts a fleet spread over several simulator processes (each with its own descriptors).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { SimulatedFleet } from "@fleetkit/clustercache/testing";
   *
   * await using elsewhere = await SimulatedFleet.start();
   * const server = await elsewhere.addCluster("far-1", { register: false });
   * await using fleet = await SimulatedFleet.start();
   * fleet.registerExternalCluster("far-1", { port: server.port, kubeconfig: server.kubeconfig() });
   * const clusters = fleet.management.typeOf("cluster.x-k8s.io", "clusters")!;
   * assert.ok(fleet.management.store.get(clusters, "default", "far-1"));
   * ```
   */
  registerExternalCluster(
    name: string,
    served: { port: number; kubeconfig: string },
    options: AddClusterOptions = {},
  ): void {
    if (this.#closed) throw new Error("The fleet is closed");
    if (this.#clusters.has(name) || this.#external.has(name)) {
      throw new RangeError(`Workload cluster "${name}" already exists`);
    }
    this.#external.add(name);
    this.#createClusterObject(name, served.port, options);
    this.#writeSecretText(name, served.kubeconfig);
  }

  /** Rewrites the kubeconfig Secret of a cluster another process serves (after it rotated). */
  updateExternalKubeconfig(name: string, kubeconfig: string): void {
    if (!this.#external.has(name)) throw new RangeError(`No external cluster named "${name}"`);
    this.#writeSecretText(name, kubeconfig);
  }

  #register(name: string, server: SimulatedApiServer, options: AddClusterOptions): void {
    this.#createClusterObject(name, server.port, options);
    this.#writeSecret(name, server);
  }

  #createClusterObject(name: string, port: number, options: AddClusterOptions): void {
    const ready = options.infrastructureReady ?? true;
    this.management.store.create(this.#clusterType(), {
      apiVersion: "cluster.x-k8s.io/v1beta2",
      kind: "Cluster",
      metadata: { name, namespace: this.namespace, labels: options.labels ?? {} },
      spec: { controlPlaneEndpoint: { host: "127.0.0.1", port } },
      status: {
        phase: ready ? "Provisioned" : "Provisioning",
        initialization: { infrastructureProvisioned: ready, controlPlaneInitialized: ready },
      },
    }, { keepStatus: true });
  }

  #clusterType(): ResourceType {
    return this.management.types.find((t) => t.kind === "Cluster")!;
  }

  #secretType(): ResourceType {
    return BUILTIN_TYPES.find((t) => t.kind === "Secret")!;
  }

  #writeSecret(name: string, server: SimulatedApiServer): void {
    this.#writeSecretText(name, server.kubeconfig(this.#options.kubeconfigAuth ?? "certificate"));
  }

  #writeSecretText(name: string, kubeconfig: string): void {
    const type = this.#secretType();
    const secret: KubeObject = {
      apiVersion: "v1",
      kind: "Secret",
      metadata: {
        name: kubeconfigSecret({ namespace: this.namespace, name }).name,
        namespace: this.namespace,
        labels: { [CLUSTER_NAME_LABEL]: name },
      },
      type: "cluster.x-k8s.io/secret",
      data: { value: base64(kubeconfig) },
    };
    if (this.management.store.get(type, this.namespace, secret.metadata!.name!)) {
      this.management.store.update(type, secret);
    } else {
      this.management.store.create(type, secret);
    }
  }

  /** Rewrites a cluster's kubeconfig Secret from its current credentials. */
  refreshKubeconfigSecret(name: string): void {
    this.#writeSecret(name, this.cluster(name));
  }

  /** Sets a registered Cluster's infrastructure readiness. */
  setInfrastructureReady(name: string, ready: boolean): void {
    const current = this.management.store.get(this.#clusterType(), this.namespace, name);
    if (!current) throw new RangeError(`No Cluster object named "${name}"`);
    const status = structuredClone((current.status ?? {}) as Record<string, unknown>);
    status.initialization = {
      ...(status.initialization as Record<string, unknown> | undefined),
      infrastructureProvisioned: ready,
    };
    this.management.store.update(this.#clusterType(), { ...current, status }, {
      subresource: "status",
    });
  }

  /**
   * Deletes the Cluster object and creates it again at once under the same name, as CI systems that
   * re-create a cluster do: a new UID, the same spec, the kubeconfig Secret left as it is. With
   * `infrastructureReady: false`, the new one's infrastructure is not provisioned yet, as a new
   * Cluster's is not.
   */
  recreateClusterObject(name: string, options: { infrastructureReady?: boolean } = {}): void {
    const type = this.#clusterType();
    const current = this.management.store.get(type, this.namespace, name);
    if (!current) throw new RangeError(`No Cluster object named "${name}"`);
    this.management.store.delete(type, this.namespace, name);
    const { uid: _uid, resourceVersion: _rv, creationTimestamp: _at, ...metadata } = current
      .metadata!;
    const ready = options.infrastructureReady ?? true;
    const status = (current.status ?? {}) as Record<string, unknown>;
    const initialization = status.initialization as Record<string, unknown> | undefined;
    const created = ready ? current : {
      ...current,
      status: {
        ...status,
        initialization: { ...initialization, infrastructureProvisioned: false },
      },
    };
    this.management.store.create(type, { ...created, metadata }, { keepStatus: true });
  }

  /** Changes the labels of a registered Cluster. */
  setClusterLabels(name: string, labels: Record<string, string>): void {
    const current = this.management.store.get(this.#clusterType(), this.namespace, name);
    if (!current) throw new RangeError(`No Cluster object named "${name}"`);
    this.management.store.update(this.#clusterType(), {
      ...current,
      metadata: { ...current.metadata, labels },
    });
  }

  /**
   * Deletes a workload cluster: its Cluster object and Secret (when registered), then its server
   * (an external cluster's server is its own process's to stop).
   */
  async removeCluster(name: string): Promise<void> {
    const server = this.#external.delete(name) ? undefined : this.cluster(name);
    this.#clusters.delete(name);
    const owned = [[this.#clusterType(), name], [
      this.#secretType(),
      kubeconfigSecret({ namespace: this.namespace, name }).name,
    ]] as const;
    for (const [type, objectName] of owned) {
      if (this.management.store.get(type, this.namespace, objectName)) {
        this.management.store.delete(type, this.namespace, objectName);
      }
    }
    await server?.close();
  }

  /** The management cluster's kubeconfig. */
  managementKubeconfig(): string {
    return this.management.kubeconfig();
  }

  /** Stops every server. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([this.management.close(), ...this.clusters.map((c) => c.close())]);
    this.#clusters.clear();
  }

  /** Same as {@linkcode close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** Gives a fresh workload cluster a Node and two Pods, like a one-node cluster after bootstrap. */
export function seedWorkloadCluster(server: SimulatedApiServer): void {
  const node = BUILTIN_TYPES.find((t) => t.kind === "Node")!;
  const pod = BUILTIN_TYPES.find((t) => t.kind === "Pod")!;
  const nodeName = `${server.name}-control-plane`;
  server.store.create(node, {
    metadata: {
      name: nodeName,
      labels: { "node-role.kubernetes.io/control-plane": "", "kubernetes.io/hostname": nodeName },
    },
    spec: { providerID: `sim://${server.name}/${nodeName}` },
    status: {
      conditions: [{ type: "Ready", status: "True", reason: "KubeletReady" }],
      nodeInfo: { kubeletVersion: "v1.32.0" },
    },
  }, { keepStatus: true });
  for (const name of ["coredns", "kube-proxy"]) {
    server.store.create(pod, {
      metadata: { name: `${name}-${nodeName}`, namespace: "kube-system", labels: { app: name } },
      spec: { nodeName, containers: [{ name, image: `registry.k8s.io/${name}:v1.32.0` }] },
      status: { phase: "Running" },
    }, { keepStatus: true });
  }
}
