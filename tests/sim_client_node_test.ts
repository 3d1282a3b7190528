import assert from "node:assert/strict";
import * as k8s from "@kubernetes/client-node";
import { SimulatedApiServer } from "../testing/sim/api_server.ts";

async function eventually(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

Deno.test("a @kubernetes/client-node informer lists, watches and recovers from a forced 410", async () => {
  await using server = await SimulatedApiServer.start({ name: "client-node", historySize: 5 });
  const kc = new k8s.KubeConfig();
  kc.loadFromString(server.kubeconfig());
  const api = kc.makeApiClient(k8s.CoreV1Api);
  const informer = k8s.makeInformer(
    kc,
    "/api/v1/namespaces/default/configmaps",
    () => api.listNamespacedConfigMap({ namespace: "default" }),
  );
  const events: string[] = [];
  let connects = 0;
  informer.on("add", (o) => events.push(`add ${o.metadata?.name}`));
  informer.on("update", (o) => events.push(`update ${o.metadata?.name} ${o.data?.x}`));
  informer.on("delete", (o) => events.push(`delete ${o.metadata?.name}`));
  informer.on("connect", () => connects++);
  informer.on("error", (e) => events.push(`error ${e}`));
  try {
    await api.createNamespacedConfigMap({
      namespace: "default",
      body: { metadata: { name: "before" } },
    });
    await informer.start();
    await api.createNamespacedConfigMap({
      namespace: "default",
      body: { metadata: { name: "a" }, data: { x: "1" } },
    });
    await api.patchNamespacedConfigMap(
      { namespace: "default", name: "a", body: { data: { x: "2" } } },
      k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
    );
    await api.deleteNamespacedConfigMap({ namespace: "default", name: "before" });
    await eventually(() => events.length >= 4, "add/update/delete events");
    assert.deepEqual(events, ["add before", "add a", "update a 2", "delete before"]);

    // Changes the informer cannot see (its stream is silent) that outrun the 5-event history,
    // then a clean close: the re-watch from its last version gets 410 and it must relist.
    server.setFaults({ silenceWatches: true });
    for (let i = 0; i < 8; i++) {
      await api.createNamespacedConfigMap({
        namespace: "default",
        body: { metadata: { name: `late-${i}` } },
      });
    }
    server.setFaults({ silenceWatches: false });
    const connectsBefore = connects;
    server.dropWatches("close");
    const cmType = server.typeOf("", "configmaps")!;
    await eventually(
      () => informer.list().length === server.store.count(cmType) && connects > connectsBefore,
      "the informer to relist after 410",
    );
    const cached = informer.list().map((o) => o.metadata!.name).sort();
    const truth = server.store.list(cmType).map((o) => o.metadata!.name!).sort();
    assert.deepEqual(cached, truth);
    assert.ok(!events.some((e) => e.startsWith("error")), events.join(", "));
  } finally {
    await informer.stop();
    await server.close();
    // client-node 2.0.1 leaves short timers behind after stop() (ListWatch's restart delay and
    // undici's keep-alive and connect-timeout ticks); with the server gone they run out, so the ops
    // sanitizer then sees only our own.
    await new Promise((r) => setTimeout(r, 1500));
  }
});
