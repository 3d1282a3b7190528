/**
 * Main thread (tests): a fleet of real kube-apiservers, the counterpart of the simulated fleet. One
 * embedded etcd serves a management API server and N workload API servers, each a process of the
 * `realfleet` Go program with its own etcd prefix, CA, serving certificate and admin client
 * certificate, on 127.0.0.1. The management server has Cluster API's `Cluster` CRD (v1beta2 stored,
 * v1beta1 served, status subresource; a schema of our own), a `Cluster` and a `<name>-kubeconfig`
 * Secret per workload cluster.
 *
 * Faults are real: a stopped process refuses connections and, restarted on the same etcd prefix,
 * continues its resourceVersions; SIGSTOP hangs it; compacting etcd makes old resourceVersions 410;
 * deleting the ServiceAccount behind a token kubeconfig makes it 401.
 *
 * The processes end by themselves when the process that started them dies.
 *
 * @module
 */

import type { ClusterCredentials } from "../sim/api_server.ts";
import { createCertificateAuthority, issueCertificate } from "../sim/certs.ts";
import { realfleetBinary } from "./build.ts";

/** Options of {@linkcode RealFleet.start}. */
export interface RealFleetOptions {
  /** Workload clusters. Default 2. */
  clusters?: number;
  /**
   * The Kubernetes release of every API server: a minor (`"1.31"`) or an exact release. Default
   * the newest (see `KUBERNETES_RELEASES` in `build.ts`).
   */
  kubernetes?: string;
  /** Releases of single workload clusters, by index from 1 (a fleet mid-upgrade); the rest use `kubernetes`. */
  workloadKubernetes?: Record<number, string>;
  /** Where certificates, kubeconfigs, etcd data and logs go. Default: a new temporary directory. */
  dir?: string;
  /** How kubeconfig Secrets authenticate: the admin client certificate, or a ServiceAccount token. */
  kubeconfigAuth?: "certificate" | "token";
  /** Receives progress lines (builds, start-up). */
  progress?: (line: string) => void;
  /**
   * kube-apiserver's `--goaway-chance` for the workload clusters: the probability (at most 0.02)
   * that an HTTP/2 request other than a watch gets a GOAWAY after its response. Default 0.
   */
  goAwayChance?: number;
}

const NAMESPACE = "default";
const TOKEN_ACCOUNT = { namespace: "kube-system", name: "clustercache" };

function base64(text: string): string {
  return btoa(String.fromCharCode(...new TextEncoder().encode(text)));
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

async function pipeToFile(stream: ReadableStream<Uint8Array>, path: string): Promise<void> {
  const file = await Deno.open(path, { write: true, create: true, append: true });
  await stream.pipeTo(file.writable).catch(() => {});
}

/** Reads a process's stdout until a line starting with `ready `; the rest goes to `log`. */
async function readyLine(
  child: Deno.ChildProcess,
  log: string,
  timeoutMs: number,
): Promise<string> {
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const timer = setTimeout(() => reader.cancel().catch(() => {}), timeoutMs);
  let text = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`no ready line within ${timeoutMs} ms; see ${log}`);
      text += value;
      const line = text.split("\n").find((l) => l.startsWith("ready "));
      if (line) return line.slice("ready ".length).trim();
    }
  } finally {
    clearTimeout(timer);
    reader.releaseLock();
  }
}

/** An error answer of a real API server. */
export class RealApiError extends Error {
  /** HTTP status. */
  readonly status: number;
  /** The response body (a Status, usually). */
  readonly body: unknown;

  /** Creates the error. */
  constructor(method: string, path: string, status: number, body: unknown) {
    super(
      `${method} ${path}: HTTP ${status} ${(JSON.stringify(body) ?? "(no body)").slice(0, 300)}`,
    );
    this.status = status;
    this.body = body;
  }
}

/** One kube-apiserver process of the fleet. */
export class RealApiServer {
  /** The cluster's name (`management`, `workload-1`, ...). */
  readonly name: string;
  /** Its HTTPS port on 127.0.0.1. */
  readonly port: number;
  /** The CA that signed its serving and client certificates (PEM). */
  readonly caPem: string;
  /** The admin client certificate (`system:masters`). */
  readonly admin: { certPem: string; keyPem: string };
  readonly #args: string[];
  readonly #binary: string;
  readonly #log: string;
  readonly #client: Deno.HttpClient;
  #child: Deno.ChildProcess | undefined;
  #output: Promise<unknown> | undefined;
  #hung = false;

  /** Use {@linkcode RealFleet.start}. */
  constructor(
    name: string,
    port: number,
    caPem: string,
    admin: { certPem: string; keyPem: string },
    binary: string,
    args: string[],
    log: string,
  ) {
    this.name = name;
    this.port = port;
    this.caPem = caPem;
    this.admin = admin;
    this.#binary = binary;
    this.#args = args;
    this.#log = log;
    this.#client = Deno.createHttpClient({
      caCerts: [caPem],
      cert: admin.certPem,
      key: admin.keyPem,
    });
  }

  /** `https://127.0.0.1:<port>`. */
  get url(): string {
    return `https://127.0.0.1:${this.port}`;
  }

  /** Its admin credentials, in the simulator's shape (no token: the admin uses its certificate). */
  credentials(): ClusterCredentials {
    return {
      caPem: this.caPem,
      clientCertificatePem: this.admin.certPem,
      clientKeyPem: this.admin.keyPem,
      token: "",
    };
  }

  /** The process id while it runs. */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** Starts the process and waits until `/readyz` answers 200. */
  async start(timeoutMs = 180_000): Promise<void> {
    if (this.#child) return;
    const child = new Deno.Command(this.#binary, {
      args: ["apiserver", ...this.#args],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#child = child;
    this.#output = Promise.all([
      pipeToFile(child.stdout, this.#log),
      pipeToFile(child.stderr, this.#log),
    ]);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const exited = await Promise.race([
        child.status.then((s) => s),
        new Promise<undefined>((r) => setTimeout(() => r(undefined), 250)),
      ]);
      if (exited) {
        this.#child = undefined;
        const tail = (await Deno.readTextFile(this.#log).catch(() => "")).slice(-2_000);
        throw new Error(`kube-apiserver ${this.name} exited with ${exited.code}:\n${tail}`);
      }
      try {
        const response = await fetch(`${this.url}/readyz`, {
          client: this.#client,
          signal: AbortSignal.timeout(5_000),
        });
        await response.body?.cancel();
        if (response.ok) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        await this.stop();
        throw new Error(
          `kube-apiserver ${this.name} not ready after ${timeoutMs} ms; see ${this.#log}`,
        );
      }
    }
  }

  /** Stops the process (SIGTERM, then SIGKILL after 10 s); a hung one is woken first. */
  async stop(): Promise<void> {
    const child = this.#child;
    if (!child) return;
    this.#child = undefined;
    if (this.#hung) this.#signal(child, "SIGCONT");
    this.#hung = false;
    this.#signal(child, "SIGTERM");
    const killer = setTimeout(() => this.#signal(child, "SIGKILL"), 10_000);
    await child.status;
    clearTimeout(killer);
    await this.#output;
  }

  /** Hangs the process (SIGSTOP): connections are accepted by the kernel and never answered. */
  hang(hung: boolean): void {
    if (!this.#child || this.#hung === hung) return;
    this.#hung = hung;
    this.#signal(this.#child, hung ? "SIGSTOP" : "SIGCONT");
  }

  #signal(child: Deno.ChildProcess, signal: Deno.Signal): void {
    try {
      child.kill(signal);
    } catch {
      // already gone
    }
  }

  /**
   * Sends a request as the admin and parses the JSON answer.
   *
   * @throws {RealApiError} For a non-2xx answer.
   */
  async request<T = Record<string, unknown>>(
    method: string,
    path: string,
    body?: unknown,
    contentType = "application/json",
  ): Promise<T> {
    const response = await fetch(`${this.url}${path}`, {
      method,
      client: this.#client,
      headers: body === undefined ? {} : { "content-type": contentType },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await response.text();
    const parsed = text ? JSON.parse(text) : undefined;
    if (!response.ok) throw new RealApiError(method, path, response.status, parsed);
    return parsed as T;
  }

  /** A kubeconfig for this server: the admin certificate, or a bearer token. */
  kubeconfig(auth: { token: string } | "certificate" = "certificate"): string {
    const user = auth === "certificate"
      ? {
        "client-certificate-data": base64(this.admin.certPem),
        "client-key-data": base64(this.admin.keyPem),
      }
      : { token: auth.token };
    return JSON.stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: [{
        name: this.name,
        cluster: { server: this.url, "certificate-authority-data": base64(this.caPem) },
      }],
      users: [{ name: `${this.name}-admin`, user }],
      contexts: [{ name: this.name, context: { cluster: this.name, user: `${this.name}-admin` } }],
      "current-context": this.name,
    });
  }

  /** Releases the admin HTTP client (the process is stopped separately). */
  dispose(): void {
    this.#client.close();
  }
}

/** The Cluster CRD: v1beta2 stored, v1beta1 served, status subresource, schema left open. */
const CLUSTER_CRD = {
  apiVersion: "apiextensions.k8s.io/v1",
  kind: "CustomResourceDefinition",
  metadata: { name: "clusters.cluster.x-k8s.io" },
  spec: {
    group: "cluster.x-k8s.io",
    names: { kind: "Cluster", listKind: "ClusterList", plural: "clusters", singular: "cluster" },
    scope: "Namespaced",
    versions: ["v1beta2", "v1beta1"].map((name) => ({
      name,
      served: true,
      storage: name === "v1beta2",
      subresources: { status: {} },
      schema: {
        openAPIV3Schema: {
          type: "object",
          properties: {
            spec: { type: "object", "x-kubernetes-preserve-unknown-fields": true },
            status: { type: "object", "x-kubernetes-preserve-unknown-fields": true },
          },
        },
      },
    })),
  },
};

/** A management API server and workload API servers, all real. */
export class RealFleet implements AsyncDisposable {
  /** The management cluster's API server. */
  readonly management: RealApiServer;
  /** The workload clusters' API servers. */
  readonly clusters: readonly RealApiServer[];
  /** The fleet's directory. */
  readonly dir: string;
  /** The etcd client URL. */
  readonly etcdUrl: string;
  readonly #etcd: Deno.ChildProcess;
  readonly #etcdOutput: Promise<unknown>;
  readonly #removeDir: boolean;
  readonly #auth: "certificate" | "token";

  private constructor(
    management: RealApiServer,
    clusters: RealApiServer[],
    dir: string,
    etcd: { child: Deno.ChildProcess; url: string; output: Promise<unknown> },
    removeDir: boolean,
    auth: "certificate" | "token",
  ) {
    this.management = management;
    this.clusters = clusters;
    this.dir = dir;
    this.etcdUrl = etcd.url;
    this.#etcd = etcd.child;
    this.#etcdOutput = etcd.output;
    this.#removeDir = removeDir;
    this.#auth = auth;
  }

  /**
   * Builds the program if needed, starts etcd and the API servers, installs the Cluster CRD and
   * registers every workload cluster.
   */
  static async start(options: RealFleetOptions = {}): Promise<RealFleet> {
    const progress = options.progress ?? (() => {});
    const binary = await realfleetBinary(progress, options.kubernetes);
    const names = [
      "management",
      ...Array.from({ length: options.clusters ?? 2 }, (_, i) => `workload-${i + 1}`),
    ];
    // Every build (minutes, and it can fail) before any process starts: a failure leaves nothing running.
    const binaries = new Map<string, string>();
    const serverBinaries: string[] = [];
    for (const [i] of names.entries()) {
      const release = i === 0 ? undefined : options.workloadKubernetes?.[i];
      if (release !== undefined && !binaries.has(release)) {
        binaries.set(release, await realfleetBinary(progress, release));
      }
      serverBinaries.push(release === undefined ? binary : binaries.get(release)!);
    }
    const removeDir = options.dir === undefined;
    const dir = options.dir ?? await Deno.makeTempDir({ prefix: "realfleet-" });
    await Deno.mkdir(dir, { recursive: true });
    const etcdLog = `${dir}/etcd.log`;
    const child = new Deno.Command(binary, {
      args: ["etcd", "--dir", `${dir}/etcd`],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const stderr = pipeToFile(child.stderr, etcdLog);
    let url: string;
    try {
      url = await readyLine(child, etcdLog, 60_000);
    } catch (error) {
      child.kill("SIGKILL");
      await child.status;
      throw error;
    }
    const etcd = { child, url, output: stderr };
    const servers = await Promise.all(
      names.map((name, i) =>
        RealFleet.#server(
          serverBinaries[i]!,
          dir,
          name,
          url,
          name === "management" ? 0 : options.goAwayChance,
        )
      ),
    );
    const fleet = new RealFleet(
      servers[0]!,
      servers.slice(1),
      dir,
      etcd,
      removeDir,
      options.kubeconfigAuth ?? "certificate",
    );
    try {
      const started = performance.now();
      progress(`starting ${servers.length} kube-apiservers...`);
      await Promise.all(servers.map((server) => server.start()));
      progress(`kube-apiservers ready in ${Math.round((performance.now() - started) / 1000)} s`);
      await fleet.#installClusterCrd();
      for (const server of fleet.clusters) await fleet.register(server.name);
    } catch (error) {
      await fleet.close();
      throw error;
    }
    return fleet;
  }

  static async #server(
    binary: string,
    dir: string,
    name: string,
    etcdUrl: string,
    goAwayChance = 0,
  ) {
    const home = `${dir}/${name}`;
    await Deno.mkdir(home, { recursive: true });
    const ca = await createCertificateAuthority(`${name}-ca`);
    const serving = await issueCertificate(ca, {
      subject: `CN=${name}`,
      serverNames: { dns: ["localhost", "kubernetes.default.svc"], ips: ["127.0.0.1"] },
    });
    const admin = await issueCertificate(ca, { subject: "CN=clustercache-admin,O=system:masters" });
    const accountKeys = await crypto.subtle.generateKey(
      { name: "ECDSA", namedCurve: "P-256" },
      true,
      ["sign", "verify"],
    );
    const pem = (label: string, der: ArrayBuffer) =>
      `-----BEGIN ${label}-----\n${
        btoa(String.fromCharCode(...new Uint8Array(der))).match(/.{1,64}/g)!.join("\n")
      }\n-----END ${label}-----\n`;
    const files: Record<string, string> = {
      "ca.crt": ca.certPem,
      "serving.crt": serving.certPem,
      "serving.key": serving.keyPem,
      "sa.key": pem("PRIVATE KEY", await crypto.subtle.exportKey("pkcs8", accountKeys.privateKey)),
      "sa.pub": pem("PUBLIC KEY", await crypto.subtle.exportKey("spki", accountKeys.publicKey)),
    };
    for (const [file, text] of Object.entries(files)) {
      await Deno.writeTextFile(`${home}/${file}`, text, { mode: 0o600 });
    }
    const port = freePort();
    const args = [
      "--bind-address=127.0.0.1",
      "--advertise-address=127.0.0.1",
      `--secure-port=${port}`,
      `--etcd-servers=${etcdUrl}`,
      `--etcd-prefix=/realfleet/${name}`,
      `--tls-cert-file=${home}/serving.crt`,
      `--tls-private-key-file=${home}/serving.key`,
      `--client-ca-file=${home}/ca.crt`,
      `--service-account-issuer=https://${name}.realfleet.test`,
      `--service-account-key-file=${home}/sa.pub`,
      `--service-account-signing-key-file=${home}/sa.key`,
      "--authorization-mode=RBAC",
      "--service-cluster-ip-range=10.96.0.0/24",
      // No controller-manager runs: nothing would create the default ServiceAccounts Pods need.
      "--disable-admission-plugins=ServiceAccount",
      "--endpoint-reconciler-type=none",
      // One kind read straight from etcd, as every kind is once its events age out of the watch
      // cache: compaction then gives 410 at once (the conformance cases use it).
      "--watch-cache-sizes=podtemplates#0",
      "--enable-bootstrap-token-auth=false",
      "--profiling=false",
      `--cert-dir=${home}/certs`,
      `--goaway-chance=${goAwayChance}`,
      "--v=0",
    ];
    return new RealApiServer(
      name,
      port,
      ca.certPem,
      { certPem: admin.certPem, keyPem: admin.keyPem },
      binary,
      args,
      `${home}/apiserver.log`,
    );
  }

  async #installClusterCrd(): Promise<void> {
    await this.management.request(
      "POST",
      "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
      CLUSTER_CRD,
    );
    const deadline = Date.now() + 60_000;
    for (;;) {
      const crd = await this.management.request<{
        status?: { conditions?: { type: string; status: string }[] };
      }>(
        "GET",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/clusters.cluster.x-k8s.io",
      );
      const established = crd.status?.conditions?.some((c) =>
        c.type === "Established" && c.status === "True"
      );
      if (established) {
        try {
          await this.management.request(
            "GET",
            `/apis/cluster.x-k8s.io/v1beta2/namespaces/${NAMESPACE}/clusters`,
          );
          return;
        } catch {
          // discovery has not caught up
        }
      }
      if (Date.now() > deadline) throw new Error("the Cluster CRD was not established in 60 s");
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** The workload server called `name`. */
  cluster(name: string): RealApiServer {
    const server = this.clusters.find((s) => s.name === name);
    if (!server) throw new RangeError(`No workload cluster named "${name}"`);
    return server;
  }

  /** The management cluster's kubeconfig (admin certificate). */
  managementKubeconfig(): string {
    return this.management.kubeconfig();
  }

  /** A workload cluster's kubeconfig as its Secret holds it. */
  async workloadKubeconfig(name: string): Promise<string> {
    const server = this.cluster(name);
    if (this.#auth === "certificate") return server.kubeconfig();
    return server.kubeconfig({ token: await this.#token(server) });
  }

  /** Creates the ServiceAccount behind token kubeconfigs (bound to cluster-admin) and a token of it. */
  async #token(server: RealApiServer): Promise<string> {
    const { namespace, name } = TOKEN_ACCOUNT;
    const exists = (error: unknown) => {
      if (!(error instanceof RealApiError && error.status === 409)) throw error;
    };
    await server.request("POST", `/api/v1/namespaces/${namespace}/serviceaccounts`, {
      apiVersion: "v1",
      kind: "ServiceAccount",
      metadata: { name },
    }).catch(exists);
    await server.request("POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRoleBinding",
      metadata: { name: `${name}-admin` },
      roleRef: {
        apiGroup: "rbac.authorization.k8s.io",
        kind: "ClusterRole",
        name: "cluster-admin",
      },
      subjects: [{ kind: "ServiceAccount", namespace, name }],
    }).catch(exists);
    const request = await server.request<{ status: { token: string } }>(
      "POST",
      `/api/v1/namespaces/${namespace}/serviceaccounts/${name}/token`,
      {
        apiVersion: "authentication.k8s.io/v1",
        kind: "TokenRequest",
        spec: { expirationSeconds: 86_400 },
      },
    );
    return request.status.token;
  }

  /** Creates (or replaces) the Cluster object and kubeconfig Secret of workload cluster `name`. */
  async register(name: string): Promise<void> {
    const server = this.cluster(name);
    const clusters = `/apis/cluster.x-k8s.io/v1beta2/namespaces/${NAMESPACE}/clusters`;
    const created = await this.management.request<{ metadata: { resourceVersion: string } }>(
      "POST",
      clusters,
      {
        apiVersion: "cluster.x-k8s.io/v1beta2",
        kind: "Cluster",
        metadata: { name, namespace: NAMESPACE },
        spec: { controlPlaneEndpoint: { host: "127.0.0.1", port: server.port } },
      },
    ).catch(async (error) => {
      if (error instanceof RealApiError && error.status === 409) {
        return await this.management.request("GET", `${clusters}/${name}`) as {
          metadata: { resourceVersion: string };
        };
      }
      throw error;
    });
    // The status carries both versions' readiness fields: the CRD converts with `None`.
    await this.management.request("PUT", `${clusters}/${name}/status`, {
      apiVersion: "cluster.x-k8s.io/v1beta2",
      kind: "Cluster",
      metadata: { name, namespace: NAMESPACE, resourceVersion: created.metadata.resourceVersion },
      spec: { controlPlaneEndpoint: { host: "127.0.0.1", port: server.port } },
      status: {
        phase: "Provisioned",
        initialization: { infrastructureProvisioned: true, controlPlaneInitialized: true },
        infrastructureReady: true,
      },
    });
    await this.writeKubeconfigSecret(name);
  }

  /** Writes workload cluster `name`'s kubeconfig Secret from its current credentials. */
  async writeKubeconfigSecret(name: string): Promise<void> {
    const secret = {
      apiVersion: "v1",
      kind: "Secret",
      metadata: {
        name: `${name}-kubeconfig`,
        namespace: NAMESPACE,
        labels: { "cluster.x-k8s.io/cluster-name": name },
      },
      type: "cluster.x-k8s.io/secret",
      data: { value: base64(await this.workloadKubeconfig(name)) },
    };
    const path = `/api/v1/namespaces/${NAMESPACE}/secrets`;
    await this.management.request("POST", path, secret).catch(async (error) => {
      if (!(error instanceof RealApiError && error.status === 409)) throw error;
      await this.management.request("PUT", `${path}/${name}-kubeconfig`, secret);
    });
  }

  /** Deletes the ServiceAccount behind workload cluster `name`'s token: its requests get 401. */
  async revokeCredentials(name: string): Promise<void> {
    if (this.#auth !== "token") throw new Error("revoking credentials needs kubeconfigAuth: token");
    const { namespace, name: account } = TOKEN_ACCOUNT;
    await this.cluster(name).request(
      "DELETE",
      `/api/v1/namespaces/${namespace}/serviceaccounts/${account}`,
    );
  }

  /** The current etcd revision (the resourceVersion every API server of the fleet is at or below). */
  async etcdRevision(): Promise<number> {
    const response = await fetch(`${this.etcdUrl}/v3/kv/range`, {
      method: "POST",
      body: JSON.stringify({ key: btoa("/") }),
    });
    const body = await response.json() as { header: { revision: string } };
    return Number(body.header.revision);
  }

  /** Compacts etcd at its current revision: watches and lists from older resourceVersions get 410. */
  async compact(): Promise<number> {
    const revision = await this.etcdRevision();
    const response = await fetch(`${this.etcdUrl}/v3/kv/compaction`, {
      method: "POST",
      body: JSON.stringify({ revision: String(revision), physical: true }),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`etcd compaction failed: HTTP ${response.status} ${text}`);
    return revision;
  }

  /** Stops every process and removes the directory it made. */
  async close(): Promise<void> {
    await Promise.all([this.management, ...this.clusters].map((s) => s.stop()));
    for (const server of [this.management, ...this.clusters]) server.dispose();
    try {
      this.#etcd.kill("SIGTERM");
    } catch {
      // already gone
    }
    await this.#etcd.status;
    await this.#etcdOutput;
    await this.#etcd.stdout.cancel().catch(() => {});
    if (this.#removeDir) await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }

  /** Same as {@linkcode RealFleet.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
