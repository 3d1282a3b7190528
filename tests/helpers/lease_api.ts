/**
 * A {@linkcode LeaseApi} over HTTP to an API server (the simulator's management cluster), for
 * tests of the shard coordinator; `partitioned` makes every call fail as a lost network would.
 */
import { KubernetesApiError } from "../../src/shared/errors.ts";
import type { Lease, LeaseApi } from "../../src/main/sharding/shard_coordinator.ts";
import { type HttpServerLike, SimHttp } from "./sim_http.ts";

const LEASES = "/apis/coordination.k8s.io/v1/namespaces";

/** Leases over HTTP; `partitioned` refuses every call. */
export class HttpLeaseApi implements LeaseApi, Disposable {
  readonly #http: SimHttp;
  partitioned = false;

  constructor(server: HttpServerLike) {
    this.#http = new SimHttp(server);
  }

  async #call(
    method: string,
    path: string,
    signal: AbortSignal,
    body?: unknown,
  ): Promise<Record<string, unknown>> {
    if (this.partitioned) throw new TypeError("error sending request: connection refused");
    const answer = await this.#http.request(method, path, {
      ...(body === undefined ? {} : { body }),
      signal,
    });
    if (answer.status >= 300) throw new KubernetesApiError(answer.json as never);
    return answer.json as Record<string, unknown>;
  }

  async list(namespace: string, labelSelector: string, signal: AbortSignal): Promise<Lease[]> {
    const selector = encodeURIComponent(labelSelector);
    const list = await this.#call(
      "GET",
      `${LEASES}/${namespace}/leases?labelSelector=${selector}`,
      signal,
    );
    return list.items as Lease[];
  }

  async get(namespace: string, name: string, signal: AbortSignal): Promise<Lease | undefined> {
    try {
      return await this.#call("GET", `${LEASES}/${namespace}/leases/${name}`, signal);
    } catch (error) {
      if (error instanceof KubernetesApiError && error.code === 404) return undefined;
      throw error;
    }
  }

  async create(lease: Lease, signal: AbortSignal): Promise<Lease> {
    const ns = lease.metadata!.namespace!;
    return await this.#call("POST", `${LEASES}/${ns}/leases`, signal, lease);
  }

  async update(lease: Lease, signal: AbortSignal): Promise<Lease> {
    const { namespace, name } = lease.metadata!;
    return await this.#call("PUT", `${LEASES}/${namespace}/leases/${name}`, signal, lease);
  }

  async delete(lease: Lease, signal: AbortSignal): Promise<void> {
    const { namespace, name, resourceVersion } = lease.metadata!;
    await this.#call("DELETE", `${LEASES}/${namespace}/leases/${name}`, signal, {
      kind: "DeleteOptions",
      apiVersion: "v1",
      ...(resourceVersion ? { preconditions: { resourceVersion } } : {}),
    });
  }

  [Symbol.dispose](): void {
    this.#http.close();
  }
}
