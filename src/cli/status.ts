import type { Command } from 'commander';
import type { Logger } from 'pino';
import { type AclStatus, aclStatus, formatAclStatus, namesCrrPrincipal } from '../acls/apply.js';
import type { AclRole } from '../acls/fence.js';
import { configuredRole } from '../cluster/topology.js';
import type { Config } from '../config/schema.js';
import { createCliLogger } from '../log/logger.js';
import { reportClusters, type ClusterReport } from '../cluster/report.js';
import { reportFlow, type FlowReport } from '../mirror/report.js';
import { redactSecrets, redactText } from '../config/secrets.js';
import { loadConfigOrExit } from './common.js';
import { EXIT } from './exit-codes.js';

/**
 * `crr status --config F [--json]`: per remote topic partition, the source log end, the
 * mirrored position, the lag in records and the latency of the last mirrored record, and the
 * state crr published for each cluster with a store (role, state, epoch, the backup it was
 * restored from or is restoring, reason), read from the
 * clusters (no running daemon needed), and whether each cluster's Kafka ACL fence is in place
 * for its role (src/acls/apply.ts `aclStatus`: clusters whose config names crr's SASL user; the
 * role published — a primary published FENCED as a fenced primary —, else the configured one). Exit 0 when every flow is healthy, 1 when a flow's
 * lag is above its `maxReplicationLagRecords` or a cluster is OUTDATED, 2 when a cluster is
 * unreachable; the ACL check never changes the exit code.
 */
export function registerStatusCommand(program: Command): void {
  program
    .command('status')
    .description('show replication lag and latency of each flow and the state of each cluster (exit 0 ok, 1 lagging or OUTDATED, 2 unreachable)')
    .requiredOption('-c, --config <file>', 'YAML configuration file')
    .option('--json', 'print JSON instead of a table')
    .action(async (opts: { config: string; json?: boolean }) => {
      const config = loadConfigOrExit(opts.config);
      const logger = createCliLogger('silent');
      const [reports, { clusters, acls }] = await Promise.all([
        Promise.all(config.mirror.flows.filter((f) => f.enabled).map((f) => reportFlow(config, f, logger))),
        reportClusters(config, logger).then(async (clusters) => ({ clusters, acls: await reportAcls(config, clusters, logger) })),
      ]);
      // errors quoted from a cluster or a store may carry a secret (src/config/secrets.ts)
      process.stdout.write(
        opts.json
          ? `${JSON.stringify(redactSecrets({ flows: reports, clusters, acls }), null, 2)}\n`
          : redactText(renderClusters(clusters) + renderAcls(acls) + renderTable(reports)),
      );
      const unreachable = reports.some((r) => r.health === 'unreachable') || clusters.some((c) => c.error);
      const unhealthy = reports.some((r) => r.health === 'lagging') || clusters.some((c) => c.state?.state === 'OUTDATED');
      const code = unreachable ? EXIT.UNREACHABLE : unhealthy ? EXIT.LAGGING : EXIT.OK;
      process.exitCode = code;
    });
}

/**
 * The ACL fence of every cluster whose config names crr's principal, checked in parallel after
 * the cluster states were read (their published role is the one planned for, else the
 * configured role). A cluster whose state could not be read is not connected to again.
 */
async function reportAcls(config: Config, clusters: ClusterReport[], logger: Logger): Promise<AclStatus[]> {
  const checked = await Promise.all(
    Object.keys(config.clusters).map(async (alias): Promise<AclStatus | undefined> => {
      const report = clusters.find((c) => c.cluster === alias);
      const published = report?.state;
      const role: AclRole =
        published?.role === 'primary' && published.state === 'FENCED' ? 'fenced-primary' : (published?.role ?? configuredRole(config, alias));
      if (!namesCrrPrincipal(config, alias)) return undefined;
      if (report?.error) return { cluster: alias, role, state: 'cannot-check', reason: 'cluster unreachable' };
      return aclStatus(config, alias, role, logger);
    }),
  );
  return checked.filter((s): s is AclStatus => s !== undefined);
}

function renderAcls(acls: AclStatus[]): string {
  return acls.map((a) => `cluster ${a.cluster} ${formatAclStatus(a)}\n`).join('');
}

function renderClusters(clusters: ClusterReport[]): string {
  return clusters
    .map((c) => {
      if (c.error) return `cluster ${c.cluster}: UNREACHABLE (${c.error})\n`;
      if (!c.state) return `cluster ${c.cluster}: no state published yet (crr run never started for it)\n`;
      const { role, state, epoch, reason, updatedAtMs } = c.state;
      const backupId = c.state.role === 'replica' ? c.state.backupId : undefined;
      const backup = backupId === undefined ? '' : `, ${state === 'RESEEDING' ? 'restoring' : 'restored from'} backup ${backupId}`;
      return `cluster ${c.cluster}: ${role} ${state}, epoch ${epoch}${backup}, since ${new Date(updatedAtMs).toISOString()}${reason ? `: ${reason}` : ''}\n`;
    })
    .join('');
}

function renderTable(reports: FlowReport[]): string {
  const lines: string[] = [];
  for (const r of reports) {
    const hb = r.heartbeatAgeSeconds === null ? 'n/a' : `${r.heartbeatAgeSeconds.toFixed(1)}s`;
    lines.push(
      `flow ${r.flow}: ${r.health.toUpperCase()}  lag ${r.totalLagRecords} records (threshold ${r.maxReplicationLagRecords} per partition)  heartbeat age ${hb}${r.positionsComplete ? '' : '  (positions read incomplete: a transaction is open)'}`,
    );
    if (r.error) lines.push(`  error: ${r.error}`);
    if (r.partitions.length === 0 && !r.error) lines.push('  no topic mirrored yet');
    const rows = r.partitions.map((p) => [
      p.remoteTopic,
      String(p.partition),
      String(p.sourceLogEndOffset),
      String(p.mirroredPosition),
      String(p.lagRecords),
      p.latencySeconds === null ? '-' : p.latencySeconds.toFixed(3),
    ]);
    if (rows.length > 0) {
      const head = ['REMOTE TOPIC', 'PARTITION', 'SOURCE END', 'MIRRORED', 'LAG', 'LATENCY(s)'];
      const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
      const fmt = (cols: string[]): string => `  ${cols.map((c, i) => c.padEnd(widths[i]!)).join('  ')}`.trimEnd();
      lines.push(fmt(head), ...rows.map(fmt));
    }
  }
  return `${lines.join('\n')}\n`;
}
