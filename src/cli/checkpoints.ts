import type { Command } from 'commander';
import { translateFlow, type FlowTranslation } from '../checkpoint/translate.js';
import { describeError } from '../errors.js';
import { registerCodecs } from '../kafka/codecs.js';
import { createCliLogger } from '../log/logger.js';
import { loadConfigOrExit } from './common.js';
import { EXIT } from './exit-codes.js';
import { CliUsageError } from './usage-error.js';

/**
 * `crr checkpoints --config F [--flow a->b ...] [--group G ...] [--json]`: for each enabled flow
 * (or the named ones), per consumer group, remote topic and partition: the group's committed
 * upstream offset, the translated downstream offset and the status (`translated`, `unknown`: no
 * offset sync for the partition, `too-old`: every sync is above the committed offset). Read-only.
 * The committed offsets come from the source groups (those passing the flow's `groups` filter,
 * or the `--group` ones); when the source is unreachable, from the last checkpoints on the
 * target (`from: checkpoints`).
 *
 * Exit codes: 0; 2 a bad argument such as an unknown flow (usage printed); 70 the target cluster
 * unreachable or an internal topic undecodable; 78 bad config.
 */
export function registerCheckpointsCommand(program: Command): void {
  const cmd = program
    .command('checkpoints')
    .description("translate consumer groups' committed source offsets to the target with the offset syncs (read-only)")
    .requiredOption('-c, --config <file>', 'YAML configuration file')
    .option('--flow <source->target...>', 'only these flows (default: every enabled flow)')
    .option('--group <group...>', "only these groups (default: the source groups passing each flow's groups filter)")
    .option('--json', 'print JSON instead of a table');
  cmd.action(async (opts: { config: string; flow?: string[]; group?: string[]; json?: boolean }) => {
    const config = loadConfigOrExit(opts.config);
    try {
      const enabled = config.mirror.flows.filter((f) => f.enabled).map((f) => `${f.source}->${f.target}`);
      const all = config.mirror.flows.map((f) => `${f.source}->${f.target}`);
      const unknown = (opts.flow ?? []).filter((f) => !all.includes(f));
      if (unknown.length > 0) throw new CliUsageError(`unknown flow ${unknown.join(', ')}; configured: ${all.join(', ') || '(none)'}`, EXIT.USAGE);
      const flows = opts.flow ?? enabled;
      if (flows.length === 0) throw new CliUsageError(`${opts.config} configures no enabled flow (mirror.flows)`, EXIT.CONFIG);
      await registerCodecs();
      const log = createCliLogger('silent');
      const results: FlowTranslation[] = [];
      for (const flowId of flows) results.push(await translateFlow(config, flowId, { log, groups: opts.group }));
      process.stdout.write(opts.json ? `${JSON.stringify({ flows: results }, null, 2)}\n` : render(results));
      process.exitCode = EXIT.OK;
    } catch (err) {
      if (err instanceof CliUsageError) {
        process.stderr.write(`crr checkpoints: ${err.message}\n`);
        if (err.exitCode === EXIT.USAGE) process.stderr.write(cmd.helpInformation());
        process.exitCode = err.exitCode;
      } else {
        process.stderr.write(`crr checkpoints: ${describeError(err)}\n`);
        process.exitCode = EXIT.SOFTWARE;
      }
    }
  });
}

function render(results: FlowTranslation[]): string {
  const lines: string[] = [];
  for (const r of results) {
    const from =
      r.from === 'source'
        ? 'committed offsets read from the source groups'
        : `source unreachable (${r.sourceError ?? ''}); last checkpoints read from the target`;
    lines.push(`flow ${r.flow}: ${from}${r.complete ? '' : ' (internal topic not read to its end: a transaction is open)'}`);
    if (r.rows.length === 0) {
      lines.push('  no consumer group has committed offsets on a mirrored topic');
      continue;
    }
    const head = ['GROUP', 'REMOTE TOPIC', 'PARTITION', 'UPSTREAM', 'DOWNSTREAM', 'STATUS'];
    const rows = r.rows.map((x) => [
      x.group,
      x.remoteTopic,
      String(x.partition),
      String(x.upstreamOffset),
      x.downstreamOffset === undefined ? '-' : String(x.downstreamOffset),
      x.status === 'too-old' ? 'too old' : x.status,
    ]);
    const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
    const fmt = (cols: string[]): string => `  ${cols.map((c, i) => c.padEnd(widths[i]!)).join('  ')}`.trimEnd();
    lines.push(fmt(head), ...rows.map(fmt));
  }
  return `${lines.join('\n')}\n`;
}
