import type { Command } from 'commander';
import { createLogger } from '../log/logger.js';
import { reportFlow, type FlowReport } from '../mirror/report.js';
import { loadConfigOrExit } from './common.js';
import { EXIT } from './exit-codes.js';

/**
 * `crr status --config F [--json]`: per remote topic partition, the source log end, the
 * mirrored position, the lag in records and the latency of the last mirrored record, read from
 * the clusters (no running mirror needed). Exit 0 when every flow is healthy, 1 when a flow's
 * lag is above its `maxReplicationLagRecords`, 2 when a cluster is unreachable.
 */
export function registerStatusCommand(program: Command): void {
  program
    .command('status')
    .description('show replication lag and latency of each flow (exit 0 ok, 1 lagging, 2 unreachable)')
    .requiredOption('-c, --config <file>', 'YAML configuration file')
    .option('--json', 'print JSON instead of a table')
    .action(async (opts: { config: string; json?: boolean }) => {
      const config = loadConfigOrExit(opts.config);
      const logger = createLogger('silent');
      const reports = await Promise.all(config.mirror.flows.filter((f) => f.enabled).map((f) => reportFlow(config, f, logger)));
      process.stdout.write(opts.json ? `${JSON.stringify({ flows: reports }, null, 2)}\n` : renderTable(reports));
      const code = reports.some((r) => r.health === 'unreachable') ? EXIT.UNREACHABLE : reports.some((r) => r.health === 'lagging') ? EXIT.LAGGING : EXIT.OK;
      process.exitCode = code;
    });
}

function renderTable(reports: FlowReport[]): string {
  const lines: string[] = [];
  for (const r of reports) {
    const hb = r.heartbeatAgeSeconds === null ? 'n/a' : `${r.heartbeatAgeSeconds.toFixed(1)}s`;
    lines.push(`flow ${r.flow}: ${r.health.toUpperCase()}  lag ${r.totalLagRecords} records (threshold ${r.maxReplicationLagRecords} per partition)  heartbeat age ${hb}${r.positionsComplete ? '' : '  (positions read incomplete: a transaction is open)'}`);
    if (r.error) lines.push(`  error: ${r.error}`);
    if (r.partitions.length === 0 && !r.error) lines.push('  no topic mirrored yet');
    const rows = r.partitions.map((p) => [p.remoteTopic, String(p.partition), String(p.sourceLogEndOffset), String(p.mirroredPosition), String(p.lagRecords), p.latencySeconds === null ? '-' : p.latencySeconds.toFixed(3)]);
    if (rows.length > 0) {
      const head = ['REMOTE TOPIC', 'PARTITION', 'SOURCE END', 'MIRRORED', 'LAG', 'LATENCY(s)'];
      const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
      const fmt = (cols: string[]): string => `  ${cols.map((c, i) => c.padEnd(widths[i]!)).join('  ')}`.trimEnd();
      lines.push(fmt(head), ...rows.map(fmt));
    }
  }
  return `${lines.join('\n')}\n`;
}
