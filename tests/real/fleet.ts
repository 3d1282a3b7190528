/**
 * A real fleet for the tests of `deno task test:real`, or a loud skip where Go is missing (the
 * test then counts as ignored, never as passed). The files here are not named `*_test.ts` on
 * purpose: `deno task test` walks `tests/` and must not start real servers; `test:real` names them.
 */
import { hasGo, kubernetesRelease } from "../../testing/real/build.ts";
import { RealFleet, type RealFleetOptions } from "../../testing/real/fleet.ts";

/** Whether the real-server tests can run here. */
export const goAvailable: boolean = await hasGo();
if (!goAvailable) {
  console.error(
    "SKIPPED: the real kube-apiserver tests need the Go toolchain on PATH (go version failed)",
  );
}

/**
 * The Kubernetes release the suites run against: `CLUSTERCACHE_KUBERNETES` (a minor or an exact
 * release; `deno task test:real` runs the oldest and the newest supported), else the newest.
 */
export const kubernetes: string = kubernetesRelease(
  Deno.env.get("CLUSTERCACHE_KUBERNETES") || undefined,
);
console.error(`real kube-apiservers: Kubernetes ${kubernetes}`);

/** Starts a real fleet of {@linkcode kubernetes} (unless the options say otherwise), printing build progress. */
export function realFleetOrSkip(options: RealFleetOptions): Promise<RealFleet | undefined> {
  if (!goAvailable) return Promise.resolve(undefined);
  return RealFleet.start({ kubernetes, ...options, progress: (line) => console.error(line) });
}
