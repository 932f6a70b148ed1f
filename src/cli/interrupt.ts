import { EXIT } from './exit-codes.js';

/** The signals a one-shot command stops on. */
export type StopSignal = 'SIGINT' | 'SIGTERM';

/** What {@link onStopSignals} returns. */
export interface StopSignals {
  /** Aborts (reason: an Error `interrupted by SIGxxx`) when SIGINT or SIGTERM arrives. */
  readonly signal: AbortSignal;
  /** The signal that arrived, if one did. */
  readonly received: StopSignal | undefined;
  /** The exit code of the signal that arrived: 130 for SIGINT, 143 for SIGTERM (128 + its number). */
  exitCode(): number;
  /** Removes the handlers (call it in `finally`). */
  dispose(): void;
}

/**
 * Makes SIGINT (Ctrl-C) and SIGTERM (`kill`, a service manager, Kubernetes) stop a one-shot
 * command the same way: `signal` aborts, the command's domain code cleans up what it started
 * (a multipart upload and the objects of an incomplete backup, a staging schema) and the
 * command exits {@link StopSignals.exitCode}. Without this, SIGTERM would kill the process
 * outright and leave them behind. Both handlers go at the first signal, so a second one of
 * either kind kills the process at once (the operator's way out of a cleanup that hangs).
 */
export function onStopSignals(): StopSignals {
  const abort = new AbortController();
  let received: StopSignal | undefined;
  const handlers: Record<StopSignal, () => void> = {
    SIGINT: () => stop('SIGINT'),
    SIGTERM: () => stop('SIGTERM'),
  };
  const dispose = (): void => {
    process.off('SIGINT', handlers.SIGINT);
    process.off('SIGTERM', handlers.SIGTERM);
  };
  function stop(sig: StopSignal): void {
    dispose();
    received = sig;
    abort.abort(new Error(`interrupted by ${sig}`));
  }
  process.once('SIGINT', handlers.SIGINT);
  process.once('SIGTERM', handlers.SIGTERM);
  return {
    signal: abort.signal,
    get received() {
      return received;
    },
    exitCode: () => (received === 'SIGTERM' ? EXIT.TERMINATED : EXIT.INTERRUPTED),
    dispose,
  };
}
