/**
 * The everyday kubectl commands, typed as a user types them, against a simulated cluster. Every
 * expected output here is what the same command printed against a real kube-apiserver (the real
 * fleet of `deno task real`), except where a comment says the simulator differs on purpose.
 */
import assert from "node:assert/strict";
import { SimulatedFleet } from "../testing/sim/fleet.ts";
import { Kubectl, kubectlPath } from "./helpers/kubectl.ts";

const ignore = kubectlPath === undefined;

async function cluster() {
  const fleet = await SimulatedFleet.start({ clusters: 1 });
  const kubectl = await Kubectl.create();
  const kc = await kubectl.writeKubeconfig("workload-1", fleet.cluster("workload-1").kubeconfig());
  const run = (args: string[], stdin?: string) => kubectl.run(kc, args, stdin);
  const ok = async (args: string[], stdin?: string) => {
    const result = await run(args, stdin);
    assert.equal(result.code, 0, `kubectl ${args.join(" ")}: ${result.stderr}`);
    return result.stdout.trim();
  };
  return {
    fleet,
    run,
    ok,
    async [Symbol.asyncDispose]() {
      await kubectl[Symbol.asyncDispose]();
      await fleet.close();
    },
  };
}

const CONFIGMAP = `apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  x: "1"
`;

const DEPLOYMENT_WITH_TYPO = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: typo
spec:
  replicas: 1
  selector: {matchLabels: {app: typo}}
  template:
    metadata: {labels: {app: typo}}
    spec:
      containers:
      - name: c
        image: busybox
        imagePolicy: Always
`;

Deno.test({
  name: "kubectl apply validates against the served OpenAPI; explain reads it",
  ignore,
  async fn() {
    await using c = await cluster();
    assert.equal(await c.ok(["apply", "-f", "-"], CONFIGMAP), "configmap/settings created");
    // kubectl finds fieldValidation in the OpenAPI v3 document and lets the server check.
    const strict = await c.run(["apply", "-f", "-"], DEPLOYMENT_WITH_TYPO);
    assert.notEqual(strict.code, 0);
    assert.match(
      strict.stderr,
      /Error from server \(BadRequest\): error when creating "STDIN": Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: unknown field "spec.template.spec.containers\[0\].imagePolicy"/,
    );
    const warned = await c.run(["apply", "--validate=warn", "-f", "-"], DEPLOYMENT_WITH_TYPO);
    assert.equal(warned.code, 0, warned.stderr);
    assert.equal(
      warned.stderr.trim(),
      'Warning: unknown field "spec.template.spec.containers[0].imagePolicy"',
    );
    assert.equal(warned.stdout.trim(), "deployment.apps/typo created");
    const explained = await c.ok(["explain", "deployment.spec.replicas"]);
    assert.match(explained, /^GROUP:\s+apps\nKIND:\s+Deployment\nVERSION:\s+v1/);
    assert.match(explained, /FIELD: replicas <integer>/);
    assert.match(explained, /Number of desired pods/);
    assert.match(await c.ok(["explain", "pods.spec.containers.image"]), /Container image name/);
  },
});

Deno.test({
  name: "kubectl scale, rollout status and get all follow a Deployment",
  ignore,
  async fn() {
    await using c = await cluster();
    assert.equal(
      await c.ok(["create", "deployment", "web", "--image=nginx", "--replicas=2"]),
      "deployment.apps/web created",
    );
    assert.equal(
      await c.ok(["scale", "deployment", "web", "--replicas=3"]),
      "deployment.apps/web scaled",
    );
    const stale = await c.run(["scale", "deployment/web", "--current-replicas=2", "--replicas=4"]);
    assert.equal(stale.code, 1);
    assert.equal(stale.stderr.trim(), "error: Expected replicas to be 2, was 3");
    assert.equal(
      await c.ok(["scale", "deployment/web", "--current-replicas=3", "--replicas=4"]),
      "deployment.apps/web scaled",
    );
    assert.equal(await c.ok(["get", "deployment", "web", "-o", "jsonpath={.spec.replicas}"]), "4");
    // The simulator finishes rollouts at once (no Pods run); a real cluster's controllers take longer.
    assert.equal(
      await c.ok(["rollout", "status", "deployment/web", "--timeout=30s"]),
      'deployment "web" successfully rolled out',
    );
    assert.equal(
      await c.ok(["create", "service", "clusterip", "web", "--tcp=80:8080"]),
      "service/web created",
    );
    const all = await c.ok(["get", "all"]);
    assert.match(
      all,
      /^NAME\s+TYPE\s+CLUSTER-IP\s+EXTERNAL-IP\s+PORT\(S\)\s+AGE\nservice\/web\s+ClusterIP\s+/m,
    );
    assert.match(
      all,
      /^NAME\s+READY\s+UP-TO-DATE\s+AVAILABLE\s+AGE\ndeployment\.apps\/web\s+4\/4\s+4\s+4\s+/m,
    );
    const resources = await c.ok(["api-resources", "--categories=all", "-o", "name"]);
    assert.deepEqual(resources.split("\n").sort(), [
      "deployments.apps",
      "pods",
      "replicasets.apps",
      "services",
    ]);
    assert.match(
      await c.ok(["get", "deploy,rs,po,svc,cm,ns", "-o", "name"]),
      /deployment\.apps\/web/,
    );
  },
});

Deno.test({
  name: "kubectl auth can-i, can-i --list and whoami answer for the admin",
  ignore,
  async fn() {
    await using c = await cluster();
    assert.equal(await c.ok(["auth", "can-i", "create", "pods"]), "yes");
    assert.equal(
      await c.ok(["auth", "can-i", "delete", "deployments", "-n", "kube-system"]),
      "yes",
    );
    const list = await c.ok(["auth", "can-i", "--list"]);
    assert.match(
      list,
      /^Resources\s+Non-Resource URLs\s+Resource Names\s+Verbs\n\*\.\*\s+\[\]\s+\[\]\s+\[\*\]/,
    );
    assert.match(
      list,
      /selfsubjectaccessreviews\.authorization\.k8s\.io\s+\[\]\s+\[\]\s+\[create\]/,
    );
    const whoami = await c.ok(["auth", "whoami"]);
    assert.match(
      whoami,
      /^ATTRIBUTE\s+VALUE\nUsername\s+kubernetes-admin-\d+\nGroups\s+\[system:masters system:authenticated\]$/,
    );
  },
});

const APPLIED = `apiVersion: v1
kind: ConfigMap
metadata:
  name: ssa
data:
  x: "1"
`;

Deno.test({
  name: "kubectl apply --server-side and kubectl diff agree with kube-apiserver",
  ignore,
  async fn() {
    await using c = await cluster();
    assert.equal(
      await c.ok(["apply", "--server-side", "-f", "-"], APPLIED),
      "configmap/ssa serverside-applied",
    );
    const changed = APPLIED.replace('"1"', '"2"');
    const conflict = await c.run(
      ["apply", "--server-side", "--field-manager=other", "-f", "-"],
      changed,
    );
    assert.equal(conflict.code, 1);
    assert.match(
      conflict.stderr,
      /^error: Apply failed with 1 conflict: conflict with "kubectl": \.data\.x\n/,
    );
    // No change: kubectl diff exits 0 and prints nothing; a change: exit 1 and the lines.
    const same = await c.run(["diff", "-f", "-"], APPLIED);
    assert.deepEqual([same.code, same.stdout], [0, ""]);
    for (const args of [["diff", "-f", "-"], ["diff", "--server-side", "-f", "-"]]) {
      const diff = await c.run(args, changed);
      assert.equal(diff.code, 1, diff.stderr);
      assert.deepEqual(
        diff.stdout.split("\n").filter((line) => /^[-+] /.test(line)),
        ['-  x: "1"', '+  x: "2"'],
        args.join(" "),
      );
    }
    assert.equal(
      await c.ok([
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=other",
        "-f",
        "-",
      ], changed),
      "configmap/ssa serverside-applied",
    );
    assert.equal(
      await c.ok([
        "get",
        "configmap",
        "ssa",
        "-o",
        "jsonpath={.data.x} {.metadata.managedFields[*].manager}",
      ]),
      "2 other",
    );
  },
});
