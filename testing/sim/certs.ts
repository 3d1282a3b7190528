/**
 * Certificates for the simulated API servers: one CA per cluster, a serving certificate for loopback
 * and client certificates for authentication. ECDSA P-256 keeps generation cheap enough for a
 * thousand clusters; every certificate is X.509 v3 (`Deno.createHttpClient` rejects v1).
 *
 * @module
 */

import "reflect-metadata";
import * as x509 from "@peculiar/x509";

x509.cryptoProvider.set(crypto);

const ALGORITHM = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;
const DAY = 86_400_000;

/** A certificate authority: its certificate in PEM and the key that signs with it. */
export interface CertificateAuthority {
  readonly certPem: string;
  readonly cert: x509.X509Certificate;
  readonly keys: CryptoKeyPair;
}

/**
 * A certificate and its private key, both PEM.
 *
 * @example An expired client certificate, for testing how a client reports it
 * ```ts
 * import assert from "node:assert/strict";
 * import { type IssuedCertificate, SimulatedApiServer } from "@fleetkit/clustercache/testing";
 *
 * await using server = await SimulatedApiServer.start({ name: "edge-1" });
 * const expired: IssuedCertificate = await server.issueClientCertificate({
 *   notBefore: new Date(Date.now() - 2 * 86_400_000),
 *   notAfter: new Date(Date.now() - 86_400_000),
 * });
 * assert.match(expired.certPem, /^-----BEGIN CERTIFICATE-----/);
 * assert.match(expired.fingerprint256, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
 * ```
 */
export interface IssuedCertificate {
  /** The certificate (PEM). */
  readonly certPem: string;
  /** Its private key (PKCS #8 PEM). */
  readonly keyPem: string;
  /** SHA-256 fingerprint of the DER certificate, upper-case hex with colons (as Node reports it). */
  readonly fingerprint256: string;
}

/** Options for {@linkcode issueCertificate}. */
export interface IssueOptions {
  /** Distinguished name, e.g. `CN=admin,O=system:masters`. */
  subject: string;
  /** Server certificates get these SANs; client certificates have none. */
  serverNames?: { dns?: string[]; ips?: string[] };
  /** Validity start; defaults to an hour ago. */
  notBefore?: Date;
  /** Validity end; defaults to a year from now. */
  notAfter?: Date;
}

function serialNumber(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[0] = bytes[0]! & 0x7f; // positive
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function fingerprint(cert: x509.X509Certificate): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", cert.rawData));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0").toUpperCase()).join(":");
}

/**
 * Creates a self-signed certificate authority.
 *
 * @param commonName The CA's common name (include the cluster and a generation so CAs differ).
 * @returns The authority.
 */
export async function createCertificateAuthority(
  commonName: string,
): Promise<CertificateAuthority> {
  const keys = await crypto.subtle.generateKey(ALGORITHM, true, ["sign", "verify"]);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name: `CN=${commonName}`,
    notBefore: new Date(Date.now() - 3_600_000),
    notAfter: new Date(Date.now() + 3650 * DAY),
    keys,
    signingAlgorithm: ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign |
          x509.KeyUsageFlags.digitalSignature,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString("pem"), cert, keys };
}

/**
 * Issues a certificate signed by `ca`: a serving certificate when `serverNames` is given, a client
 * certificate otherwise.
 *
 * @param ca The signing authority.
 * @param options Subject, SANs and validity.
 * @returns The certificate, its key and fingerprint.
 */
export async function issueCertificate(
  ca: CertificateAuthority,
  options: IssueOptions,
): Promise<IssuedCertificate> {
  const keys = await crypto.subtle.generateKey(ALGORITHM, true, ["sign", "verify"]);
  const server = options.serverNames !== undefined;
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension([
      server ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth,
    ]),
    await x509.AuthorityKeyIdentifierExtension.create(ca.cert, false),
  ];
  if (server) {
    extensions.push(
      new x509.SubjectAlternativeNameExtension([
        ...(options.serverNames?.dns ?? []).map((value) => ({ type: "dns" as const, value })),
        ...(options.serverNames?.ips ?? []).map((value) => ({ type: "ip" as const, value })),
      ]),
    );
  }
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(),
    subject: options.subject,
    issuer: ca.cert.subject,
    notBefore: options.notBefore ?? new Date(Date.now() - 3_600_000),
    notAfter: options.notAfter ?? new Date(Date.now() + 365 * DAY),
    publicKey: keys.publicKey,
    signingKey: ca.keys.privateKey,
    signingAlgorithm: ALGORITHM,
    extensions,
  });
  const pkcs8 = await crypto.subtle.exportKey("pkcs8", keys.privateKey);
  return {
    certPem: cert.toString("pem"),
    keyPem: x509.PemConverter.encode(pkcs8, "PRIVATE KEY"),
    fingerprint256: await fingerprint(cert),
  };
}
