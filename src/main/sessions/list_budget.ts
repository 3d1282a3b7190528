/**
 * The fleet's budget of informer lists in flight (main thread only). When an operator restarts with
 * 1,000 clusters, every cluster would list every watched kind at once: the API servers and this
 * process's memory would take the peak together (Argo CD saw 13 GB before it paged). Informers ask
 * before they list; at most `concurrency` lists, holding at most `objects` objects between them,
 * run at once (one list always may, however big). Lists a read waits for go first, then in the
 * order asked.
 *
 * @module
 */

/** Limits of the budget. */
export interface ListBudgetLimits {
  /** Lists in flight at once. */
  concurrency: number;
  /** Objects the lists in flight may hold together (a list of unknown size counts `unknownObjects`). */
  objects: number;
}

/** What a list of unknown size is counted as: one default page. */
const UNKNOWN_OBJECTS = 500;

/** Who asks: a session, whose lists end with it. */
export interface ListOwner {
  readonly alive: boolean;
}

interface Ask {
  owner: ListOwner;
  kind: string;
  objects: number;
  urgent: boolean;
  grant: () => void;
}

/** Lists in flight and lists waiting. */
export class ListBudget {
  readonly #limits: ListBudgetLimits;
  readonly #running = new Map<ListOwner, Map<string, number>>();
  readonly #waiting: Ask[] = [];
  #lists = 0;
  #objects = 0;
  #peakObjects = 0;

  constructor(limits: ListBudgetLimits) {
    this.#limits = limits;
  }

  /**
   * Asks for a list of `kind` by `owner` (a session); `grant` is called when it may start (at once,
   * when the budget allows). A repeated ask of the same owner and kind replaces the earlier one.
   */
  ask(
    owner: ListOwner,
    kind: string,
    objects: number | undefined,
    urgent: boolean,
    grant: () => void,
  ): void {
    this.#drop(owner, kind);
    this.#waiting.push({ owner, kind, objects: objects ?? UNKNOWN_OBJECTS, urgent, grant });
    this.#admit();
  }

  /** The list is over (or was given up while waiting). */
  done(owner: ListOwner, kind: string): void {
    this.#drop(owner, kind);
    this.#admit();
  }

  /** Forgets everything of an owner (its session ended). */
  forget(owner: ListOwner): void {
    this.#forget(owner);
    this.#admit();
  }

  #forget(owner: ListOwner): void {
    for (const kind of [...(this.#running.get(owner)?.keys() ?? [])]) this.#drop(owner, kind);
    for (let i = this.#waiting.length - 1; i >= 0; i--) {
      if (this.#waiting[i]!.owner === owner) this.#waiting.splice(i, 1);
    }
  }

  /** Lists in flight, lists waiting, objects in flight and their peak (for tests and metrics). */
  get stats(): { running: number; waiting: number; objects: number; peakObjects: number } {
    return {
      running: this.#lists,
      waiting: this.#waiting.length,
      objects: this.#objects,
      peakObjects: this.#peakObjects,
    };
  }

  #drop(owner: ListOwner, kind: string): void {
    const running = this.#running.get(owner);
    const objects = running?.get(kind);
    if (objects !== undefined) {
      running!.delete(kind);
      if (running!.size === 0) this.#running.delete(owner);
      this.#lists--;
      this.#objects -= objects;
    }
    const at = this.#waiting.findIndex((a) => a.owner === owner && a.kind === kind);
    if (at >= 0) this.#waiting.splice(at, 1);
  }

  #admit(): void {
    // A session that ended (crashed, moved, closed) says nothing more: its places are free.
    for (const owner of [...this.#running.keys()]) if (!owner.alive) this.#forget(owner);
    for (let i = this.#waiting.length - 1; i >= 0; i--) {
      if (!this.#waiting[i]!.owner.alive) this.#waiting.splice(i, 1);
    }
    while (this.#waiting.length > 0 && this.#lists < this.#limits.concurrency) {
      const at = Math.max(0, this.#waiting.findIndex((a) => a.urgent));
      const next = this.#waiting[at]!;
      if (this.#lists > 0 && this.#objects + next.objects > this.#limits.objects) return;
      this.#waiting.splice(at, 1);
      let running = this.#running.get(next.owner);
      if (!running) this.#running.set(next.owner, running = new Map());
      running.set(next.kind, next.objects);
      this.#lists++;
      this.#objects += next.objects;
      this.#peakObjects = Math.max(this.#peakObjects, this.#objects);
      next.grant();
    }
  }
}
