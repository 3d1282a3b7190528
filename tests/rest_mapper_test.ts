import assert from "node:assert/strict";
import { Transport } from "../workers/http_transport.ts";
import { internResourceList, RestMapper } from "../workers/rest_mapper.ts";
import { SimulatedApiServer } from "../testing/sim/api_server.ts";
import { restConfigFor } from "./helpers/rest_config.ts";

Deno.test("shared in-flight discovery: one caller's abort does not fail the others", async () => {
  await using server = await SimulatedApiServer.start({ name: "discovery" });
  const rest = restConfigFor(server, 5_000);
  const transport = new Transport(rest, 1024 * 1024);
  try {
    server.setFaults({ latencyMs: 300 });
    const mapper = new RestMapper(transport);
    const impatient = new AbortController();
    const first = mapper.mapping({ apiVersion: "v1", kind: "ConfigMap" }, impatient.signal);
    const second = mapper.mapping({ apiVersion: "v1", kind: "Pod" }, new AbortController().signal);
    const third = mapper.mapping({ apiVersion: "v1", kind: "Node" });
    setTimeout(() => impatient.abort(new Error("the first caller gave up")), 50);
    await assert.rejects(first, /the first caller gave up/);
    assert.equal((await second).plural, "pods");
    assert.equal((await third).namespaced, false);
    const discoveries = server.requestsSince(0).filter((r) => r.path === "/api/v1");
    assert.equal(discoveries.length, 1, "one request served them all");
  } finally {
    transport.close();
  }
});

Deno.test("discovered lists keep only what mapping reads, one copy per content for every session", () => {
  const served = (extra: string) => ({
    resources: [
      { name: "pods", kind: "Pod", namespaced: true, verbs: ["get", "list"], shortNames: ["po"] },
      { name: "pods/status", kind: "Pod", namespaced: true, verbs: ["get"] },
      { name: extra, kind: "Node", namespaced: false, storageVersionHash: "abc" },
    ],
  });
  const one = internResourceList(served("nodes"));
  const other = internResourceList(structuredClone(served("nodes")));
  assert.equal(one, other, "two clusters serving the same kinds share one list");
  assert.deepEqual(one.resources?.[0], { name: "pods", kind: "Pod", namespaced: true });
  assert.notEqual(internResourceList(served("minions")), one, "different content, its own list");
  assert.deepEqual(internResourceList(null), { resources: [] });
});
