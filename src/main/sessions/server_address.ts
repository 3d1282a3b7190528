/**
 * Where a workload cluster's server name leads, checked on the main thread before a worker is
 * started for it: a name that resolves into a denied network (see `src/shared/networks.ts`) is
 * refused before anything is sent. Workers check the address each connection reached again.
 *
 * @module
 */

import { lookup as dnsLookup } from "node:dns/promises";
import { ClusterCacheError } from "../../shared/errors.ts";
import { bits, deniedAddress } from "../../shared/networks.ts";

/** Resolves a name to all its addresses (the system's resolver, `/etc/hosts` included). */
export type Lookup = (host: string) => Promise<string[]>;

const systemLookup: Lookup = async (host) =>
  (await dnsLookup(host, { all: true })).map((a) => a.address);

/**
 * Resolves `host` now and returns its addresses, unless any of them falls in a denied network (a
 * name that also resolves to a metadata address is not trusted at all).
 *
 * @throws {ClusterCacheError} `InvalidKubeconfig` for a denied address; `Unreachable` when the
 *   name does not resolve.
 */
export async function resolveAllowed(
  host: string,
  denied: readonly string[],
  lookup: Lookup = systemLookup,
): Promise<string[]> {
  const bare = host.replace(/^\[|\]$/g, "");
  const addresses = bits(bare) !== undefined ? [bare] : await lookup(bare).catch((error: Error) => {
    throw new ClusterCacheError("Unreachable", `cannot resolve ${bare}: ${error.message}`);
  });
  for (const address of addresses) {
    const network = deniedAddress(address, denied);
    if (network) {
      throw new ClusterCacheError(
        "InvalidKubeconfig",
        `the server ${bare}${
          address === bare ? "" : ` resolves to ${address}, which`
        } is in the denied network ${network} (link-local and cloud metadata addresses are refused; see options.deniedNetworks)`,
      );
    }
  }
  if (addresses.length === 0) {
    throw new ClusterCacheError("Unreachable", `cannot resolve ${bare}: no address`);
  }
  return addresses;
}
