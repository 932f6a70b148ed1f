import type { Command } from 'commander';
import { stringify } from 'yaml';
import { redactSecrets } from '../config/secrets.js';
import { loadConfigOrExit } from './common.js';

/**
 * `crr config --config F [--json]`: validates the config file with its `CRR__...` environment
 * overrides applied and prints the effective config, every default filled in, as YAML (or JSON),
 * every secret censored as `[redacted]` (src/config/secrets.ts: SASL passwords, S3 secret keys,
 * tokens, the password part of a connection string). Exit 0, or 78 with each invalid path named.
 */
export function registerConfigCommand(program: Command): void {
  program
    .command('config')
    .description('validate the config (with its CRR__ environment overrides) and print the effective config, secrets redacted (exit 0, 78 invalid)')
    .requiredOption('-c, --config <file>', 'YAML configuration file')
    .option('--json', 'print JSON instead of YAML')
    .action((opts: { config: string; json?: boolean }) => {
      const shown = redactSecrets(loadConfigOrExit(opts.config));
      process.stdout.write(opts.json ? `${JSON.stringify(shown, null, 2)}\n` : stringify(shown));
    });
}
