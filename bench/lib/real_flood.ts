/**
 * `deno run -A bench/lib/real_flood.ts SERVER_URL CREDENTIALS_JSON NAMESPACE COUNT BYTES KIND`:
 * creates objects in a real API server from its own process, so the load generator does not share
 * the benchmark's event loop (the simulator floods from its own process too).
 */
import { type ClusterCredentials, realisticPod } from "../../testing/sim/api_server.ts";

const [url, credentialsPath, namespace, countText, bytesText, kind] = Deno.args;
const credentials = JSON.parse(await Deno.readTextFile(credentialsPath!)) as ClusterCredentials;
const client = Deno.createHttpClient({
  caCerts: [credentials.caPem],
  cert: credentials.clientCertificatePem,
  key: credentials.clientKeyPem,
});
const post = async (path: string, body: unknown) => {
  const response = await fetch(`${url}${path}`, {
    method: "POST",
    client,
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok && response.status !== 409) {
    throw new Error(`POST ${path}: ${response.status} ${text.slice(0, 200)}`);
  }
};
await post("/api/v1/namespaces", {
  apiVersion: "v1",
  kind: "Namespace",
  metadata: { name: namespace },
});
const count = Number(countText);
const payload = "x".repeat(Number(bytesText));
const pods = kind === "pods";
const path = `/api/v1/namespaces/${namespace}/${pods ? "pods" : "configmaps"}`;
let next = 0;
// In parallel, as many clients would: one at a time would measure round trips.
await Promise.all(Array.from({ length: 32 }, async () => {
  for (let i = next++; i < count; i = next++) {
    const { status: _status, ...pod } = realisticPod(namespace!, i);
    await post(
      path,
      pods ? { apiVersion: "v1", kind: "Pod", ...pod } : {
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { generateName: "flood-", labels: { flood: "true" } },
        data: { payload, t: String(Date.now()) },
      },
    );
  }
}));
client.close();
