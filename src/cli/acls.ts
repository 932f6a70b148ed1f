import type { Command } from 'commander';
import { runAcls, type AclRun } from '../acls/apply.js';
import { ACL_ROLES, type AclRole } from '../acls/fence.js';
import { formatBinding, PRINCIPAL } from '../acls/plan.js';
import { CrrError, describeError } from '../errors.js';
import { createCliLogger } from '../log/logger.js';
import { loadConfigOrExit } from './common.js';
import { EXIT } from './exit-codes.js';
import { CliUsageError } from './usage-error.js';

interface AclsOptions {
  config: string;
  cluster: string;
  execute?: boolean;
  json?: boolean;
  role?: string;
  principal?: string;
}

/**
 * `crr acls plan|apply --config F --cluster A [--execute] [--role R] [--principal P] [--json]`:
 * the Kafka ACLs cluster A needs for its role (src/acls/plan.ts): the DR write fence on a
 * replica (only crr's principal writes the remote topics, crr's internal topics and its
 * transactional id; applications only READ/DESCRIBE), the applications' WRITE on a primary's
 * change topics (taken away on a fenced primary, src/acls/fence.ts), a flow's source principal
 * (`sourceAuth`) reading its source. Each line names the principal it is for. Connects with the
 * cluster's configured credentials, which must be allowed to
 * read and change ACLs (DESCRIBE and ALTER on the CLUSTER). `plan` and `apply` without
 * `--execute` print what would be added and removed; `apply --execute` applies it. Idempotent.
 *
 * Exit codes: 0; 2 a bad argument (usage printed); 70 the cluster refused (credentials,
 * authorization) or could not be reached; 78 bad config.
 */
export function registerAclsCommand(program: Command): void {
  const acls = program.command('acls').description("plan or apply the Kafka ACLs of a cluster's role (the DR write fence on a replica)");
  for (const name of ['plan', 'apply'] as const) {
    const cmd = acls
      .command(name)
      .description(name === 'plan' ? 'print the ACLs to add and to remove (changes nothing)' : 'apply the plan with --execute (without it, print it)')
      .requiredOption('-c, --config <file>', 'YAML configuration file')
      .requiredOption('--cluster <alias>', 'the cluster whose ACLs to plan')
      .option('--role <role>', `plan for this role (${ACL_ROLES.join('|')}) instead of the one recorded for the cluster`)
      .option('--principal <principal>', "crr's principal on the cluster (default User:<clusters.<alias>.sasl.username>)")
      .option('--json', 'print JSON instead of lines');
    if (name === 'apply') cmd.option('--execute', 'create and delete the ACLs (without it, print the plan)');
    cmd.action(async (opts: AclsOptions) => {
      const config = loadConfigOrExit(opts.config);
      try {
        if (!(opts.cluster in config.clusters))
          throw new CliUsageError(`unknown cluster "${opts.cluster}"; configured: ${Object.keys(config.clusters).join(', ')}`, EXIT.USAGE);
        if (opts.role !== undefined && !(ACL_ROLES as readonly string[]).includes(opts.role))
          throw new CliUsageError(`--role: expected ${ACL_ROLES.join(', ')}, got "${opts.role}"`, EXIT.USAGE);
        if (opts.principal !== undefined && !PRINCIPAL.test(opts.principal))
          throw new CliUsageError(`--principal: expected a Kafka principal such as User:crr, got "${opts.principal}"`, EXIT.USAGE);
        const run = await runAcls(config, opts.cluster, createCliLogger('silent'), {
          role: opts.role as AclRole | undefined,
          principal: opts.principal,
          execute: name === 'apply' && opts.execute === true,
        });
        process.stdout.write(opts.json ? `${JSON.stringify(run, null, 2)}\n` : render(run));
        process.exitCode = EXIT.OK;
      } catch (err) {
        if (err instanceof CliUsageError) {
          process.stderr.write(`crr acls ${name}: ${err.message}\n`);
          if (err.exitCode === EXIT.USAGE) process.stderr.write(cmd.helpInformation());
          process.exitCode = err.exitCode;
        } else {
          process.stderr.write(`crr acls ${name}: ${describeError(err)}\n`);
          process.exitCode = err instanceof CrrError && err.code === 'CRR_CONFIG_INVALID' ? EXIT.CONFIG : EXIT.SOFTWARE;
        }
      }
    });
  }
}

function render(run: AclRun): string {
  const { plan } = run;
  const lines = [
    `cluster ${plan.cluster}: ${run.role === 'fenced-primary' ? 'fenced primary (FENCED: its applications may not write)' : plan.role} (role from ${run.roleFrom}); crr's principal ${plan.principals.crr}; applications ${plan.principals.applications.join(', ') || '(none)'}${plan.principals.mirrorSources?.length ? `; mirror source principals ${plan.principals.mirrorSources.join(', ')}` : ''}`,
  ];
  if (plan.add.length === 0 && plan.remove.length === 0) lines.push('ACLs in place: nothing to add or remove');
  for (const b of plan.add) lines.push(`+ ${formatBinding(b)}`);
  for (const b of plan.remove) lines.push(`- ${formatBinding(b)}`);
  if (run.applied) lines.push(`applied: ${run.applied.added} added, ${run.applied.removed} removed`);
  else if (plan.add.length + plan.remove.length > 0)
    lines.push(`plan: ${plan.add.length} to add, ${plan.remove.length} to remove (crr acls apply --execute applies it)`);
  return `${lines.join('\n')}\n`;
}
