import { z } from 'zod';

/** Logging: pino JSON on stdout. */
export const LogSchema = z.strictObject({
  /** pino level. Default `info`. */
  level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});
