import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify } from 'yaml';
import { openRepository } from '../../src/backup/open-repository.js';
import { restoreBackup } from '../../src/backup/restore.js';
import { EXIT } from '../../src/cli/exit-codes.js';
import { loadConfig } from '../../src/config/load.js';
import { PostgresStore } from '../../src/store/postgres.js';
import { PG_URL, runCrr, testFlow } from '../support/helpers.js';
import { Events } from '../support/store-events.js';

// Encrypted backups of a real PostgreSQL store into a local repository, through `crr backup`
// (runs dist/: npm run build) with `backup.encryption` in the config, restored with the
// library's restoreBackup. Needs PostgreSQL only (no Kafka, no S3).

const schemas: string[] = [];
const dirs: string[] = [];

afterAll(async () => {
  const pool = new pg.Pool({ connectionString: PG_URL, max: 1 });
  for (const s of schemas) await pool.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`);
  await pool.end();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('encrypted backups of a PostgreSQL store in a local repository', () => {
  it('crr backup create encrypts every part (no plaintext vertex id in the stored bytes); restored with the key, the store is equal; without it, verify fails naming the key id', async () => {
    const flow = testFlow();
    const dir = mkdtempSync(join(tmpdir(), 'crr-backup-enc-'));
    dirs.push(dir);
    const keyFile = join(dir, 'backup.key');
    writeFileSync(keyFile, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
    const schema = `crr_t_${flow.id}_enc`;
    const restoredSchema = `crr_t_${flow.id}_encr`;
    schemas.push(schema, restoredSchema);
    const config = parseYaml(readFileSync(flow.configPath, 'utf8')) as Record<string, any>;
    const repoDir = join(dir, 'repo');
    config.clusters[flow.source].store = { type: 'postgres', connectionString: PG_URL, schema };
    config.clusters[flow.source].backup = { repository: { type: 'local', path: repoDir }, encryption: { keyFile, keyId: 'dr-backups-1' } };
    writeFileSync(flow.configPath, stringify(config));

    const store = new PostgresStore({ connectionString: PG_URL, schema });
    const restored = new PostgresStore({ connectionString: PG_URL, schema: restoredSchema });
    try {
      await store.migrate();
      const e = new Events();
      const secretId = 'vertex-7f3a-known-plaintext';
      await store.applyBatch(
        [
          e.ev({ op: 'CREATE_VERTEX_TYPE', name: 'person', primaryIdType: 'STRING', attributes: [{ name: 'n', type: 'INT' }] }),
          e.ev({ op: 'CREATE_EDGE_TYPE', name: 'knows', fromType: 'person', toType: 'person', directed: true, attributes: [] }),
          e.upsertV('person', secretId, { n: -1 }),
          ...Array.from({ length: 2000 }, (_, i) => e.upsertV('person', `p${i}`, { n: i })),
          ...Array.from({ length: 1000 }, (_, i) => e.upsertE('knows', ['person', `p${i}`], ['person', secretId], {})),
        ],
        [{ topic: `${flow.prefix}.data`, partition: 0, nextOffset: 3003 }],
      );
      await store.setClusterState({ role: 'primary', state: 'ACTIVE', epoch: 2 });

      const created = await runCrr(['backup', 'create', '--config', flow.configPath, '--cluster', flow.source, '--json']);
      expect(created.code, created.stderr).toBe(0);
      const id = (JSON.parse(created.stdout) as { id: string }).id;

      const files = readdirSync(join(repoDir, id)).sort();
      expect(files).toEqual(['edges-00001.ndjson.gz.enc', 'manifest.json', 'vertices-00001.ndjson.gz.enc']);
      for (const f of files.filter((n) => n.endsWith('.enc'))) expect(readFileSync(join(repoDir, id, f)).includes(secretId)).toBe(false);
      const manifest = JSON.parse(readFileSync(join(repoDir, id, 'manifest.json'), 'utf8'));
      expect(manifest.encryption).toEqual({ algorithm: 'AES-256-GCM', keyId: 'dr-backups-1' });
      expect(manifest.hmac).toMatchObject({ algorithm: 'HMAC-SHA256', keyId: 'dr-backups-1' });

      const verified = await runCrr(['backup', 'verify', id, '--config', flow.configPath, '--cluster', flow.source]);
      expect(verified.code, verified.stderr).toBe(0);
      expect(verified.stdout).toContain('parts encrypted (AES-256-GCM, key id dr-backups-1)');
      expect(verified.stdout).toContain('manifest HMAC verified (key id dr-backups-1)');

      // restored through the config's repository and keys
      const repo = await openRepository(loadConfig(flow.configPath, {}).clusters[flow.source]!.backup!, `clusters.${flow.source}.backup`);
      await restored.migrate();
      await restoreBackup(restored, repo, id);
      expect(await restored.digest()).toBe(await store.digest());
      expect(await restored.counts()).toEqual(await store.counts());
      expect(await restored.positions()).toEqual(await store.positions());

      // the same repository without the key: verify checks the stored bytes and fails, naming the key id
      delete config.clusters[flow.source].backup.encryption;
      writeFileSync(flow.configPath, stringify(config));
      const keyless = await runCrr(['backup', 'verify', id, '--config', flow.configPath, '--cluster', flow.source]);
      expect(keyless.code).toBe(1);
      expect(keyless.stdout).toContain(
        `backup ${id}: its parts are encrypted (AES-256-GCM) with key id dr-backups-1, and no backup.encryption key is configured`,
      );
      expect(keyless.stdout).toContain('manifest HMAC not checked');
      // ... and crr restore refuses it at its plan, before anything is opened
      const plan = await runCrr(['restore', '--config', flow.configPath, '--cluster', flow.source, '--backup', id]);
      expect(plan.code).toBe(EXIT.BACKUP_INVALID);
      expect(plan.stderr).toContain(`key id dr-backups-1, and no backup.encryption key is configured`);

      // a key file that is not a key: refused at start, exit 78, naming the config path
      writeFileSync(join(dir, 'bad.key'), 'hunter2\n');
      config.clusters[flow.source].backup.encryption = { keyFile: join(dir, 'bad.key') };
      writeFileSync(flow.configPath, stringify(config));
      const bad = await runCrr(['backup', 'list', '--config', flow.configPath, '--cluster', flow.source]);
      expect(bad.code).toBe(78);
      expect(bad.stderr).toContain(`clusters.${flow.source}.backup.encryption.keyFile: ${join(dir, 'bad.key')} is not a 32-byte key`);
      expect(bad.stderr).not.toContain('hunter2');
    } finally {
      await store.close();
      await restored.close();
    }
  });
});
