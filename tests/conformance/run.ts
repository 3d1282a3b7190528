/** Runs every conformance case as a step of one test, each in a namespace of its own. */
import { cases } from "./cases.ts";
import type { Target } from "./target.ts";

/** Runs the cases against `target`; each case is a test step, so each fails on its own. */
export async function runConformance(test: Deno.TestContext, target: Target): Promise<void> {
  const run = crypto.randomUUID().slice(0, 6);
  for (const [i, c] of cases.entries()) {
    await test.step(`${target.name}: ${c.name}`, async () => {
      const ns = `conformance-${run}-${i}`;
      await target.ok("POST", "/api/v1/namespaces", {
        body: { apiVersion: "v1", kind: "Namespace", metadata: { name: ns } },
      });
      await c.run(target, ns);
    });
  }
}
