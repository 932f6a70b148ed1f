import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import type { ConnectionOptions } from 'node:tls';
import type { Kafka as KafkaClient, KafkaConfig, SASLOptions } from 'kafkajs';
import { Kafka, TLS_CERTIFICATE_ERROR_CODES, TLS_CLIENT_CERTIFICATE_REFUSED_CODES } from './kafkajs.js';
import type { Logger } from 'pino';
import { registerSecret } from '../config/secrets.js';
import { CrrError } from '../errors.js';
import type { KafkaAuthPaths, KafkaClusterConfig, KafkaSslConfig } from './schema.js';
import { kafkaLevelFor, kafkaLogCreator } from './log-bridge.js';

/** `ssl` config paths whose disabled certificate verification was logged already (once per process and path). */
const warnedInsecure = new Set<string>();

/** The config paths of a cluster's own `ssl` and `sasl`. */
export const clusterAuthPaths = (alias: string): KafkaAuthPaths => ({ ssl: `clusters.${alias}.ssl`, sasl: `clusters.${alias}.sasl` });

/**
 * Reads a file the config names.
 * @param where the config path of the field, e.g. `clusters.primary.ssl.caFile`
 * @throws CrrError CRR_CONFIG_INVALID naming `where` and the file
 */
function readConfigFile(where: string, path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (cause) {
    throw new CrrError('CRR_CONFIG_INVALID', `${where}: cannot read ${path}: ${(cause as Error).message}`, { cause, context: { path: where } });
  }
}

/**
 * The transport and authentication options of a KafkaJS client for one cluster: `ssl` (false,
 * true, or Node's `tls.connect` options with the PEM files read) and `sasl` (PLAIN or SCRAM with
 * the password from the config or its file; OAUTHBEARER with a provider that reads the token
 * file again at each token request). Files are read here, so a client created after a
 * certificate or password was rotated uses the new one. Every secret read is registered for
 * redaction (src/config/secrets.ts).
 *
 * With `ssl.rejectUnauthorized: false` it logs a warning (once per process and alias): certificate
 * verification is off.
 *
 * @param alias the cluster alias (named in the warning)
 * @param cluster the cluster's validated config (for the mirror, with a flow's `sourceAuth` /
 *   `targetAuth` applied: src/config/flow.ts `mirrorSideCluster`)
 * @param logger where the warning about disabled verification goes
 * @param paths the config paths `ssl` and `sasl` came from, named in errors; default the cluster's
 *   (`clusters.<alias>.ssl`, `clusters.<alias>.sasl`)
 * @throws CrrError CRR_CONFIG_INVALID when a file cannot be read (naming `<paths.ssl>.caFile`,
 *   `<paths.sasl>.passwordFile`, ...) or a password file is empty
 */
export function kafkaSecurityOptions(
  alias: string,
  cluster: KafkaClusterConfig,
  logger: Logger,
  paths: KafkaAuthPaths = clusterAuthPaths(alias),
): Pick<KafkaConfig, 'ssl' | 'sasl'> {
  let ssl: boolean | ConnectionOptions = cluster.ssl === true;
  if (typeof cluster.ssl === 'object') {
    const t = cluster.ssl;
    ssl = {
      ...(t.caFile !== undefined ? { ca: [readConfigFile(`${paths.ssl}.caFile`, t.caFile)] } : {}),
      ...(t.certFile !== undefined ? { cert: readConfigFile(`${paths.ssl}.certFile`, t.certFile) } : {}),
      ...(t.keyFile !== undefined ? { key: readConfigFile(`${paths.ssl}.keyFile`, t.keyFile) } : {}),
      ...(t.servername !== undefined ? { servername: t.servername } : {}),
      rejectUnauthorized: t.rejectUnauthorized,
    };
    if (!t.rejectUnauthorized && !warnedInsecure.has(paths.ssl)) {
      warnedInsecure.add(paths.ssl);
      logger.warn(
        { component: 'kafka', cluster: alias, setting: `${paths.ssl}.rejectUnauthorized` },
        `TLS certificate verification is OFF for cluster ${alias} (${paths.ssl}.rejectUnauthorized: false): any certificate is accepted, so anyone on the network path can read and change the traffic`,
      );
    }
  }
  const s = cluster.sasl;
  let sasl: SASLOptions | undefined;
  if (s?.mechanism === 'oauthbearer') {
    sasl = {
      mechanism: 'oauthbearer',
      oauthBearerProvider: async () => {
        const value = s.tokenCommand
          ? await runTokenCommand(`${paths.sasl}.tokenCommand`, s.tokenCommand)
          : readConfigFile(`${paths.sasl}.tokenFile`, s.tokenFile!).trim();
        const path = `${paths.sasl}.${s.tokenCommand ? 'tokenCommand' : 'tokenFile'}`;
        if (value === '')
          throw new CrrError('CRR_CONFIG_INVALID', `${path}: ${s.tokenCommand ? 'the command printed no token' : `${s.tokenFile} is empty`}`, {
            context: { path },
          });
        registerSecret(value);
        return { value };
      },
    };
  } else if (s) {
    let password = s.password;
    if (password === undefined && s.passwordFile !== undefined) {
      password = readConfigFile(`${paths.sasl}.passwordFile`, s.passwordFile).replace(/\r?\n$/, '');
      if (password === '')
        throw new CrrError('CRR_CONFIG_INVALID', `${paths.sasl}.passwordFile: ${s.passwordFile} is empty`, {
          context: { path: `${paths.sasl}.passwordFile` },
        });
      registerSecret(password);
    }
    sasl = { mechanism: s.mechanism, username: s.username, password: password! } as SASLOptions;
  }
  return { ssl, ...(sasl ? { sasl } : {}) };
}

/**
 * Creates a KafkaJS client for one cluster of the config.
 *
 * Client retries (KafkaJS's own, per request) are kept short — 5 tries over about 8 s — because
 * the mirror's supervisor restarts a failed task with its own capped exponential backoff;
 * retrying for minutes inside one request would hide an outage from /healthz.
 *
 * @param alias the cluster alias (used in the client id: `crr-<alias>-<role>`)
 * @param cluster the cluster's validated config (TLS and SASL: {@link kafkaSecurityOptions})
 * @param role what the client is for, e.g. `source-consumer`; goes into the client id and logs
 * @param logger parent logger; KafkaJS's log is bridged into it
 * @param logLevelName the configured pino level, to pick KafkaJS's level
 * @param paths where `cluster.ssl` and `cluster.sasl` come from in the config (errors name them);
 *   default the cluster's own
 * @throws CrrError CRR_CONFIG_INVALID when a TLS or SASL file cannot be read
 */
export function createKafka(
  alias: string,
  cluster: KafkaClusterConfig,
  role: string,
  logger: Logger,
  logLevelName = 'info',
  paths: KafkaAuthPaths = clusterAuthPaths(alias),
): KafkaClient {
  return new Kafka({
    clientId: `crr-${alias}-${role}`,
    brokers: cluster.bootstrapServers,
    ...kafkaSecurityOptions(alias, cluster, logger, paths),
    connectionTimeout: cluster.connectionTimeoutMs,
    requestTimeout: cluster.requestTimeoutMs,
    retry: { initialRetryTime: 250, maxRetryTime: 4000, retries: 5, factor: 0.2, multiplier: 2 },
    logLevel: kafkaLevelFor(logLevelName),
    logCreator: kafkaLogCreator(logger, `${alias} ${role}`),
  });
}

/**
 * The alert of a TLS error message as OpenSSL words it, e.g. `bad certificate (SSL alert 42)` out
 * of `Connection error: ...:ssl3_read_bytes:sslv3 alert bad certificate:...:SSL alert number 42`;
 * the message without KafkaJS's prefix when it names no alert.
 */
function tlsAlertOf(message: string): string {
  const name = /alert ([a-z ]+?)(?::|$)/.exec(message)?.[1];
  const num = /SSL alert number (\d+)/.exec(message)?.[1];
  return name ? `${name}${num ? ` (SSL alert ${num})` : ''}` : message.replace(/^Connection error: /, '');
}

/**
 * Turns a KafkaJS error caused by TLS certificates into CrrError CRR_KAFKA_AUTH naming the cluster,
 * its bootstrap servers, the problem and the config field to check; other errors pass through
 * unchanged. Two kinds, by a code anywhere in the error's cause chain:
 * - the broker's certificate failed crr's verification ({@link TLS_CERTIFICATE_ERROR_CODES});
 * - the broker refused crr's client certificate, or its absence, with a TLS alert
 *   ({@link TLS_CLIENT_CERTIFICATE_REFUSED_CODES}): a listener that requires mTLS
 *   (`ssl.client.auth=required`). With `ssl` given, the message tells a missing
 *   `certFile` from a certificate the brokers do not trust.
 *
 * Neither is retried by KafkaJS (src/kafka/kafkajs.ts).
 *
 * @param alias the cluster alias
 * @param bootstrapServers the cluster's bootstrap servers, named in the message
 * @param sslPath the config path of the `ssl` in effect (default `clusters.<alias>.ssl`)
 * @param ssl the `ssl` setting in effect (default: unknown, and the message names both causes)
 */
export function explainKafkaTlsError(
  err: unknown,
  alias: string,
  bootstrapServers: readonly string[],
  sslPath = `clusters.${alias}.ssl`,
  ssl?: KafkaSslConfig,
): unknown {
  const where = `cluster ${alias} (${bootstrapServers.join(',')})`;
  let cur: unknown = err;
  for (let i = 0; i < 6 && cur instanceof Error; i++, cur = cur.cause) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code !== 'string') continue;
    if (TLS_CLIENT_CERTIFICATE_REFUSED_CODES.has(code)) {
      const sent = ssl === undefined ? undefined : typeof ssl === 'object' && ssl.certFile !== undefined;
      const alert = `${code}: ${tlsAlertOf(cur.message)}`;
      const message =
        sent === false
          ? `${where}: the broker refused the TLS connection (${alert}): its listener requires a client certificate (mTLS) and ${sslPath}.certFile is not set; set ${sslPath}.certFile and keyFile to a certificate signed by a CA the brokers trust`
          : sent === true
            ? `${where}: the broker refused crr's TLS client certificate (${alert}); check that ${sslPath}.certFile is signed by a CA the brokers trust (their ssl.truststore), is valid now and allows client authentication`
            : `${where}: the broker refused the TLS connection over the client certificate (${alert}): its listener requires mTLS; check ${sslPath}.certFile and keyFile (a certificate signed by a CA the brokers trust)`;
      return new CrrError('CRR_KAFKA_AUTH', message, { cause: err, context: { path: `${sslPath}.certFile` } });
    }
    if (!TLS_CERTIFICATE_ERROR_CODES.has(code)) continue;
    const problem = cur.message.replace(/^Connection error: /, '');
    const fix =
      code === 'ERR_TLS_CERT_ALTNAME_INVALID' || code === 'HOSTNAME_MISMATCH'
        ? `check ${sslPath}.servername (the name the brokers' certificates carry) or the bootstrap address`
        : `check that ${sslPath}.caFile holds the CA that signed the brokers' certificates`;
    return new CrrError('CRR_KAFKA_AUTH', `${where}: the broker's TLS certificate failed verification (${code}: ${problem}); ${fix}`, {
      cause: err,
      context: { path: sslPath },
    });
  }
  return err;
}

/** How long an OAUTHBEARER `tokenCommand` may run, ms. */
const TOKEN_COMMAND_TIMEOUT_MS = 30_000;

/**
 * Runs an OAUTHBEARER `tokenCommand` (argv, no shell) and returns its stdout, trimmed.
 * @throws CrrError CRR_KAFKA_AUTH naming `path`, the program and how it failed (exit code or
 *   signal, the first line of its stderr; never its stdout, which may hold a token)
 */
async function runTokenCommand(path: string, argv: readonly string[]): Promise<string> {
  const [program, ...args] = argv;
  try {
    const { stdout } = await promisify(execFile)(program!, args, { timeout: TOKEN_COMMAND_TIMEOUT_MS, maxBuffer: 1024 * 1024, encoding: 'utf8' });
    return stdout.trim();
  } catch (err) {
    const e = err as { code?: number | string; signal?: string; killed?: boolean; stderr?: string };
    const how = e.killed
      ? `killed after ${TOKEN_COMMAND_TIMEOUT_MS} ms`
      : e.signal
        ? `killed by ${e.signal}`
        : typeof e.code === 'number'
          ? `exit ${e.code}`
          : `could not run (${e.code ?? 'error'})`;
    const stderr = (e.stderr ?? '').split('\n')[0]!.slice(0, 200);
    throw new CrrError('CRR_KAFKA_AUTH', `${path}: ${program} ${how}${stderr ? `: ${stderr}` : ''}`, { context: { path }, retriable: true });
  }
}
