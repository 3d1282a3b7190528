/**
 * A counting semaphore: at most `limit` holders at once, the rest wait in order.
 *
 * @module
 */

/** Limits concurrency. */
export class Semaphore {
  readonly #limit: number;
  #held = 0;
  readonly #waiting: (() => void)[] = [];

  /** @param limit Holders allowed at once (at least 1). */
  constructor(limit: number) {
    this.#limit = Math.max(1, limit);
  }

  /** Waits for a slot; returns the function that gives it back (call it exactly once). */
  async acquire(): Promise<() => void> {
    if (this.#held >= this.#limit) {
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    } else this.#held++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.#waiting.shift();
      if (next) next(); // the slot passes straight to the next waiter
      else this.#held--;
    };
  }

  /** Holders now. */
  get held(): number {
    return this.#held;
  }
}
