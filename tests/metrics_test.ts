import assert from "node:assert/strict";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { kinds } from "../mod.ts";
import { MetricsRegistry } from "../src/main/metrics/mod.ts";
import { eventually, fixture } from "./helpers/fixture.ts";

Deno.test("the registry renders what prom-client renders for the same series", async () => {
  const ours = new MetricsRegistry();
  const theirs = new Registry();
  const help = 'Odd help: a \\ backslash and a\nnewline "quoted".';
  const labelNames = ["cluster", "code"];
  const odd = { cluster: 'a"b\\c\nd', code: "200" };
  ours.counter("requests_total", help, labelNames).inc(odd, 3);
  new Counter({ name: "requests_total", help, labelNames, registers: [theirs] }).inc(odd, 3);
  ours.counter("plain_total", "No labels.");
  new Counter({ name: "plain_total", help: "No labels.", registers: [theirs] });
  ours.gauge("depth", "Depth.", ["name"]).set({ name: "q" }, 2.5);
  new Gauge({ name: "depth", help: "Depth.", labelNames: ["name"], registers: [theirs] }).set(
    { name: "q" },
    2.5,
  );
  const buckets = [0.005, 0.1, 1];
  const mine = ours.histogram("latency_seconds", "Latency.", ["verb"], buckets);
  const other = new Histogram({
    name: "latency_seconds",
    help: "Latency.",
    labelNames: ["verb"],
    buckets,
    registers: [theirs],
  });
  for (const seconds of [0.001, 0.05, 0.05, 2]) {
    mine.observe({ verb: "GET" }, seconds);
    other.observe({ verb: "GET" }, seconds);
  }
  assert.equal(await ours.metrics(), await theirs.metrics());
  assert.equal(ours.contentType, theirs.contentType);
});

Deno.test("importing the library does not load prom-client", async () => {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", new URL("../mod.ts", import.meta.url).pathname],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
  const graph = JSON.parse(new TextDecoder().decode(output.stdout)) as {
    modules: { specifier: string }[];
  };
  const specifiers = graph.modules.map((m) => m.specifier);
  assert.ok(specifiers.some((s) => s.endsWith("/metrics_registry.ts")), "the graph was read");
  assert.ok(specifiers.includes("npm:/@kubernetes/client-node@2.0.1"), "npm packages are listed");
  assert.deepEqual(specifiers.filter((s) => s.includes("prom-client")), []);
});

Deno.test("requests to workload clusters are counted by cluster, method and code (client-go's labels), with latency", async () => {
  await using f = await fixture({ clusters: 1 });
  await f.connected("workload-1");
  const cluster = { namespace: "default", name: "workload-1" };
  await f.cache.getReader(cluster).list(kinds.Node);
  await f.cache.getUncachedClient(cluster).get(kinds.ConfigMap, { namespace: "default", name: "x" })
    .catch(() => {});
  const labels = 'cluster_name="workload-1",cluster_namespace="default"';
  const value = async (series: string) => {
    const text = await f.cache.metrics.registry.metrics();
    const line = text.split("\n").find((l) => l.startsWith(series + " "));
    return line ? Number(line.slice(series.length + 1)) : 0;
  };
  // Reported with the next probe.
  await eventually(
    async () => await value(`rest_client_requests_total{${labels},code="404",method="GET"}`) === 1,
    "the 404",
  );
  assert.ok(await value(`rest_client_requests_total{${labels},code="200",method="GET"}`) >= 3);
  assert.ok(await value(`rest_client_request_duration_seconds_count{${labels},verb="GET"}`) >= 4);
  assert.ok(
    await value(
      `clustercache_informer_last_synced_resource_version{${labels},kind="v1 Node"}`,
    ) > 0,
  );
  // A forgotten cluster's series go with it.
  await f.fleet.removeCluster("workload-1");
  await eventually(
    async () => !(await f.cache.metrics.registry.metrics()).includes('cluster_name="workload-1"'),
    "the cluster's series to go",
  );
});
