/**
 * A {@linkcode LeaseApi} over HTTP to an API server (the simulator's management cluster), for
 * tests of the shard coordinator; `partition()` makes every call fail as a lost network would.
 */
import { KubernetesApiError } from "../../src/shared/errors.ts";
import { type Lease, LEASE_LABEL, type LeaseApi } from "../../src/main/shard_coordinator.ts";
import { type HttpServerLike, SimHttp } from "./sim_http.ts";

/** Leases over HTTP; `partitioned` refuses every call. */
export class HttpLeaseApi implements LeaseApi, Disposable {
  readonly #http: SimHttp;
  partitioned = false;

  constructor(server: HttpServerLike) {
    this.#http = new SimHttp(server);
  }

  async #call(method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
    if (this.partitioned) throw new TypeError("error sending request: connection refused");
    const answer = await this.#http.request(method, path, body === undefined ? {} : { body });
    if (answer.status >= 300) throw new KubernetesApiError(answer.json as never);
    return answer.json as Record<string, unknown>;
  }

  async list(namespace: string): Promise<Lease[]> {
    const list = await this.#call(
      "GET",
      `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases?labelSelector=${LEASE_LABEL}`,
    );
    return list.items as Lease[];
  }

  async create(lease: Lease): Promise<Lease> {
    const ns = lease.metadata!.namespace!;
    return await this.#call("POST", `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases`, lease);
  }

  async update(lease: Lease): Promise<Lease> {
    const { namespace, name } = lease.metadata!;
    return await this.#call(
      "PUT",
      `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases/${name}`,
      lease,
    );
  }

  [Symbol.dispose](): void {
    this.#http.close();
  }
}
