import { z } from 'zod';

/**
 * The `reseed` section: what a replica does when it becomes OUTDATED (a sync-breaking event).
 *
 * - `mode`: `auto` (default): the replica's daemon (`crr run`) takes a fresh backup of the
 *   primary's store, restores it and resumes replay, by itself; `manual`: it stays OUTDATED
 *   until an operator runs `crr reseed --execute`.
 * - `retryBackoffInitialMs` / `retryBackoffMaxMs`: a failed reseed is retried after the initial
 *   delay, doubling up to the maximum. Defaults 2000 and 60000.
 */
export const ReseedSchema = z.strictObject({
  mode: z.enum(['auto', 'manual']).default('auto'),
  retryBackoffInitialMs: z.number().int().min(10).default(2000),
  retryBackoffMaxMs: z.number().int().min(10).default(60_000),
});
export type ReseedConfig = z.infer<typeof ReseedSchema>;
