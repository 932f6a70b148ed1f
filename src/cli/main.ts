import { Command, CommanderError } from 'commander';
import { version } from '../version.js';
import { EXIT } from './exit-codes.js';
import { registerMirrorCommand } from './mirror.js';
import { registerStatusCommand } from './status.js';
import { registerCheckpointsCommand } from './checkpoints.js';
import { registerRunCommands } from './run.js';
import { registerWriteCommand } from './write.js';
import { registerVerifyCommand } from './verify.js';
import { registerBackupCommand } from './backup.js';
import { registerRestoreCommand } from './restore.js';
import { registerAdminCommand } from './admin.js';
import { registerReseedCommand } from './reseed.js';
import { registerPromoteCommand } from './promote.js';
import { registerConfigCommand } from './config.js';
import { redactText } from '../config/secrets.js';
import { registerAclsCommand } from './acls.js';

/**
 * The `crr` command. Every subcommand has `--help`; a bad argument prints the usage of the
 * command it was given to and exits 2.
 */
export function buildProgram(): Command {
  const program = new Command('crr')
    .description('crr: cross-region replication of Kafka change topics, exactly once')
    .version(version, '-V, --version', 'print the version')
    .showHelpAfterError()
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  registerMirrorCommand(program);
  registerCheckpointsCommand(program);
  registerStatusCommand(program);
  registerRunCommands(program);
  registerWriteCommand(program);
  registerVerifyCommand(program);
  registerBackupCommand(program);
  registerRestoreCommand(program);
  registerAdminCommand(program);
  registerReseedCommand(program);
  registerPromoteCommand(program);
  registerConfigCommand(program);
  registerAclsCommand(program);
  program
    .command('version')
    .description('print the version of crr')
    .action(() => {
      process.stdout.write(`crr ${version}\n`);
    });
  for (const cmd of program.commands) cmd.exitOverride().showHelpAfterError();
  return program;
}

try {
  await buildProgram().parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    const ok = err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help';
    process.exit(ok ? EXIT.OK : EXIT.USAGE);
  }
  process.stderr.write(`crr: ${redactText(err instanceof Error ? (err.stack ?? err.message) : String(err))}\n`);
  process.exit(EXIT.SOFTWARE);
}
