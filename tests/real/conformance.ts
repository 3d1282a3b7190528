/**
 * The conformance cases against a real kube-apiserver (`deno task test:real`): the ground truth the
 * simulator is held to in tests/conformance_sim_test.ts.
 */
import { Target } from "../conformance/target.ts";
import { runConformance } from "../conformance/run.ts";
import { goAvailable, realFleetOrSkip } from "./fleet.ts";

Deno.test({
  name: "conformance: kube-apiserver",
  ignore: !goAvailable, // said loudly by ./fleet.ts
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(test) {
    await using fleet = await realFleetOrSkip({ clusters: 0 });
    if (!fleet) return;
    const server = fleet.management;
    const target = new Target("kube-apiserver", server, () => fleet.compact());
    try {
      await runConformance(test, target);
    } finally {
      target.close();
    }
  },
});
