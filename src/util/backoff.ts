import type { Options } from 'p-retry';
import { CrrError } from '../errors.js';

/**
 * p-retry options of crr's supervisors (mirror flows, replay): retry for as long as the process
 * runs, waiting `initialMs`, then doubling up to `maxMs`, with jitter (p-retry's `randomize`:
 * ×1 to ×2), until `signal` aborts.
 */
export function restartBackoff(initialMs: number, maxMs: number, signal: AbortSignal): Options {
  return { retries: Number.POSITIVE_INFINITY, factor: 2, minTimeout: initialMs, maxTimeout: maxMs, randomize: true, signal };
}

/**
 * Whether a supervisor starts a failed task run again: not for a programming error (TypeError,
 * RangeError, SyntaxError) nor for a CrrError marked not retriable (docs/errors.md: a record the
 * target cannot hold, a forbidden state transition, a corrupt internal topic); yes for anything
 * else, KafkaJS errors included, since an outage surfaces as many kinds of error.
 */
export function shouldRestart(err: unknown): boolean {
  if (err instanceof TypeError || err instanceof RangeError || err instanceof SyntaxError) return false;
  if (err instanceof CrrError) return err.retriable;
  return true;
}

/**
 * The one supervision policy of crr's long-running tasks (each mirror flow, replay, the
 * reseed of a replica): p-retry options that restart a failed run after {@link restartBackoff}
 * while {@link shouldRestart} says so, calling `onRestart` before each wait; any other error
 * ends the supervision (p-retry rejects with it).
 *
 * @param onRestart told of each failure that will be retried, with its 1-based attempt number
 */
export function supervision(initialMs: number, maxMs: number, signal: AbortSignal, onRestart: (error: Error, attempt: number) => void): Options {
  return {
    ...restartBackoff(initialMs, maxMs, signal),
    onFailedAttempt: ({ error, attemptNumber }) => {
      if (!signal.aborted && shouldRestart(error)) onRestart(error, attemptNumber);
    },
    shouldRetry: ({ error }) => !signal.aborted && shouldRestart(error),
  };
}
