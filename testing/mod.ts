/**
 * Test helpers for operators built on clustercache, and the simulated fleet API server the project
 * tests against: one process serving a management cluster and many workload clusters on 127.0.0.1,
 * each with its own CA, client-certificate and token authentication, real list/watch semantics and
 * a fault switchboard.
 *
 * @example A fleet of two workload clusters
 * ```ts
 * import { SimulatedFleet } from "./mod.ts";
 *
 * await using fleet = await SimulatedFleet.start({ clusters: 2 });
 * const cluster = fleet.cluster("workload-1");
 * await cluster.hang(true); // a hung API server, for a while
 * await cluster.hang(false);
 * ```
 *
 * @module
 */

export { type ConnectedCache, connectedCache } from "./connected_cache.ts";
export { FakeClient, type FakeClientOptions, type FakeKind } from "./fake_client.ts";
export { FakeClusterCache, type FakeClusterCacheOptions } from "./fake_cluster_cache.ts";
export { type AdminOptions, type AdminServer, serveAdmin } from "./sim/admin_server.ts";
export {
  type ClusterCredentials,
  type FaultSettings,
  type ListenerState,
  type OpenConnection,
  type RequestRecord,
  SimulatedApiServer,
  type SimulatedApiServerOptions,
} from "./sim/api_server.ts";
export type { IssuedCertificate } from "./sim/certs.ts";
export type { ManagedFieldsEntry } from "./sim/field_manager.ts";
export { type AddClusterOptions, SimulatedFleet, type SimulatedFleetOptions } from "./sim/fleet.ts";
export type {
  DeletePreconditions,
  ObjectStore,
  StoreEvent,
  StoreWriteOptions,
} from "./sim/object_store.ts";
export { BUILTIN_TYPES, CLUSTER_TYPE, type ResourceType } from "./sim/resource_types.ts";
