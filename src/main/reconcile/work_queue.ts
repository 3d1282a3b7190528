/**
 * The reconciler's queue: keys are processed as soon as they are added, never two at once for the
 * same key (an add during processing runs again afterwards), and each processing may ask to run
 * again after a delay. Different keys never wait for each other.
 *
 * @module
 */

/** Processes one key; returns a delay to run again after, or `undefined` for no requeue. */
export type Processor = (key: string) => Promise<number | undefined>;

/** A per-key serialising queue with delayed re-adds. */
export class WorkQueue {
  readonly #process: Processor;
  readonly #onError: (key: string, error: unknown) => number;
  readonly #running = new Set<string>();
  readonly #dirty = new Set<string>();
  readonly #scheduled = new Map<string, ReturnType<typeof setTimeout>>();
  readonly #timers = new Map<string, ReturnType<typeof setTimeout>>();
  readonly #idle = new Set<() => void>();
  #stopped = false;

  /**
   * @param process The work.
   * @param onError Called when `process` throws; returns the delay to retry after.
   */
  constructor(process: Processor, onError: (key: string, error: unknown) => number) {
    this.#process = process;
    this.#onError = onError;
  }

  /** Processes `key` soon (once, however often it is added meanwhile). */
  add(key: string): void {
    if (this.#stopped) return;
    if (this.#running.has(key)) {
      this.#dirty.add(key);
      return;
    }
    if (this.#scheduled.has(key)) return;
    this.#scheduled.set(key, setTimeout(() => void this.#run(key), 0));
  }

  /** Processes `key` after `ms`, replacing any earlier delayed add of it. */
  addAfter(key: string, ms: number): void {
    if (this.#stopped) return;
    clearTimeout(this.#timers.get(key));
    this.#timers.set(
      key,
      setTimeout(() => {
        this.#timers.delete(key);
        this.add(key);
      }, Math.max(0, ms)),
    );
  }

  /** Cancels the delayed add of `key`. */
  forget(key: string): void {
    clearTimeout(this.#timers.get(key));
    this.#timers.delete(key);
  }

  /** Number of keys with a delayed add. */
  get delayed(): number {
    return this.#timers.size;
  }

  async #run(key: string): Promise<void> {
    this.#scheduled.delete(key);
    if (this.#stopped) return;
    this.#running.add(key);
    let after: number | undefined;
    try {
      after = await this.#process(key);
    } catch (error) {
      after = this.#onError(key, error);
    } finally {
      this.#running.delete(key);
    }
    if (this.#stopped) return this.#notifyIdle();
    if (after !== undefined) this.addAfter(key, after);
    else this.forget(key);
    if (this.#dirty.delete(key)) this.add(key);
    this.#notifyIdle();
  }

  #notifyIdle(): void {
    if (this.#running.size > 0) return;
    for (const resolve of this.#idle) resolve();
    this.#idle.clear();
  }

  /** Stops: cancels timers and waits for running work to finish. */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const timer of [...this.#timers.values(), ...this.#scheduled.values()]) {
      clearTimeout(timer);
    }
    this.#timers.clear();
    this.#scheduled.clear();
    this.#dirty.clear();
    if (this.#running.size > 0) await new Promise<void>((resolve) => this.#idle.add(resolve));
  }
}
