/**
 * The run lifecycle shared by crr's single-owner consumer tasks (one run of a mirror flow,
 * src/mirror/mirror-task.ts; one run of replay, src/replay/replay-task.ts): start, wait until
 * the run ends itself or `signal` aborts, then always close its clients. A supervisor
 * (src/util/backoff.ts `supervision`) starts a new run after a failure; a run keeps no state
 * worth saving, because the truth (positions) lives on the target or in the store.
 *
 * @typeParam O the outcomes a run ends with; `'stopped'` (the signal aborted) is one of them
 */
export abstract class TaskRun<O extends string> {
  private finishRun!: (outcome: O | Error) => void;
  /** Resolves with how the run ended (see {@link end}). */
  protected readonly finished: Promise<O | Error>;
  /** Set once the run is ending: work in flight should stop taking more. */
  protected ending = false;

  constructor(private readonly stoppedOutcome: O) {
    this.finished = new Promise((resolve) => (this.finishRun = resolve));
  }

  /**
   * Runs until `signal` aborts (→ the stopped outcome), the run ends itself ({@link end}), or a
   * failure (thrown after {@link close}). Always closes before returning.
   * @returns how the run ended
   * @throws the run's failure
   */
  async run(signal: AbortSignal): Promise<O> {
    const onAbort = (): void => this.end(this.stoppedOutcome);
    signal.addEventListener('abort', onAbort, { once: true });
    let outcome: O | Error;
    try {
      if (signal.aborted) return this.stoppedOutcome;
      const early = await this.start(signal);
      outcome = early ?? (await this.finished);
    } catch (err) {
      outcome = err as Error;
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
    await this.close(outcome);
    if (outcome instanceof Error) throw outcome;
    return outcome;
  }

  /** Ends the run with `outcome` (the first call wins) and wakes whatever waits ({@link onEnding}). */
  protected end(outcome: O | Error): void {
    if (this.ending) return;
    this.ending = true;
    this.finishRun(outcome);
    this.onEnding();
  }

  /** Connects and starts consuming; may return an outcome at once (the run had nothing to do). */
  protected abstract start(signal: AbortSignal): Promise<O | undefined>;

  /** Stops consuming and closes the clients, given how the run ended. */
  protected abstract close(outcome: O | Error): Promise<void>;

  /** Wakes loops that wait, once the run is ending. Default: nothing. */
  protected onEnding(): void {}
}
