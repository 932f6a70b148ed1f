import { accessSync, constants } from 'node:fs';
import type { Command } from 'commander';
import {
  ADMIN_OPERATIONS,
  checkPrimary,
  executeSyncBreak,
  planSyncBreak,
  type AdminOperationName,
  type SyncBreakOutcome,
  type SyncBreakPlan,
} from '../admin/admin.js';
import { configuredRole } from '../cluster/topology.js';
import { initialClusterState } from '../cluster/cluster-state.js';
import { CrrError, describeError } from '../errors.js';
import { createKafka } from '../kafka/client.js';
import { createCliLogger } from '../log/logger.js';
import { openStore } from '../store/open.js';
import type { Store } from '../store/store.js';
import { loadConfigOrExit } from './common.js';
import { EXIT } from './exit-codes.js';

interface AdminOptions {
  config: string;
  cluster: string;
  reason?: string;
  execute?: boolean;
  force?: boolean;
  json?: boolean;
  file?: string;
}

const DESCRIPTIONS: Record<AdminOperationName, string> = {
  import: 'bulk-load an NDJSON file of change events directly into the primary store, bypassing the change log',
  'drop-all': 'delete every vertex, edge and catalog entry of the primary store',
  'clear-graph-store': 'delete every vertex and edge of the primary store, keeping the catalog',
  reset: "delete and recreate the primary's change topics (the store's data stays)",
};

/** The plan as lines for people. */
function planLines(plan: SyncBreakPlan, executed: boolean): string[] {
  const lines = [
    `${executed ? '' : 'would run '}${plan.op} on cluster ${plan.cluster} (primary ${plan.current.state}): ${plan.reason}`,
    `  epoch: ${plan.oldEpoch} -> ${plan.newEpoch}`,
    `  store: ${plan.effect}`,
    `  marker: ${plan.marker.op} (key "${plan.marker.key}", epoch ${plan.newEpoch}) on ${plan.marker.topic}`,
    `  replay lag of ${plan.cluster}: ${plan.lagRecords} records${plan.lagRecords === 0 ? ' (caught up)' : ''}`,
  ];
  if (plan.import) lines.push(`  import source: ${plan.import.source}`);
  for (const w of plan.warnings) lines.push(`  WARNING: ${w}`);
  return lines;
}

/** The outcome as lines for people. */
function outcomeLines(o: SyncBreakOutcome): string[] {
  const r = o.rows;
  const rows =
    o.plan.op === 'IMPORT'
      ? `${r.eventsApplied} events applied`
      : o.plan.op === 'RESET'
        ? `${r.positionsReset} positions set back to 0; topics ${o.plan.resetTopics!.map((t) => t.topic).join(', ')} recreated`
        : `${r.verticesDeleted} vertices, ${r.edgesDeleted} edges${o.plan.op === 'DROP_ALL' ? `, ${r.catalogDeleted} catalog entries` : ''} deleted`;
  return [
    `${o.plan.op} done on cluster ${o.plan.cluster}: epoch ${o.plan.oldEpoch} -> ${o.plan.newEpoch}`,
    `  rows: ${rows}`,
    `  marker: ${o.marker.id} at ${o.marker.topic}[${o.marker.partition}]@${o.marker.offset}`,
    `  state ${o.published ? 'published' : 'NOT published (crr run republishes it when it starts)'}: ${o.plan.newState.role} ${o.plan.newState.state} epoch ${o.plan.newEpoch}`,
    `  every replica of ${o.plan.cluster} will become OUTDATED and must be reseeded`,
  ];
}

/**
 * `crr admin <op>`: the primary's sync-breaking operations (docs/architecture.md, "The cluster model";
 * src/admin/admin.ts for what each does and in which order):
 * - `import --config F --cluster A --file F`: loads an NDJSON file of change events (as
 *   `crr write` accepts them) directly into the store, bypassing the log; marker `IMPORT`;
 * - `drop-all --config F --cluster A`: deletes every vertex, edge and catalog entry; `DROP_ALL`;
 * - `clear-graph-store --config F --cluster A`: deletes every vertex and edge; `CLEAR_GRAPH_STORE`;
 * - `reset --config F --cluster A`: deletes and recreates the change topics, sets the store's
 *   positions for them back to 0, keeps the data; `RESET`.
 * Each takes `[--reason TEXT] [--execute] [--force] [--json]`. Without `--execute` it prints the
 * plan (the epoch now and after, what changes in the store, the marker, the warning that every
 * replica becomes OUTDATED) and changes nothing. With it: one store transaction (effect + epoch
 * raised), then the marker on the metadata topic, then the published state; a summary is printed.
 * A PGlite store belongs to one process: stop `crr run` first (else CRR_STORE_LOCKED, exit 70).
 *
 * Exit codes: 0 done, or the plan printed; 1 the cluster's replay has not caught up (with
 * `--execute`, without `--force`; nothing done); 2 a bad argument or an unknown cluster alias;
 * 4 the cluster is a replica or a fenced primary (nothing done); 65 an import line that is not a
 * valid event (nothing applied); 78 a bad config or a cluster without a store; 70 the store or
 * Kafka failed.
 */
export function registerAdminCommand(program: Command): void {
  const adminCmd = program
    .command('admin')
    .description("the primary's sync-breaking operations (import, drop-all, clear-graph-store, reset); each prints its plan unless --execute");
  for (const name of Object.keys(ADMIN_OPERATIONS) as AdminOperationName[]) {
    const cmd = adminCmd
      .command(name)
      .description(`${DESCRIPTIONS[name]}; raises the epoch and writes the ${ADMIN_OPERATIONS[name]} marker (every replica becomes OUTDATED)`)
      .requiredOption('-c, --config <file>', 'YAML configuration file')
      .requiredOption('--cluster <alias>', 'the primary cluster to act on')
      .option('--reason <text>', "why, for operators (the marker's reason)")
      .option('--execute', 'act; without this, only print what would be done')
      .option('--force', "act although the cluster's replay has not caught up (its unapplied events of the old epoch will be refused as stale)")
      .option('--json', 'print the plan or the result as JSON');
    if (name === 'import') cmd.requiredOption('-f, --file <path>', 'NDJSON file of change events (vertex, edge and metadata operations; envelope optional)');
    cmd.action((opts: AdminOptions) => runAdmin(name, opts));
  }
  for (const cmd of adminCmd.commands) cmd.exitOverride().showHelpAfterError();
}

async function runAdmin(name: AdminOperationName, opts: AdminOptions): Promise<void> {
  const op = ADMIN_OPERATIONS[name];
  const fail = (message: string, code: number): void => {
    process.stderr.write(`crr admin ${name}: ${message}\n`);
    process.exitCode = code;
  };
  const config = loadConfigOrExit(opts.config);
  const cluster = config.clusters[opts.cluster];
  if (!cluster) return fail(`unknown cluster alias "${opts.cluster}"; configured: ${Object.keys(config.clusters).join(', ')}`, EXIT.USAGE);
  const role = configuredRole(config, opts.cluster);
  try {
    // a replica by the config is refused before anything is opened
    checkPrimary(opts.cluster, role, initialClusterState(role), op);
  } catch (err) {
    return fail(describeError(err), EXIT.WRITE_REFUSED);
  }
  if (!cluster.store) return fail(`clusters.${opts.cluster}.store: required by crr admin (the primary's store)`, EXIT.CONFIG);
  if (cluster.store.type === 'pglite' && (cluster.store.dataDir === undefined || cluster.store.dataDir.startsWith('memory://'))) {
    return fail(
      `clusters.${opts.cluster}.store.dataDir: crr admin needs a store it can open; an in-memory PGlite store exists only inside the crr process that runs it`,
      EXIT.CONFIG,
    );
  }
  if (opts.file !== undefined) {
    try {
      accessSync(opts.file, constants.R_OK);
    } catch (err) {
      return fail(`cannot read --file ${opts.file}: ${(err as Error).message}`, EXIT.USAGE);
    }
  }
  const reason = opts.reason?.trim() || `operator ran crr admin ${name}`;
  const logger = createCliLogger(config.log.level === 'info' ? 'warn' : config.log.level);
  const kafka = createKafka(opts.cluster, cluster, 'admin', logger, config.log.level);
  const admin = kafka.admin();
  let store: Store | undefined;
  try {
    await admin.connect();
    store = openStore(cluster.store);
    await store.migrate();
    const ctx = { alias: opts.cluster, configuredRole: role, changeTopics: cluster.changeTopics, kafka, admin, store, log: logger };
    const req = { op, reason, ...(opts.file !== undefined ? { file: opts.file } : {}), force: opts.force === true };
    const plan = await planSyncBreak(ctx, req);
    if (!opts.execute) {
      if (opts.json) process.stdout.write(`${JSON.stringify({ executed: false, plan }, null, 2)}\n`);
      else process.stdout.write(`${[...planLines(plan, false), 'run again with --execute to do it'].join('\n')}\n`);
      process.exitCode = EXIT.OK;
      return;
    }
    const outcome = await executeSyncBreak(ctx, plan, req);
    if (opts.json) process.stdout.write(`${JSON.stringify({ executed: true, ...outcome }, null, 2)}\n`);
    else process.stdout.write(`${outcomeLines(outcome).join('\n')}\n`);
    process.exitCode = EXIT.OK;
  } catch (err) {
    const code =
      err instanceof CrrError
        ? err.code === 'CRR_WRITE_REFUSED'
          ? EXIT.WRITE_REFUSED
          : err.code === 'CRR_NOT_CAUGHT_UP'
            ? EXIT.LAGGING
            : err.code === 'CRR_EVENT_INVALID' || err.code === 'CRR_STORE_APPLY'
              ? EXIT.DATA_ERROR
              : err.code === 'CRR_CONFIG_INVALID'
                ? EXIT.CONFIG
                : EXIT.SOFTWARE
        : EXIT.SOFTWARE;
    fail(`${describeError(err)}${code === EXIT.DATA_ERROR ? ' (nothing was applied)' : ''}`, code);
  } finally {
    await store?.close().catch(() => undefined);
    await admin.disconnect().catch(() => undefined);
  }
}
