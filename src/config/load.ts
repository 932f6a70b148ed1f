import { accessSync, constants, readFileSync } from 'node:fs';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import type { z } from 'zod';
import { loadBackupKeys } from '../backup/keys.js';
import { CrrError } from '../errors.js';
import { ConfigSchema, type Config } from './schema.js';
import { registerConfigSecrets } from './secrets.js';

/**
 * Prefix of environment overrides. `CRR__clusters__primary__sasl__password=secret` sets
 * `clusters.primary.sasl.password`: path segments are separated by a double underscore and
 * taken as written (case-sensitive). A value is parsed as YAML, so `5000` is a number, `true` a
 * boolean and `["h1:9092","h2:9092"]` a list. Meant for secrets, which should not sit in the file,
 * and for container deployments.
 */
export const ENV_PREFIX = 'CRR__';

/**
 * Reads, overrides and validates a configuration file.
 *
 * @param path path of a YAML file (see config/crr.example.yaml)
 * @param env environment to take `CRR__...` overrides from; default `process.env`
 * @returns the validated config with defaults filled in
 * @throws CrrError CRR_CONFIG_NOT_FOUND when the file cannot be read;
 *   CRR_CONFIG_INVALID when the YAML does not parse or the content does not validate — the
 *   message lists every problem as `path: what was expected` (path `clusters.dr.bootstrapServers[0]`) —
 *   or a file it names (a certificate, a secret file) cannot be read ({@link checkFilesReadable})
 */
export function loadConfig(path: string, env: NodeJS.ProcessEnv = process.env): Config {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new CrrError('CRR_CONFIG_NOT_FOUND', `cannot read config file ${path}: ${(cause as Error).message}`, { cause, context: { path } });
  }
  let raw: unknown;
  try {
    raw = parseYaml(text, { prettyErrors: true }) ?? {};
  } catch (cause) {
    const where = cause instanceof YAMLParseError && cause.linePos ? ` at line ${cause.linePos[0].line}, column ${cause.linePos[0].col}` : '';
    throw new CrrError('CRR_CONFIG_INVALID', `${path}: not valid YAML${where}: ${(cause as Error).message.split('\n')[0]}`, { cause, context: { path } });
  }
  const config = parseConfig(applyEnvOverrides(raw, env, path), path);
  checkFilesReadable(config, path);
  checkBackupKeyFiles(config, path);
  return config;
}

/**
 * The files a config names that crr reads later (TLS certificates and keys, SASL password and
 * token files of the clusters and of the flows' `sourceAuth` / `targetAuth`, the HTTP bearer
 * token file, backup key files), as `[config path, file]`.
 */
export function configFiles(config: Config): Array<[string, string]> {
  const files: Array<[string, string]> = [];
  const kafkaFiles = (where: string, c: { ssl?: Config['clusters'][string]['ssl']; sasl?: Config['clusters'][string]['sasl'] }): void => {
    if (typeof c.ssl === 'object') {
      for (const field of ['caFile', 'certFile', 'keyFile'] as const) {
        const file = c.ssl[field];
        if (file !== undefined) files.push([`${where}.ssl.${field}`, file]);
      }
    }
    if (c.sasl?.mechanism === 'oauthbearer') {
      if (c.sasl.tokenFile !== undefined) files.push([`${where}.sasl.tokenFile`, c.sasl.tokenFile]);
    } else if (c.sasl?.passwordFile !== undefined) files.push([`${where}.sasl.passwordFile`, c.sasl.passwordFile]);
  };
  for (const [alias, c] of Object.entries(config.clusters)) {
    kafkaFiles(`clusters.${alias}`, c);
    if (c.backup?.encryption) files.push([`clusters.${alias}.backup.encryption.keyFile`, c.backup.encryption.keyFile]);
    if (c.backup?.manifestHmac) files.push([`clusters.${alias}.backup.manifestHmac.keyFile`, c.backup.manifestHmac.keyFile]);
  }
  config.mirror.flows.forEach((f, i) => {
    if (f.sourceAuth) kafkaFiles(`mirror.flows[${i}].sourceAuth`, f.sourceAuth);
    if (f.targetAuth) kafkaFiles(`mirror.flows[${i}].targetAuth`, f.targetAuth);
  });
  if (config.http.tls) files.push(['http.tls.certFile', config.http.tls.certFile], ['http.tls.keyFile', config.http.tls.keyFile]);
  if (config.http.bearerTokenFile !== undefined) files.push(['http.bearerTokenFile', config.http.bearerTokenFile]);
  return files;
}

/**
 * Refuses a config naming a file crr could not read, so that a typo in a certificate or secret
 * path stops crr at start (exit 78) rather than at its first connection.
 *
 * @throws CrrError CRR_CONFIG_INVALID listing each unreadable file with its config path
 */
export function checkFilesReadable(config: Config, source = 'config'): void {
  const issues: Array<{ path: string; message: string }> = [];
  for (const [where, file] of configFiles(config)) {
    try {
      accessSync(file, constants.R_OK);
    } catch (cause) {
      issues.push({ path: where, message: `cannot read ${file}: ${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message}` });
    }
  }
  if (issues.length === 0) return;
  throw new CrrError('CRR_CONFIG_INVALID', `${source} is invalid:\n${issues.map((i) => `  - ${i.path}: ${i.message}`).join('\n')}`, { context: { issues } });
}

/**
 * Refuses a backup key file (`clusters.<alias>.backup.encryption.keyFile`, `...manifestHmac.keyFile`)
 * that does not hold a key in a form src/backup/keys.ts readKeyFile accepts, so that a wrong key
 * file stops crr at start (exit 78) rather than at its first backup or restore.
 *
 * @throws CrrError CRR_CONFIG_INVALID listing each such file with its config path (never its content)
 */
export function checkBackupKeyFiles(config: Config, source = 'config'): void {
  const issues: Array<{ path: string; message: string }> = [];
  for (const [alias, c] of Object.entries(config.clusters)) {
    if (!c.backup) continue;
    for (const field of ['encryption', 'manifestHmac'] as const) {
      const only = c.backup[field];
      if (only === undefined) continue;
      try {
        loadBackupKeys({ [field]: only }, `clusters.${alias}.backup`);
      } catch (err) {
        if (!(err instanceof CrrError)) throw err;
        const path = `clusters.${alias}.backup.${field}.keyFile`;
        issues.push({ path, message: err.message.slice(path.length + 2) });
      }
    }
  }
  if (issues.length === 0) return;
  throw new CrrError('CRR_CONFIG_INVALID', `${source} is invalid:\n${issues.map((i) => `  - ${i.path}: ${i.message}`).join('\n')}`, { context: { issues } });
}

/**
 * Validates an already-parsed config object.
 *
 * @param raw the parsed YAML (any shape)
 * @param source what to name in messages (a file path); default `config`
 * Every secret of the config (src/config/secrets.ts) is registered, so that logs, status and
 * error messages censor its value wherever it shows up.
 *
 * @throws CrrError CRR_CONFIG_INVALID naming each invalid path
 */
export function parseConfig(raw: unknown, source = 'config'): Config {
  registerConfigSecrets(raw);
  const result = ConfigSchema.safeParse(raw);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => `  - ${formatPath(issue.path)}: ${describeIssue(issue)}`);
  throw new CrrError('CRR_CONFIG_INVALID', `${source} is invalid:\n${problems.join('\n')}`, {
    context: { issues: result.error.issues.map((i) => ({ path: formatPath(i.path), message: describeIssue(i) })) },
  });
}

function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys') return `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
  return issue.message;
}

/** `['clusters','dr','bootstrapServers',0]` → `clusters.dr.bootstrapServers[0]`; the root is `(root)`. */
export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  if (path.length === 0) return '(root)';
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i === 0 ? '' : '.'}${String(p)}`)).join('');
}

/**
 * Applies `CRR__a__b=value` environment overrides to a parsed config (a copy is returned).
 * Numeric segments index arrays (`CRR__mirror__flows__0__enabled=false`). A config that is not
 * a mapping (a file holding `5`) is returned as it is: {@link parseConfig} refuses it.
 *
 * @param source what to name in messages (a file path); default `config`
 * @throws CrrError CRR_CONFIG_INVALID naming the path and the variable when an override cannot
 *   be set where it points (`CRR__mirror__flows__length=x` on a list)
 */
export function applyEnvOverrides(raw: unknown, env: NodeJS.ProcessEnv, source = 'config'): unknown {
  const root = structuredClone(raw ?? {}) as Record<string, unknown>;
  if (typeof root !== 'object' || root === null) return root;
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || value === undefined) continue;
    const path = name.slice(ENV_PREFIX.length).split('__').filter(Boolean);
    if (path.length === 0) continue;
    try {
      let node: Record<string, unknown> = root;
      for (const seg of path.slice(0, -1)) {
        const next = node[seg];
        if (next === undefined || next === null || typeof next !== 'object') node[seg] = {};
        node = node[seg] as Record<string, unknown>;
      }
      node[path[path.length - 1]!] = parseScalar(value);
    } catch (cause) {
      // a property a list or a binary value cannot take (`length`, a read-only one)
      const where = formatPath(path);
      const message = `cannot apply the environment override ${name} (${(cause as Error).message})`;
      throw new CrrError('CRR_CONFIG_INVALID', `${source} is invalid:\n  - ${where}: ${message}`, { cause, context: { issues: [{ path: where, message }] } });
    }
  }
  return root;
}

function parseScalar(value: string): unknown {
  try {
    const parsed: unknown = parseYaml(value);
    return parsed === null ? value : parsed;
  } catch {
    return value;
  }
}
