import assert from "node:assert/strict";
import { statusHandler } from "../src/main/status/mod.ts";
import type { ClusterRow, FleetSnapshot } from "../src/main/status/mod.ts";
import type { ClusterCache, ObjectKey } from "../mod.ts";
import { chromiumPath, HeadlessPage } from "./helpers/chromium.ts";
import { eventually, type Fixture, fixture, key } from "./helpers/fixture.ts";

const ConfigMap = { apiVersion: "v1", kind: "ConfigMap" };
const Pod = { apiVersion: "v1", kind: "Pod" };

function serve(cache: ClusterCache) {
  const status = statusHandler(cache, { title: "test fleet", intervalMs: 200 });
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (request) =>
      new URL(request.url).pathname === "/ops/status"
        ? status(request)
        : new Response("not found", { status: 404 }),
  );
  return { server, url: `http://127.0.0.1:${server.addr.port}/ops/status` };
}

function dedicated(f: Fixture, name: string): boolean {
  return f.cache.describeCluster(key(name))?.placement === "dedicated";
}

/**
 * Three pooled clusters, each in trouble of its own: workload-1 hung (disconnected by its probes),
 * workload-2 promoted to a worker of its own (too many objects for the pool), workload-3 with a
 * kind it may no longer watch (Pods, forbidden after they synced).
 */
async function troubledFleet(): Promise<Fixture> {
  const f = await fixture({ clusters: 3, kubeconfigAuth: "token" }, {
    workers: { mode: "pooled", clustersPerWorker: 3, promotion: { objects: 30, windowMs: 500 } },
  });
  for (const name of ["workload-1", "workload-2", "workload-3"]) await f.connected(name);
  const busy = f.fleet.cluster("workload-2");
  const configmaps = busy.typeOf("", "configmaps")!;
  for (let i = 0; i < 40; i++) {
    busy.store.create(configmaps, { metadata: { namespace: "default", name: `many-${i}` } });
  }
  await f.cache.getReader(key("workload-2")).list(ConfigMap);
  await eventually(() => dedicated(f, "workload-2"), "workload-2 to be promoted", 15_000);
  await f.cache.getReader(key("workload-3")).list(Pod);
  const degraded = f.fleet.cluster("workload-3");
  degraded.setFaults({ forbiddenKinds: ["pods"] });
  degraded.dropWatches("close");
  await eventually(
    () => f.cache.getInformerStates(key("workload-3")).some((s) => s.phase === "failing"),
    "workload-3's Pods to fail",
  );
  await f.fleet.cluster("workload-1").hang(true);
  await eventually(
    () => !f.cache.getConnectionState(key("workload-1")).connected,
    "workload-1 to be disconnected",
  );
  return f;
}

function row(fleet: FleetSnapshot, cluster: ObjectKey): ClusterRow {
  const found = fleet.clusters.find((c) => c.cluster === `${cluster.namespace}/${cluster.name}`);
  assert.ok(found, `a row for ${cluster.name}`);
  return found;
}

Deno.test("status JSON: every cluster field by field, with a hung, a promoted and a degraded cluster; no credential anywhere", async () => {
  await using f = await troubledFleet();
  const { server, url } = serve(f.cache);
  try {
    const fleet = await (await fetch(`${url}?format=json`)).json() as FleetSnapshot;
    assert.deepEqual(fleet.totals, { clusters: 3, connected: 2, failingKinds: 1, dedicated: 1 });

    const hung = row(fleet, key("workload-1"));
    assert.equal(hung.connected, false);
    assert.equal(hung.placement, undefined);
    assert.ok(hung.consecutiveFailures >= 3);
    assert.deepEqual(hung.kinds, []);
    assert.ok(hung.history.some((h) => h.kind === "probe-failed"));
    assert.equal(hung.history.at(-1)?.kind, "disconnected");

    const promoted = row(fleet, key("workload-2"));
    assert.equal(promoted.connected, true);
    assert.equal(promoted.placement, "dedicated");
    assert.equal(promoted.moves, 1);
    assert.match(
      promoted.history.find((h) => h.kind === "moved")?.message ?? "",
      /moved to a dedicated worker: .*objects/,
    );
    const configmaps = promoted.kinds.find((k) => k.kind === "v1 ConfigMap")!;
    assert.equal(configmaps.phase, "synced");
    assert.ok(configmaps.objects >= 40);
    assert.ok(configmaps.lastHeardSecondsAgo !== null && configmaps.lastHeardSecondsAgo < 60);

    const degraded = row(fleet, key("workload-3"));
    assert.equal(degraded.connected, true);
    assert.equal(degraded.placement, "pooled");
    assert.equal(degraded.consecutiveFailures, 0);
    const pods = degraded.kinds.find((k) => k.kind === "v1 Pod")!;
    assert.equal(pods.phase, "failing");
    assert.ok(pods.failingForSeconds! >= 0);
    assert.match(pods.lastError ?? "", /forbidden/);
    assert.ok(degraded.history.some((h) => h.kind === "kind-failing"));

    const one = await (await fetch(`${url}?format=json&cluster=default/workload-3`)).json();
    assert.equal(one.cluster, "default/workload-3");
    const missing = await fetch(`${url}?format=json&cluster=default/nope`);
    assert.equal(missing.status, 404);
    await missing.body?.cancel();
    const posted = await fetch(url, { method: "POST" });
    assert.equal(posted.status, 405);
    await posted.body?.cancel();

    // The bearer tokens of every cluster's kubeconfig Secret appear nowhere.
    const page = await (await fetch(url)).text();
    const controller = new AbortController();
    const stream = await fetch(`${url}?stream`, { signal: controller.signal });
    const reader = stream.body!.pipeThrough(new TextDecoderStream()).getReader();
    const event = (await reader.read()).value!;
    controller.abort();
    await reader.cancel().catch(() => {});
    assert.match(event, /^data: \{"time":/);
    const served = [JSON.stringify(fleet), page, event].join("\n");
    for (const name of ["workload-1", "workload-2", "workload-3"]) {
      const token = f.fleet.cluster(name).credentials().token;
      assert.ok(token.length > 20);
      assert.ok(!served.includes(token), `the token of ${name} must not be served`);
    }
    assert.ok(!/BEGIN [A-Z ]*PRIVATE KEY|client-key-data|certificate-authority-data/.test(served));
  } finally {
    await f.fleet.cluster("workload-1").hang(false);
    await server.shutdown();
  }
});

const browser = chromiumPath();
if (!browser) {
  console.warn(
    "SKIPPED: the status page's browser test needs Chromium (apt-get install chromium); none on PATH",
  );
}

Deno.test({
  name:
    "status page in a real browser: it shows the hung, the promoted and the degraded cluster, and updates when the hung one reconnects",
  ignore: !browser,
  async fn() {
    await using f = await troubledFleet();
    const { server, url } = serve(f.cache);
    try {
      await using page = await HeadlessPage.open(browser!, url, 1280, 560);
      const rowOf = (name: string) =>
        `document.querySelector('tr[data-cluster="default/${name}"]')`;
      await page.until(`${rowOf("workload-1")}?.dataset.state === "disconnected"`, "the hung row");
      assert.equal(
        await page.evaluate(`${rowOf("workload-2")}.dataset.placement`),
        "dedicated",
      );
      assert.equal(
        await page.evaluate(
          `${rowOf("workload-3")}.querySelector('[data-kind="v1 Pod"]').dataset.phase`,
        ),
        "failing",
      );
      assert.match(
        await page.evaluate<string>(`document.getElementById("totals").textContent`),
        /2 of 3 clusters connected/,
      );
      // A cluster's recent events, when its row is chosen.
      await page.evaluate(`${rowOf("workload-2")}.click()`);
      await page.until(`!document.getElementById("detail").hidden`, "the detail view");
      assert.match(
        await page.evaluate<string>(`document.getElementById("history").textContent`),
        /moved to a dedicated worker/,
      );
      const png = await page.screenshot();
      assert.deepEqual([...png.slice(1, 4)], [0x50, 0x4e, 0x47], "a PNG");
      const target = Deno.env.get("CLUSTERCACHE_WRITE_SCREENSHOT");
      if (target) await Deno.writeFile(target, png);

      // Live: the hung cluster comes back and the page says so without a reload.
      await f.fleet.cluster("workload-1").hang(false);
      await page.until(
        `${rowOf("workload-1")}?.dataset.state === "connected"`,
        "the page to show workload-1 connected again",
        30_000,
      );
      assert.equal(await page.evaluate(`performance.getEntriesByType("navigation").length`), 1);
    } finally {
      await f.fleet.cluster("workload-1").hang(false).catch(() => {});
      await server.shutdown();
    }
  },
});
