/**
 * Yields to the event loop for one macrotask: timers, messages and I/O of everything else get their
 * turn before the caller goes on. Long work cut into slices with it never holds a thread for long.
 * Loaded on the main thread.
 *
 * `setTimeout(0)` is clamped to milliseconds once nested; a message on a `MessageChannel` is a
 * macrotask of a few microseconds. The channel is closed while nobody waits, so it never keeps a
 * process alive.
 *
 * @module
 */

let channel: MessageChannel | undefined;
let waiting: (() => void)[] = [];

function wake(this: MessagePort): void {
  const woken = waiting;
  waiting = [];
  for (const resolve of woken) resolve();
  const current = channel;
  // The woken continue in microtasks; one that yields again keeps the channel, or it closes.
  queueMicrotask(() => {
    if (channel !== current || !current) return;
    if (waiting.length > 0) current.port2.postMessage(0);
    else {
      current.port1.close();
      current.port2.close();
      channel = undefined;
    }
  });
}

/**
 * Resolves in a later macrotask.
 *
 * @example Cutting a long loop into slices
 * ```ts
 * import { nextMacrotask } from "./macrotask.ts";
 * let slice = performance.now();
 * for (let i = 0; i < 100_000; i++) {
 *   if (performance.now() - slice > 5) {
 *     await nextMacrotask(); // others run here
 *     slice = performance.now();
 *   }
 * }
 * ```
 */
export function nextMacrotask(): Promise<void> {
  return new Promise<void>((resolve) => {
    waiting.push(resolve);
    // While the channel is open, a message is in flight, or `wake`'s check is about to post one:
    // posting here too would leave one more message queued at every slice of a long drain.
    if (!channel) {
      channel = new MessageChannel();
      channel.port1.onmessage = wake;
      channel.port2.postMessage(0);
    }
  });
}
