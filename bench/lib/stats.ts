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
 * Issues `op` at `ratePerSecond` on a fixed schedule (open loop) for `durationMs`, or while `more`
 * says so; latencies count from when each call was due, so a blocked event loop shows up as latency.
 */
export async function openLoop(
  ratePerSecond: number,
  durationMs: number | ((elapsedMs: number) => boolean),
  op: () => unknown | Promise<unknown>,
): Promise<number[]> {
  const more = typeof durationMs === "number"
    ? (elapsed: number) => elapsed < durationMs
    : durationMs;
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
    while (issued * interval <= now - start && more(issued * interval)) {
      const due = start + issued * interval;
      issued++;
      pending.push((async () => {
        await op();
        completed++;
        latencies.push(performance.now() - due);
      })());
    }
    if (!more(issued * interval)) {
      clearInterval(timer);
      resolve();
    }
  }, 1);
  await promise;
  await Promise.all(pending);
  clearInterval(debug);
  return latencies;
}

/**
 * An open loop that covers a disturbance whole: at least `minMs`, and on until `disturbance` has
 * settled and `marginMs` more have passed (its aftermath, a parse or a GC, counts too).
 *
 * @throws {Error} When the disturbance has not settled within `maxMs`: a phase that ends before
 *   what it is meant to measure measures nothing, and must not pass for a result.
 */
export async function openLoopCovering(
  ratePerSecond: number,
  disturbance: Promise<unknown>,
  op: () => unknown | Promise<unknown>,
  { minMs, marginMs, maxMs, what }: {
    minMs: number;
    marginMs: number;
    maxMs: number;
    what: string;
  },
): Promise<number[]> {
  let settledAt: number | undefined;
  const start = performance.now();
  const settled = () => settledAt ??= performance.now() - start;
  disturbance.then(settled, settled);
  const latencies = await openLoop(ratePerSecond, (elapsed) => {
    if (elapsed >= maxMs) return false;
    return elapsed < minMs || settledAt === undefined || elapsed < settledAt + marginMs;
  }, op);
  if (settledAt === undefined) {
    throw new Error(`${what} did not end within ${maxMs} ms: the phase measured nothing of it`);
  }
  return latencies;
}

/** Open file descriptors of this process (sockets, files, pipes): what leaked connections would grow. */
export function openDescriptors(): number {
  return [...Deno.readDirSync("/proc/self/fd")].length;
}

/** The most descriptors this process may open (its soft limit; Infinity when unlimited). */
export function descriptorLimit(): number {
  const limits = Deno.readTextFileSync("/proc/self/limits");
  const soft = /^Max open files\s+(\S+)/m.exec(limits)?.[1];
  return soft === undefined || soft === "unlimited" ? Infinity : Number(soft);
}
