import { loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { CrrError } from '../errors.js';
import { EXIT } from './exit-codes.js';

/**
 * Loads the config for a command, or prints the error (which names each invalid path) to
 * stderr and exits with {@link EXIT.CONFIG}: crr never starts on a bad config.
 */
export function loadConfigOrExit(path: string): Config {
  try {
    return loadConfig(path);
  } catch (err) {
    if (err instanceof CrrError) {
      process.stderr.write(`crr: ${err.message}\n`);
      process.exit(EXIT.CONFIG);
    }
    throw err;
  }
}
