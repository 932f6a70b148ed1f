import type { Options } from 'p-retry';

/**
 * p-retry options of crr's supervisors (mirror flows, replay): retry for as long as the process
 * runs, waiting `initialMs`, then doubling up to `maxMs`, with jitter (p-retry's `randomize`:
 * ×1 to ×2), until `signal` aborts.
 */
export function restartBackoff(initialMs: number, maxMs: number, signal: AbortSignal): Options {
  return { retries: Number.POSITIVE_INFINITY, factor: 2, minTimeout: initialMs, maxTimeout: maxMs, randomize: true, signal };
}
