/**
 * Child process of the `watchlist` benchmark: runs one informer (the worker's own code) on this
 * thread against a running simulated cluster and prints what it measured as JSON. A process per
 * measurement keeps every heap figure clean.
 *
 * `--mode list|stream`: sync 50k objects by paged lists or by a streaming WatchList, sampling the
 * heap every 5 ms; prints the peak above the heap before the sync. `--mode restart`: sync, have
 * the API server stopped and started (refused, then resourceVersions that continue), and print how
 * many relists that cost.
 */
import { parseArgs } from "node:util";
import type { RESTConfig } from "../../src/shared/rest_config.ts";
import { Transport } from "../../workers/http_transport.ts";
import { Informer } from "../../workers/informer.ts";
import { RestMapper } from "../../workers/rest_mapper.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    mode: { type: "string" },
    dir: { type: "string" },
    admin: { type: "string" },
    namespace: { type: "string" },
  },
});
const kubeconfig = await Deno.readTextFile(`${values.dir}/workload-1.kubeconfig`);
const field = (name: string) => atob(new RegExp(`${name}: (\\S+)`).exec(kubeconfig)?.[1] ?? "");
const rest: RESTConfig = {
  server: /server: (\S+)/.exec(kubeconfig)![1]!,
  caPem: field("certificate-authority-data"),
  clientCertificatePem: field("client-certificate-data"),
  clientKeyPem: field("client-key-data"),
  userAgent: "bench-informer",
  timeoutMs: 60_000,
  qps: 1_000,
  burst: 1_000,
};
const transport = new Transport(rest, 512 * 1024 * 1024);
let lists = 0;
const informer = new Informer(
  { apiVersion: "v1", kind: "Pod" },
  new RestMapper(transport),
  transport,
  {
    pageSize: 500,
    watchRequestTimeoutMs: 660_000,
    watchIdleTimeoutMs: 150_000,
    maxEventBytes: 256 * 1024 * 1024,
    backoff: { initialMs: 200, maxMs: 2_000 },
    indexes: [],
    watchList: values.mode !== "list",
  },
  { debug: () => {}, warn: () => {} },
  (event) => {
    if (event === "list") lists++;
  },
);
const gc = (globalThis as { gc?: () => void }).gc;
gc?.();
const before = Deno.memoryUsage().heapUsed;
let peak = before;
const sampler = setInterval(() => peak = Math.max(peak, Deno.memoryUsage().heapUsed), 5);
const started = performance.now();
informer.start();
await informer.waitForSync(AbortSignal.timeout(600_000));
const syncS = (performance.now() - started) / 1000;
clearInterval(sampler);
const objects = informer.store.size;
let relists = 0;
if (values.mode === "restart") {
  const admin = (path: string) =>
    fetch(`${values.admin}${path}`, { method: "POST" }).then((r) => r.body?.cancel());
  const listsBefore = lists;
  await admin("clusters/workload-1/stop");
  await new Promise((r) => setTimeout(r, 2_000));
  await admin("clusters/workload-1/start");
  await admin(`clusters/workload-1/flood?count=10&kind=pods&namespace=${values.namespace}`);
  const deadline = Date.now() + 60_000;
  while (informer.store.size < objects + 10 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
  }
  relists = lists - listsBefore;
}
console.log(
  JSON.stringify({ before, peak, syncS, objects, relists, converged: informer.store.size }),
);
informer.stop();
transport.close();
Deno.exit(0);
