import assert from "node:assert/strict";

interface OtlpSpan {
  name: string;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  kind: number;
  attributes?: { key: string; value: Record<string, unknown> }[];
}

/** A local OTLP/HTTP receiver (JSON): what Deno's exporter sends to `/v1/traces`. */
function receiver() {
  const spans: OtlpSpan[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (request) => {
    if (new URL(request.url).pathname === "/v1/traces") {
      const body = await request.json() as {
        resourceSpans?: { scopeSpans?: { spans?: OtlpSpan[] }[] }[];
      };
      for (const resource of body.resourceSpans ?? []) {
        for (const scope of resource.scopeSpans ?? []) spans.push(...scope.spans ?? []);
      }
    } else await request.body?.cancel();
    return new Response("{}", { headers: { "content-type": "application/json" } });
  });
  return { spans, server };
}

function attribute(span: OtlpSpan, key: string): unknown {
  const value = span.attributes?.find((a) => a.key === key)?.value;
  return value && Object.values(value)[0];
}

Deno.test("traces: a Controller's reconcile is a span, and the calls it makes into the cluster's session are its children, with the cluster", async () => {
  const { spans, server } = receiver();
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-all",
        new URL("./fixtures/traced_controller.ts", import.meta.url).pathname,
      ],
      env: {
        OTEL_DENO: "true",
        OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${server.addr.port}`,
        OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
        OTEL_SERVICE_NAME: "tracing-test",
      },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    for (let i = 0; i < 50 && !spans.some((s) => s.name === "reconcile traced"); i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    await server.shutdown();
  }
  const reconcile = spans.find((s) => s.name === "reconcile traced");
  assert.ok(reconcile, `a reconcile span among: ${spans.map((s) => s.name).join(", ")}`);
  assert.equal(attribute(reconcile, "clustercache.controller"), "traced");
  assert.equal(attribute(reconcile, "k8s.cluster.name"), "workload-1");
  assert.equal(attribute(reconcile, "clustercache.cluster"), "default/workload-1");

  const list = spans.find((s) => s.name === "clustercache.list");
  const create = spans.find((s) => s.name === "clustercache.create");
  for (const call of [list, create]) {
    assert.ok(call, "a span for each call into the session");
    assert.equal(call.traceId, reconcile.traceId);
    assert.equal(call.parentSpanId, reconcile.spanId, "a child of the reconcile");
    assert.equal(call.kind, 3, "SPAN_KIND_CLIENT");
    assert.equal(attribute(call, "k8s.cluster.name"), "workload-1");
    assert.equal(attribute(call, "clustercache.kind"), "v1 ConfigMap");
  }
  assert.equal(attribute(list!, "clustercache.cached"), true);
});
