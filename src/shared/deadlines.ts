/**
 * Deadlines for many concurrent calls without a timer each: one sweep, armed only while something
 * is waiting, expires what is due. Arming and clearing a timer per call cost more than the call's
 * message round trip on the read path.
 *
 * @module
 */

/** Tracks deadlines by id and calls `onExpire` for each that passes. */
export class Deadlines {
  readonly #due = new Map<number, number>();
  readonly #onExpire: (id: number) => void;
  readonly #resolutionMs: number;
  #timer: ReturnType<typeof setInterval> | undefined;

  /**
   * @param onExpire Called (once) with the id of an expired entry.
   * @param resolutionMs How late an expiry may fire.
   */
  constructor(onExpire: (id: number) => void, resolutionMs = 25) {
    this.#onExpire = onExpire;
    this.#resolutionMs = resolutionMs;
  }

  /** Expires `id` at `deadline` (epoch ms) unless deleted first. */
  set(id: number, deadline: number): void {
    this.#due.set(id, deadline);
    this.#timer ??= setInterval(() => this.#sweep(), this.#resolutionMs);
  }

  /** Forgets `id`. */
  delete(id: number): void {
    this.#due.delete(id);
    if (this.#due.size === 0) this.stop();
  }

  #sweep(): void {
    const now = Date.now();
    for (const [id, deadline] of this.#due) {
      if (deadline <= now) {
        this.#due.delete(id);
        this.#onExpire(id);
      }
    }
    if (this.#due.size === 0) this.stop();
  }

  /** Stops sweeping (entries stay until deleted or set again). */
  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
