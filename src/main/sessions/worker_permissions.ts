/**
 * The Deno permissions of cluster workers (main thread): least privilege, unless the application
 * asked workers to inherit its own.
 *
 * @module
 */

import type { RESTConfig } from "../../shared/rest_config.ts";
import type { PermissionOptions } from "../options.ts";
import type { WorkerPermissions } from "./session.ts";

function hostPort(url: string): string {
  const u = new URL(url);
  return `${u.hostname}:${u.port || (u.protocol === "http:" ? "80" : "443")}`;
}

/**
 * Least privilege: network access to the cluster's API server (and its proxy, and the in-cluster
 * address) only; reads only where the cache's modules live; nothing else. A pooled worker serves
 * many API servers, so its network access is not limited (the rest still is).
 *
 * @param pooled Whether the worker is shared by a pool.
 */
export function workerPermissions(
  rest: RESTConfig,
  options: PermissionOptions,
  pooled: boolean,
): WorkerPermissions {
  if (options.workerPermissions === "inherit") return "inherit";
  const net = new Set([hostPort(rest.server)]);
  if (rest.proxyUrl) net.add(hostPort(rest.proxyUrl));
  if (options.inClusterConfig) net.add(hostPort(options.inClusterConfig.server));
  const { readDirs, importHosts } = options.moduleAccess;
  return {
    net: pooled ? true : [...net],
    read: [...readDirs],
    import: importHosts.length > 0 ? importHosts : false,
    env: false,
    write: false,
    run: false,
    ffi: false,
    sys: false,
  };
}
