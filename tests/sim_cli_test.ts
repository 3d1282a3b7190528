import assert from "node:assert/strict";

Deno.test("deno task sim writes kubeconfigs and the admin URL, prints ready, and exits 0 on SIGTERM", async () => {
  const out = await Deno.makeTempDir({ prefix: "sim-cli-" });
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      new URL("../testing/sim_main.ts", import.meta.url).pathname,
      "--clusters",
      "2",
      "--out",
      out,
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  try {
    let text = "";
    while (!text.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
    assert.match(text, /^ready: management https:\/\/127\.0\.0\.1:\d+ and 2 workload clusters/);
    const files = [...Deno.readDirSync(out)].map((e) => e.name).sort();
    assert.deepEqual(files, [
      "admin-url",
      "management.kubeconfig",
      "workload-1.kubeconfig",
      "workload-2.kubeconfig",
    ]);
    assert.equal(Deno.statSync(`${out}/workload-1.kubeconfig`).mode! & 0o777, 0o600);
    const admin = (await Deno.readTextFile(`${out}/admin-url`)).trim();
    assert.match(admin, /^http:\/\/127\.0\.0\.1:\d+\/[0-9a-f-]{36}\/$/);
    const clusters = await (await fetch(`${admin}clusters`)).json();
    assert.deepEqual(clusters.map((c: { name: string }) => c.name), [
      "management",
      "workload-1",
      "workload-2",
    ]);
    const hung = await fetch(`${admin}clusters/workload-2/hang`, { method: "POST" });
    assert.equal((await hung.json()).listener, "hung");
    const wrongPrefix = await fetch(admin.replace(/[0-9a-f-]{36}\/$/, "guess/") + "clusters");
    assert.equal(wrongPrefix.status, 404);
    await wrongPrefix.body?.cancel();
  } finally {
    child.kill("SIGTERM");
    await reader.cancel();
    const stderr = await new Response(child.stderr).text();
    const status = await child.status;
    await Deno.remove(out, { recursive: true });
    assert.equal(status.code, 0, stderr);
  }
});
