import assert from "node:assert/strict";
import { kubeconfigFromSecret } from "../src/main/reconcile/accessor.ts";
import { ClusterCacheError } from "../src/shared/errors.ts";
import {
  checkClientCertificate,
  checkUntrustedKubeconfig,
  kubeConfigFromRESTConfig,
  kubeconfigHash,
  parseKubeconfig,
  restTargetFromKubeConfig,
} from "../src/main/management/kubeconfig.ts";
import { createCertificateAuthority, issueCertificate } from "../testing/sim/certs.ts";
import { renderKubeconfig } from "../testing/sim/kubeconfig.ts";
import { b64, kubeconfigText } from "./helpers/kubeconfig_text.ts";

const SECRET = "SECRET-MARKER-7f3a";
const ca = await createCertificateAuthority("kubeconfig-test");
const client = await issueCertificate(ca, { subject: "CN=admin" });

function kubeconfig(user: Record<string, unknown>, cluster: Record<string, unknown> = {}): string {
  return kubeconfigText(ca.certPem, user, cluster);
}

function rejects(text: string, message: RegExp, options?: { allowTokenFile?: boolean }): void {
  assert.throws(
    () => restTargetFromKubeConfig(parseKubeconfig(text), options),
    (error: unknown) => {
      assert.ok(error instanceof ClusterCacheError, String(error));
      assert.equal(error.code, "InvalidKubeconfig");
      assert.match(error.message, message);
      assert.ok(!error.message.includes(SECRET), "the message must not quote the kubeconfig");
      return true;
    },
  );
}

Deno.test("a certificate kubeconfig becomes a REST target with PEM credentials", () => {
  const text = renderKubeconfig({
    name: "c",
    server: "https://127.0.0.1:6443",
    caPem: ca.certPem,
    user: { clientCertificatePem: client.certPem, clientKeyPem: client.keyPem },
  });
  const target = restTargetFromKubeConfig(parseKubeconfig(text));
  assert.equal(target.server, "https://127.0.0.1:6443");
  assert.equal(target.caPem, ca.certPem);
  assert.equal(target.clientCertificatePem, client.certPem);
  assert.equal(target.clientKeyPem, client.keyPem);
  assert.equal(target.token, undefined);
});

Deno.test("malformed YAML is refused without echoing the file", () => {
  rejects(
    `apiVersion: v1\nusers:\n- name: u\n  user:\n    token: ${SECRET}\n   bad: [indent\n`,
    /error parsing kubeconfig: invalid YAML/,
  );
  rejects("   ", /the kubeconfig is empty/);
  rejects(`- just\n- a list ${SECRET}`, /error parsing kubeconfig/);
});

/** Asserts that the untrusted-kubeconfig check refuses `text`, quoting nothing from it. */
function checkRefuses(text: string, message: RegExp): void {
  assert.throws(
    () => checkUntrustedKubeconfig(text),
    (error: unknown) => {
      assert.ok(error instanceof ClusterCacheError, String(error));
      assert.equal(error.code, "InvalidKubeconfig");
      assert.match(error.message, message);
      assert.ok(!error.message.includes(SECRET), `quoted the kubeconfig: ${error.message}`);
      return true;
    },
  );
}

Deno.test("a file reference is refused however the YAML spells it, as client-node would read it", () => {
  const head = "apiVersion: v1\nkind: Config\n";
  const field = /users\[0\]\.user\.token-file is not allowed/;
  const spellings = [
    `users:\n- name: u\n  user:\n    "token-file": /tmp/${SECRET}\n`,
    `users:\n- name: u\n  user:\n    ? token-file\n    : /tmp/${SECRET}\n`,
    `users: [{name: u, user: {token-file: /tmp/${SECRET}}}]\n`,
    `users:\n- name: u\n  user:\n    !!str token-file: /tmp/${SECRET}\n`,
    `anchor: &who {token-file: /tmp/${SECRET}}\nusers:\n- name: u\n  user: *who\n`,
    // More than 100 aliases: the yaml package gave up on such a document (and the check let it
    // through) while client-node's js-yaml read it, token-file and all.
    `x: &z 1\ny: [${Array(101).fill("*z").join(", ")}]\n` +
    `users:\n- name: u\n  user:\n    token-file: /tmp/${SECRET}\n`,
  ];
  for (const text of spellings) checkRefuses(head + text, field);
});

Deno.test("YAML the check cannot read is refused by it, naming no alias or tag from the file", () => {
  const cases = [
    `users:\n- name: u\n  user:\n    token: *${SECRET}\n`,
    `users:\n- name: u\n  user:\n    token: !${SECRET} abc\n`,
    `users:\n- name: u\n  user:\n    token: !<${SECRET}> abc\n`,
    `users:\n- name: u\n  user:\n    token: ${SECRET}\n   bad: [indent\n`,
  ];
  for (const text of cases) {
    checkRefuses(text, /^error parsing kubeconfig: invalid YAML \([\w ,.-]+ at line \d+\)$/);
    rejects(text, /^error parsing kubeconfig: invalid YAML/);
  }
});

Deno.test("a kubeconfig without current-context is refused", () => {
  const text = JSON.parse(kubeconfig({ token: SECRET }));
  delete text["current-context"];
  rejects(JSON.stringify(text), /^error parsing kubeconfig: no current-context$/);
});

Deno.test("exec and auth-provider users are refused with Cluster API's messages", () => {
  rejects(
    kubeconfig({
      exec: { command: "aws", args: [SECRET], apiVersion: "client.authentication.k8s.io/v1" },
    }),
    /^ExecProvider is not supported in ClusterCache$/,
  );
  rejects(
    kubeconfig({ "auth-provider": { name: "oidc", config: { "id-token": SECRET } } }),
    /^AuthProvider is not supported in ClusterCache$/,
  );
});

Deno.test("insecure-skip-tls-verify, tls-server-name, http and basic auth are refused", () => {
  rejects(
    kubeconfig({ token: SECRET }, { "insecure-skip-tls-verify": true }),
    /insecure-skip-tls-verify is not supported/,
  );
  rejects(
    kubeconfig({ token: SECRET }, { "tls-server-name": "other" }),
    /tls-server-name is not supported/,
  );
  rejects(
    kubeconfig({ token: SECRET }, { server: "http://127.0.0.1:8080" }),
    /only https is supported/,
  );
  rejects(kubeconfig({ username: "admin", password: SECRET }), /basic authentication/);
});

Deno.test("half a client certificate, bad base64 and non-PEM data are refused", () => {
  rejects(kubeconfig({ "client-certificate-data": b64(client.certPem) }), /needs both/);
  rejects(
    kubeconfig({ "client-certificate-data": "%%%", "client-key-data": "%%%" }),
    /not valid base64/,
  );
  rejects(
    kubeconfig({ "client-certificate-data": b64(SECRET), "client-key-data": b64(client.keyPem) }),
    /is not a PEM certificate/,
  );
  rejects(
    kubeconfig({ token: "t" }, { "certificate-authority-data": b64(SECRET) }),
    /certificate-authority-data is not a PEM certificate/,
  );
});

Deno.test("expired and not-yet-valid client certificates are refused naming the date", async () => {
  const expired = await issueCertificate(ca, {
    subject: "CN=old",
    notBefore: new Date("2020-01-01"),
    notAfter: new Date("2021-01-01"),
  });
  const future = await issueCertificate(ca, {
    subject: "CN=new",
    notBefore: new Date(Date.now() + 86_400_000),
  });
  rejects(
    kubeconfig({
      "client-certificate-data": b64(expired.certPem),
      "client-key-data": b64(expired.keyPem),
    }),
    /expired on 2021-01-01/,
  );
  rejects(
    kubeconfig({
      "client-certificate-data": b64(future.certPem),
      "client-key-data": b64(future.keyPem),
    }),
    /not valid before/,
  );
});

Deno.test("checkClientCertificate() refuses X.509 v1 certificates", () => {
  // Strip the explicit [0] version from a v3 certificate's DER: what remains is shaped like v1.
  const der = Uint8Array.from(
    atob(client.certPem.replace(/-----[^-]+-----|\s/g, "")),
    (c) => c.charCodeAt(0),
  );
  const header = (at: number) => (der[at + 1]! & 0x80 ? 2 + (der[at + 1]! & 0x7f) : 2);
  const tbs = header(0);
  const version = tbs + header(tbs);
  assert.equal(der[version], 0xa0);
  const v1 = new Uint8Array([...der.slice(0, version), ...der.slice(version + 5)]);
  const pem = `-----BEGIN CERTIFICATE-----\n${
    btoa(String.fromCharCode(...v1))
  }\n-----END CERTIFICATE-----\n`;
  assert.throws(() => checkClientCertificate(pem), /X.509 v1/);
});

Deno.test("the tokenFile auth provider (in-cluster) is read only when allowed", async () => {
  const file = await Deno.makeTempFile();
  try {
    await Deno.writeTextFile(file, "file-token\n");
    const text = kubeconfig({
      "auth-provider": { name: "tokenFile", config: { tokenFile: file } },
    });
    rejects(text, /AuthProvider is not supported/);
    assert.equal(
      restTargetFromKubeConfig(parseKubeconfig(text), { allowTokenFile: true }).token,
      "file-token",
    );
  } finally {
    await Deno.remove(file);
  }
});

Deno.test("kubeConfigFromRESTConfig() round-trips the connection settings", () => {
  const rest = {
    server: "https://127.0.0.1:6443",
    caPem: ca.certPem,
    clientCertificatePem: client.certPem,
    clientKeyPem: client.keyPem,
    userAgent: "t",
    timeoutMs: 1,
    qps: 1,
    burst: 1,
  };
  const { userAgent: _u, timeoutMs: _t, qps: _q, burst: _b, ...target } = rest;
  assert.deepEqual(restTargetFromKubeConfig(kubeConfigFromRESTConfig(rest, "c")), target);
});

Deno.test("kubeconfigFromSecret() names a missing Secret or key exactly", () => {
  assert.throws(() => kubeconfigFromSecret(undefined, "w-kubeconfig"), {
    message:
      'error creating REST config: error getting kubeconfig secret: Secret "w-kubeconfig" not found',
  });
  assert.throws(() => kubeconfigFromSecret({ data: {} }, "w-kubeconfig"), {
    message: 'error creating REST config: missing key "value" in secret data',
  });
  assert.equal(kubeconfigFromSecret({ data: { value: btoa("hello") } }, "x"), "hello");
});

Deno.test("kubeconfigHash() changes with the content", () => {
  assert.equal(kubeconfigHash("a"), kubeconfigHash("a"));
  assert.notEqual(kubeconfigHash("a"), kubeconfigHash("b"));
  // SHA-256 of "abc" (FIPS 180-2's first example): the hash is the standard one.
  assert.equal(
    kubeconfigHash("abc"),
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
  );
});
