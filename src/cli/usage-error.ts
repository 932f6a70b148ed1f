/**
 * A refusal of a CLI command before anything is opened or changed (an unknown alias, a cluster
 * without the config the command needs): the command prints `message` and exits `exitCode`
 * (src/cli/exit-codes.ts).
 */
export class CliUsageError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
    this.name = 'CliUsageError';
  }
}
