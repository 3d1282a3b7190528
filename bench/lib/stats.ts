/** Percentiles and rates for benchmark samples. */

export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index]!;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export async function waitFor(
  check: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}`);
    }
    await sleep(20);
  }
}

/**
 * Open-loop load: calls `op` at `ratePerSecond` on schedule for `durationMs`, measuring each call
 * from when it was due (not when it started), so a blocked event loop shows up as latency
 * (no coordinated omission).
 */
export async function openLoop(
  ratePerSecond: number,
  durationMs: number,
  op: () => unknown | Promise<unknown>,
): Promise<number[]> {
  const latencies: number[] = [];
  const interval = 1000 / ratePerSecond;
  const start = performance.now();
  const pending: Promise<void>[] = [];
  let issued = 0;
  const { promise, resolve } = Promise.withResolvers<void>();
  let completed = 0;
  const debug = Deno.env.get("BENCH_DEBUG")
    ? setInterval(() => console.error("openLoop issued", issued, "completed", completed), 1000)
    : undefined;
  const timer = setInterval(() => {
    const now = performance.now();
    while (issued * interval <= now - start && issued * interval < durationMs) {
      const due = start + issued * interval;
      issued++;
      pending.push((async () => {
        await op();
        completed++;
        latencies.push(performance.now() - due);
      })());
    }
    if (issued * interval >= durationMs) {
      clearInterval(timer);
      resolve();
    }
  }, 1);
  await promise;
  await Promise.all(pending);
  clearInterval(debug);
  return latencies;
}
