// Keeps archive commits in the order entries were handed to the archiver, although their analysis
// runs in parallel workers and finishes in any order: UIDs then follow arrival order (an imported
// mailbox keeps its order, as Dovecot's appends do). An entry waits for its predecessor to have
// *issued* its commit (not finished it), so concurrent commits still share one group commit; it waits
// at most maxWaitMs, so a slow or stuck predecessor delays others only that long.

export interface CommitTurn {
  /** Resolves when the predecessor has issued its commit (or after maxWaitMs). Idempotent. */
  wait(): Promise<void>;
  /** This entry has issued its commit, or will not commit: let the next one go. Idempotent. */
  release(): void;
}

export class CommitOrder {
  private last: Promise<void> = Promise.resolve();

  constructor(private readonly maxWaitMs = 2000) {}

  take(): CommitTurn {
    const previous = this.last;
    let release!: () => void;
    this.last = new Promise<void>((resolve) => {
      release = resolve;
    });
    let waited: Promise<void> | null = null;
    return {
      wait: () => {
        waited ??= new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, this.maxWaitMs);
          void previous.then(() => {
            clearTimeout(timer);
            resolve();
          });
        });
        return waited;
      },
      release,
    };
  }
}
