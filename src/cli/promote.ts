import { InvalidArgumentError, type Command } from 'commander';
import { CrrError, describeError } from '../errors.js';
import { executePromotion, planPromotion, type PromotionPlan, type PromotionSummary } from '../failover/promote.js';
import { describeAcls } from '../failover/promote-acls.js';
import type { RecoveryPoint } from '../failover/recovery-point.js';
import { createCliLogger } from '../log/logger.js';
import { loadConfigOrExit } from './common.js';
import { EXIT } from './exit-codes.js';

interface PromoteOptions {
  config: string;
  cluster?: string;
  force?: boolean;
  execute?: boolean;
  timeoutMs: number;
  json?: boolean;
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('expected a positive integer (milliseconds)');
  return n;
}

const iso = (ms: number | null): string => (ms === null ? 'never' : `${new Date(ms).toISOString()} (${((Date.now() - ms) / 1000).toFixed(1)} s ago)`);

/** The RPO lines of the plan and of the summary. */
function describeRpo(rpo: RecoveryPoint, primary: string): string[] {
  const lines = [
    `  RPO: ${rpo.records === null ? `unknown number of records (${primary} unreachable)` : `${rpo.records} records on ${primary} not mirrored`}`,
    `       last change event mirrored: ${iso(rpo.lastChangeMirroredAtMs)}; last heartbeat mirrored: ${iso(rpo.lastHeartbeatAtMs)}`,
  ];
  for (const p of rpo.partitions) {
    const missing =
      p.sourceLogEndOffset === undefined
        ? ''
        : `, source log end ${p.sourceLogEndOffset} (${Math.max(0, p.sourceLogEndOffset - p.nextUpstreamOffset)} not mirrored)`;
    lines.push(`       ${p.topic}[${p.partition}]: mirrored up to upstream offset ${p.nextUpstreamOffset}${missing}`);
  }
  return lines;
}

function describePlan(plan: PromotionPlan): string {
  const lines = [
    `promotion plan for ${plan.cluster} (replica of ${plan.primary}, flow ${plan.flowId}), mode ${plan.mode}:`,
    `  state: ${plan.state ? `${plan.state.role} ${plan.state.state} epoch ${plan.state.epoch}${plan.state.reason ? ` (${plan.state.reason})` : ''}` : 'none recorded'}`,
    `  primary ${plan.primary}: ${plan.primaryReachable ? 'reachable' : `UNREACHABLE (${plan.primaryError ?? ''})`}`,
    ...describeRpo(plan.rpo, plan.primary),
  ];
  if (plan.alreadyPromoted) lines.push(`  ${plan.cluster} is primary already: --execute only lifts the write fence and publishes its state again`);
  else {
    lines.push(
      '  steps:',
      `    1. record ${plan.cluster} PROMOTING${plan.resuming ? ' (resuming the interrupted promotion)' : ''}`,
      `    2. fence ${plan.primary} through its Kafka: publish state FENCED, which its writers and its daemon obey (the daemon records it in its store)${
        plan.manageAcls.includes(plan.primary) ? ', and set its Kafka ACLs for a fenced primary (its applications may not write)' : ''
      }${plan.mode === 'force' ? ' (if it can be reached)' : ''}`,
      plan.mode === 'graceful'
        ? `    3. run the mirror of ${plan.flowId} until replication lag is 0, then stop it`
        : '    3. (force) no drain: what has not been mirrored stays behind',
      `    4. replay ${plan.cluster}'s remote topics to their end`,
      `    5. raise the epoch to ${(plan.state?.epoch ?? 0) + 1}, record ${plan.cluster} primary ACTIVE; late events of the old epoch are refused`,
      `    6. lift the write fence and publish the new state: writers may write to ${plan.cluster}`,
      `    7. commit the source consumer groups' translated offsets into ${plan.cluster}'s idle groups`,
    );
    if (plan.manageAcls.includes(plan.cluster))
      lines.push(`    8. set ${plan.cluster}'s Kafka ACLs for a primary: its applications may write its change topics`);
  }
  for (const w of plan.warnings) lines.push(`  WARNING: ${w}`);
  for (const b of plan.blockers) lines.push(`  BLOCKED: ${b}`);
  lines.push(plan.blockers.length > 0 ? 'cannot promote until the blockers are resolved' : 'run again with --execute to promote', '');
  return lines.join('\n');
}

function describeSummary(s: PromotionSummary): string {
  const lines = [
    s.alreadyPromoted
      ? `${s.cluster} was promoted already (${s.mode}, at ${s.promotedAt}); write fence lifted and state published again`
      : `promoted ${s.cluster} to primary (${s.mode}) in ${s.rtoSeconds.toFixed(1)} s (RTO of the promotion, from ${s.startedAt})`,
    `  epoch ${s.fromEpoch} -> ${s.toEpoch}; old primary ${s.oldPrimary}: ${s.oldPrimaryFenced === 'no' ? 'NOT fenced (unreachable): fence it before it takes writes again' : `FENCED (${s.oldPrimaryFenced})`}`,
    ...describeRpo(s.rpo, s.oldPrimary),
    ...Object.entries(s.acls ?? {})
      .filter(([, a]) => a.result === 'applied' || a.result === 'skipped') // the others are among the warnings
      .map(([alias, a]) => `  ${describeAcls(alias, a)}`),
    `  replay applied ${s.eventsReplayed} events while draining`,
    `  consumer groups: ${
      s.groups.error
        ? `NOT synced (${s.groups.error}); see crr checkpoints`
        : `${Object.keys(s.groups.committed).length} with translated offsets committed on ${s.cluster}${
            Object.keys(s.groups.skipped).length > 0
              ? `; partitions left as they were: ${Object.entries(s.groups.skipped)
                  .map(([g, n]) => `${g} ${n}`)
                  .join(', ')}`
              : ''
          }`
    }`,
    ...s.warnings.map((w) => `  WARNING: ${w}`),
    `next: start crr run --cluster ${s.cluster} (it runs as primary now), point writers at ${s.cluster}, and update the config (docs/runbooks/)`,
    '',
  ];
  return lines.join('\n');
}

/**
 * `crr promote --config F [--cluster A] [--force] [--timeout-ms N] [--execute] [--json]`:
 * promotes a replica to primary (src/failover/promote.ts). Without `--execute` prints the plan
 * and the current RPO. Stop the replica's `crr run` first: the promotion drains the mirror and
 * replays by itself, then `crr run` is started again and runs the cluster as primary.
 *
 * Exit codes: 0 promoted (or a plan without blockers); 1 the graceful drain timed out (the
 * replica stays PROMOTING: run again, or with --force); 2 a bad argument or unknown cluster;
 * 3 refused (the blockers are printed); 70 a failure (run again: it resumes); 78 bad config.
 */
export function registerPromoteCommand(program: Command): void {
  program
    .command('promote')
    .description('promote a replica to primary (prints the plan and the RPO unless --execute)')
    .requiredOption('-c, --config <file>', 'YAML configuration file')
    .option('--cluster <alias>', 'the replica to promote (default: the single replica of the config)')
    .option('--force', 'the primary is lost: promote with what has arrived, without draining (fences the primary if it can be reached)')
    .option('--timeout-ms <ms>', 'how long a graceful promotion waits for the drain and the replay', positiveInt, 120_000)
    .option('--execute', 'promote; without this, only print the plan')
    .option('--json', 'print the plan or the summary as JSON')
    .action(async (opts: PromoteOptions) => {
      const config = loadConfigOrExit(opts.config);
      const replicas = [...new Set(config.mirror.flows.filter((f) => f.enabled).map((f) => f.target))];
      const alias = opts.cluster ?? (replicas.length === 1 ? replicas[0] : undefined);
      if (!alias || !config.clusters[alias] || !replicas.includes(alias)) {
        process.stderr.write(
          `crr promote: ${alias ? `"${alias}" is not the target of an enabled flow` : 'name the replica with --cluster'}; replicas: ${replicas.join(', ') || '(none)'}\n`,
        );
        process.exit(EXIT.USAGE);
      }
      const logger = createCliLogger(config.log.level === 'info' ? 'warn' : config.log.level);
      const mode = opts.force ? 'force' : 'graceful';
      try {
        const plan = await planPromotion(config, alias, { mode, log: logger });
        if (!opts.execute) {
          process.stdout.write(opts.json ? `${JSON.stringify(plan, null, 2)}\n` : describePlan(plan));
          process.exitCode = plan.blockers.length > 0 ? EXIT.PROMOTE_REFUSED : EXIT.OK;
          return;
        }
        if (plan.blockers.length > 0) {
          process.stderr.write(describePlan(plan));
          process.exitCode = EXIT.PROMOTE_REFUSED;
          return;
        }
        const summary = await executePromotion(config, plan, {
          log: logger,
          timeoutMs: opts.timeoutMs,
          onStep: (_step, detail) => {
            if (!opts.json) process.stderr.write(`  - ${detail}\n`);
          },
        });
        process.stdout.write(opts.json ? `${JSON.stringify(summary, null, 2)}\n` : describeSummary(summary));
      } catch (err) {
        process.stderr.write(`crr promote: ${describeError(err)}\n`);
        const code = err instanceof CrrError ? err.code : undefined;
        process.exitCode =
          code === 'CRR_PROMOTE_TIMEOUT'
            ? EXIT.PROMOTE_TIMEOUT
            : code === 'CRR_PROMOTE_REFUSED'
              ? EXIT.PROMOTE_REFUSED
              : code === 'CRR_CONFIG_INVALID'
                ? EXIT.CONFIG
                : EXIT.SOFTWARE;
      }
      // the in-process mirror and replay are stopped; a KafkaJS timer of theirs may still hold the
      // event loop for minutes: exit once the output is flushed
      process.stdout.write('', () => process.exit(process.exitCode ?? EXIT.OK));
    });
}
