import assert from "node:assert/strict";
import { SimulatedFleet } from "../testing/sim/fleet.ts";
import { Kubectl, kubectlPath } from "./helpers/kubectl.ts";

const ignore = kubectlPath === undefined;

const CONFIGMAP = `apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
  labels:
    app: web
data:
  color: blue
`;

Deno.test({
  name: "kubectl get, get -w, apply, patch and delete work unchanged against a simulated cluster",
  ignore,
  async fn() {
    await using fleet = await SimulatedFleet.start({ clusters: 1 });
    await using kubectl = await Kubectl.create();
    const cluster = fleet.cluster("workload-1");
    const kc = await kubectl.writeKubeconfig("workload-1", cluster.kubeconfig());

    const ns = await kubectl.run(kc, ["get", "namespaces"]);
    assert.equal(ns.code, 0, ns.stderr);
    assert.match(ns.stdout, /^NAME\s+STATUS\s+AGE/);
    assert.match(ns.stdout, /\ndefault\s+Active\s+\d+s/);

    const pods = await kubectl.run(kc, ["get", "pods", "-A", "-o", "name"]);
    assert.equal(pods.code, 0, pods.stderr);
    assert.deepEqual(pods.stdout.trim().split("\n").sort(), [
      "pod/coredns-workload-1-control-plane",
      "pod/kube-proxy-workload-1-control-plane",
    ]);

    const watch = kubectl.spawn(kc, ["get", "configmaps", "-w", "--output-watch-events"]);
    try {
      const created = await kubectl.run(kc, ["apply", "-f", "-"], CONFIGMAP);
      assert.equal(created.code, 0, created.stderr);
      assert.match(created.stdout, /configmap\/web-config created/);
      let seen = "";
      for (;;) {
        const { value, done } = await watch.lines.next();
        assert.ok(!done, `kubectl get -w ended early; saw: ${seen}`);
        seen += value + "\n";
        if (/ADDED\s+web-config/.test(value)) break;
      }
    } finally {
      await watch.kill();
    }

    const unchanged = await kubectl.run(kc, ["apply", "-f", "-"], CONFIGMAP);
    assert.match(unchanged.stdout, /configmap\/web-config unchanged/);
    const configured = await kubectl.run(
      kc,
      ["apply", "-f", "-"],
      CONFIGMAP.replace("blue", "green"),
    );
    assert.match(configured.stdout, /configmap\/web-config configured/);

    const merge = await kubectl.run(kc, [
      "patch",
      "configmap",
      "web-config",
      "--type=merge",
      "-p",
      '{"data":{"size":"L"}}',
    ]);
    assert.equal(merge.code, 0, merge.stderr);
    const json = await kubectl.run(kc, [
      "patch",
      "configmap",
      "web-config",
      "--type=json",
      "-p",
      '[{"op":"remove","path":"/data/size"}]',
    ]);
    assert.equal(json.code, 0, json.stderr);
    const strategic = await kubectl.run(kc, [
      "patch",
      "configmap",
      "web-config",
      "-p",
      '{"data":{"shape":"round"}}',
    ]);
    assert.equal(strategic.code, 0, strategic.stderr);
    const data = await kubectl.run(kc, [
      "get",
      "configmap",
      "web-config",
      "-o",
      "jsonpath={.data}",
    ]);
    assert.deepEqual(JSON.parse(data.stdout), { color: "green", shape: "round" });

    const deleted = await kubectl.run(kc, ["delete", "configmap", "web-config"]);
    assert.match(deleted.stdout, /configmap "web-config" deleted/);
    const gone = await kubectl.run(kc, ["get", "configmap", "web-config"]);
    assert.notEqual(gone.code, 0);
    assert.match(gone.stderr, /NotFound.*"web-config" not found/);
  },
});

Deno.test({
  name: "kubectl without valid credentials is refused with 401 Unauthorized",
  ignore,
  async fn() {
    await using fleet = await SimulatedFleet.start({ clusters: 1 });
    await using kubectl = await Kubectl.create();
    const cluster = fleet.cluster("workload-1");
    const kc = await kubectl.writeKubeconfig("stale", cluster.kubeconfig("token"));
    await cluster.rotateCredentials();
    const result = await kubectl.run(kc, ["get", "namespaces"]);
    assert.notEqual(result.code, 0);
    // client-go words a 401 as "the server has asked for the client to provide credentials".
    assert.match(
      result.stderr,
      /You must be logged in to the server \(the server has asked for the client to provide credentials\)/,
    );
  },
});

Deno.test({
  name: "kubectl lists Cluster API Clusters in both served versions on the management cluster",
  ignore,
  async fn() {
    await using fleet = await SimulatedFleet.start({ clusters: 2 });
    await using kubectl = await Kubectl.create();
    const kc = await kubectl.writeKubeconfig("management", fleet.managementKubeconfig());
    const v1beta1 = await kubectl.run(kc, [
      "get",
      "clusters.v1beta1.cluster.x-k8s.io",
      "-o",
      'jsonpath={range .items[*]}{.metadata.name}={.status.infrastructureReady}{"\\n"}{end}',
    ]);
    assert.equal(v1beta1.code, 0, v1beta1.stderr);
    assert.deepEqual(v1beta1.stdout.trim().split("\n"), ["workload-1=true", "workload-2=true"]);
    const secrets = await kubectl.run(kc, [
      "get",
      "secrets",
      "-l",
      "cluster.x-k8s.io/cluster-name",
      "-o",
      "name",
    ]);
    assert.deepEqual(secrets.stdout.trim().split("\n"), [
      "secret/workload-1-kubeconfig",
      "secret/workload-2-kubeconfig",
    ]);
  },
});

Deno.test({
  name:
    "kubectl create namespace, configmap and secret (protobuf bodies) work against a simulated cluster",
  ignore,
  async fn() {
    await using fleet = await SimulatedFleet.start({ clusters: 1 });
    await using kubectl = await Kubectl.create();
    const cluster = fleet.cluster("workload-1");
    const kc = await kubectl.writeKubeconfig("workload-1", cluster.kubeconfig());
    const run = async (args: string[]) => {
      const result = await kubectl.run(kc, args);
      assert.equal(result.code, 0, result.stderr);
      return result.stdout.trim();
    };
    assert.equal(await run(["create", "namespace", "team"]), "namespace/team created");
    assert.equal(
      await run(["create", "configmap", "settings", "-n", "team", "--from-literal=color=blue"]),
      "configmap/settings created",
    );
    assert.equal(
      await run(["create", "secret", "generic", "pw", "-n", "team", "--from-literal=p=q"]),
      "secret/pw created",
    );
    const configmaps = cluster.typeOf("", "configmaps")!;
    assert.deepEqual(cluster.store.get(configmaps, "team", "settings")?.data, { color: "blue" });
    const secrets = cluster.typeOf("", "secrets")!;
    const secret = cluster.store.get(secrets, "team", "pw");
    assert.deepEqual(secret?.data, { p: btoa("q") });
    assert.equal(secret?.type, "Opaque");
    assert.equal(
      await run(["get", "namespace", "team", "-o", "jsonpath={.status.phase}"]),
      "Active",
    );
  },
});

Deno.test({
  name:
    "kubectl create deployment, create service and run (protobuf bodies of nested kinds) keep every field",
  ignore,
  async fn() {
    await using fleet = await SimulatedFleet.start({ clusters: 1 });
    await using kubectl = await Kubectl.create();
    const cluster = fleet.cluster("workload-1");
    const kc = await kubectl.writeKubeconfig("workload-1", cluster.kubeconfig());
    const run = async (args: string[]) => {
      const result = await kubectl.run(kc, args);
      assert.equal(result.code, 0, result.stderr);
      return result.stdout.trim();
    };
    assert.equal(
      await run(["create", "deployment", "web", "--image=nginx", "--replicas=2", "--port=8080"]),
      "deployment.apps/web created",
    );
    assert.equal(
      await run(["create", "service", "clusterip", "web", "--tcp=80:8080"]),
      "service/web created",
    );
    assert.equal(
      await run([
        "run",
        "box",
        "--image=busybox",
        "--labels=app=box",
        "--env=A=1",
        "--",
        "sleep",
        "1",
      ]),
      "pod/box created",
    );
    // What kube-apiserver stores for the same commands, before its defaulting.
    const deployment = cluster.store.get(cluster.typeOf("apps", "deployments")!, "default", "web");
    const spec = deployment?.spec as Record<string, unknown>;
    assert.equal(spec.replicas, 2);
    assert.deepEqual(spec.selector, { matchLabels: { app: "web" } });
    assert.deepEqual(
      (spec.template as { spec: { containers: unknown[] } }).spec.containers.map((c) => {
        const { name, image, ports } = c as Record<string, unknown>;
        return { name, image, ports };
      }),
      [{ name: "nginx", image: "nginx", ports: [{ containerPort: 8080 }] }],
    );
    const service = cluster.store.get(cluster.typeOf("", "services")!, "default", "web");
    assert.deepEqual((service?.spec as { ports: unknown }).ports, [
      { name: "80-8080", port: 80, protocol: "TCP", targetPort: 8080 }, // IntOrString as a number
    ]);
    const pod = cluster.store.get(cluster.typeOf("", "pods")!, "default", "box");
    const [container] = (pod?.spec as { containers: Record<string, unknown>[] }).containers;
    assert.deepEqual(
      { args: container!.args, env: container!.env, labels: pod?.metadata?.labels },
      { args: ["sleep", "1"], env: [{ name: "A", value: "1" }], labels: { app: "box" } },
    );
  },
});
