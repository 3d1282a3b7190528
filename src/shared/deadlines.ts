/**
 * Deadlines for many concurrent calls without a timer each: one timer, armed for the earliest
 * deadline known, expires what is due and arms itself for the next. Arming and clearing a timer per
 * call cost more than the call's message round trip on the read path; a sweep at a fixed rate woke
 * every waiting handle 40 times a second. Loaded by both sides.
 *
 * @module
 */

/** Tracks deadlines by id and calls `onExpire` for each that passes. */
export class Deadlines {
  readonly #due = new Map<number, number>();
  readonly #onExpire: (id: number) => void;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** When the armed timer fires (epoch ms). */
  #armedFor = Infinity;

  /** @param onExpire Called (once) with the id of an expired entry. */
  constructor(onExpire: (id: number) => void) {
    this.#onExpire = onExpire;
  }

  /** Expires `id` at `deadline` (epoch ms) unless deleted first. */
  set(id: number, deadline: number): void {
    this.#due.set(id, deadline);
    if (deadline < this.#armedFor) this.#arm(deadline);
  }

  /**
   * Forgets `id`. The timer stays armed: it finds nothing due when it fires and arms itself for
   * the next deadline (cheaper than re-arming on every answer).
   */
  delete(id: number): void {
    this.#due.delete(id);
  }

  #arm(at: number): void {
    clearTimeout(this.#timer);
    this.#armedFor = at;
    this.#timer = setTimeout(() => this.#fire(), Math.max(0, at - Date.now()));
  }

  #fire(): void {
    this.#timer = undefined;
    this.#armedFor = Infinity;
    const now = Date.now();
    let next = Infinity;
    const expired: [number, number][] = [];
    for (const [id, deadline] of this.#due) {
      if (deadline <= now) expired.push([id, deadline]);
      else if (deadline < next) next = deadline;
    }
    // Earliest first, also when a late timer finds several passed at once.
    expired.sort((a, b) => a[1] - b[1]);
    for (const [id] of expired) {
      this.#due.delete(id);
      this.#onExpire(id);
    }
    if (next < Infinity && next < this.#armedFor) this.#arm(next);
  }

  /** Stops the timer (entries stay until deleted or set again). */
  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#armedFor = Infinity;
  }
}
