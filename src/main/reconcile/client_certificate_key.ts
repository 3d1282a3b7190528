/**
 * The key pair a cluster's client certificates are signed with (Cluster API's
 * `GetClientCertificatePrivateKey`): RSA-2048, made once per cluster. Main thread.
 *
 * @module
 */

/**
 * Makes a new RSA-2048 key pair (RSASSA-PKCS1-v1_5, SHA-256), extractable so it can sign and be
 * exported.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { generateClientCertificateKey } from "./client_certificate_key.ts";
 * const keys = await generateClientCertificateKey();
 * assert.equal((keys.privateKey.algorithm as RsaHashedKeyAlgorithm).modulusLength, 2048);
 * ```
 */
export function generateClientCertificateKey(): Promise<CryptoKeyPair> {
  return crypto.subtle.generateKey(
    {
      name: "RSASSA-PKCS1-v1_5",
      modulusLength: 2048,
      publicExponent: new Uint8Array([1, 0, 1]),
      hash: "SHA-256",
    },
    true,
    ["sign", "verify"],
  );
}
