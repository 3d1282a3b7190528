/**
 * Authentication of the simulated API server: a client certificate it issued (and has not revoked),
 * or one of its bearer tokens, as kube-apiserver's x509 and static-token authenticators do.
 *
 * @module
 */

import type { Exchange } from "./exchange.ts";

/** Who made a request, as authentication found them. */
export interface UserInfo {
  username: string;
  groups: string[];
}

/** A new bearer token (48 hex digits). */
export function randomToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(24));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Who sent a request: the certificate's subject (common name, organizations as groups), or the
 * administrator for a valid token; `undefined` when neither authenticates.
 *
 * @param fingerprints SHA-256 fingerprints of the valid client certificates.
 * @param tokens The valid bearer tokens.
 */
export function authenticate(
  exchange: Exchange,
  fingerprints: ReadonlySet<string>,
  tokens: ReadonlySet<string>,
): UserInfo | undefined {
  const peer = exchange.connection.peer;
  if (
    peer.authorized && peer.fingerprint256 && fingerprints.has(peer.fingerprint256)
  ) {
    return {
      username: peer.commonName ?? "client",
      groups: [...(peer.organizations ?? []), "system:authenticated"],
    };
  }
  const authorization = exchange.headers.get("authorization");
  if (
    authorization?.startsWith("Bearer ") && tokens.has(authorization.slice(7).trim())
  ) {
    // The simulator's token stands for its administrator, as the admin certificate does.
    return {
      username: "kubernetes-admin-token",
      groups: ["system:masters", "system:authenticated"],
    };
  }
  return undefined;
}
