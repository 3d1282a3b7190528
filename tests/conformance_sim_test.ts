/**
 * The conformance cases against the simulator: whatever a real kube-apiserver does in
 * tests/real/conformance.ts, the simulator must do too.
 */
import { SimulatedFleet } from "../testing/mod.ts";
import { runConformance } from "./conformance/run.ts";
import { Target } from "./conformance/target.ts";

Deno.test("conformance: simulator", async (test) => {
  await using fleet = await SimulatedFleet.start({ clusters: 0, server: { historySize: 50 } });
  const target = new Target("simulator", fleet.management);
  try {
    await runConformance(test, target);
  } finally {
    target.close();
  }
});

Deno.test("conformance: simulator as an older server (WatchList off, as 1.27-1.31 by default)", async (test) => {
  await using fleet = await SimulatedFleet.start({
    clusters: 0,
    server: { historySize: 50, watchList: false },
  });
  const target = new Target("simulator without WatchList", fleet.management);
  try {
    await runConformance(test, target);
  } finally {
    target.close();
  }
});
