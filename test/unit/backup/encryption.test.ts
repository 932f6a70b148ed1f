import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readBackup, readManifest } from '../../../src/backup/catalog.js';
import { type BackupKeys, canonicalJson, defaultKeyId, loadBackupKeys, partAad, readKeyFile } from '../../../src/backup/keys.js';
import { LocalRepository } from '../../../src/backup/local-repository.js';
import type { Manifest } from '../../../src/backup/manifest.js';
import { MAX_PART_LINE_BYTES, PartWriter, readPart } from '../../../src/backup/part.js';
import { restoreBackup } from '../../../src/backup/restore.js';
import { verifyBackup } from '../../../src/backup/verify.js';
import { createBackup } from '../../../src/backup/write.js';
import { loadConfig } from '../../../src/config/load.js';
import { fill, useStores, useTempDirs, rejection, drain } from './fixtures.js';

const tempDir = useTempDirs();
const openStore = useStores();

/** A key file of a fresh random key, as hex; its path and the keys of a `backup.encryption` naming it. */
function keyFile(dir: string, name = 'backup.key'): { path: string; keys: BackupKeys } {
  const path = join(dir, name);
  writeFileSync(path, `${randomBytes(32).toString('hex')}\n`);
  return { path, keys: loadBackupKeys({ encryption: { keyFile: path } }, 'clusters.primary.backup') };
}

/** Rewrites a backup's manifest in the repository `<dir>/repo` (as an attacker who can write it would), keeping whatever hmac it has. */
function editManifest(dir: string, id: string, edit: (m: Manifest) => void): void {
  const path = join(dir, 'repo', id, 'manifest.json');
  const m = JSON.parse(readFileSync(path, 'utf8')) as Manifest;
  edit(m);
  writeFileSync(path, JSON.stringify(m, null, 2));
}

/** Sets a part entry's sha256 and bytes to those of its file (in `<dir>/repo`) as it is now. */
function resum(dir: string, id: string, m: Manifest, name: string): void {
  const bytes = readFileSync(join(dir, 'repo', id, name));
  const p = m.parts.find((q) => q.name === name)!;
  p.sha256 = createHash('sha256').update(bytes).digest('hex');
  p.bytes = bytes.length;
}

describe('backup encryption (AES-256-GCM per part) and manifest HMAC', () => {
  it('round trip: parts stored encrypted (no plaintext, not gzip), the manifest names the key id and is signed; restored, the store is equal; verify is OK', async () => {
    const store = await openStore();
    await fill(store, 1500, 1000);
    const dir = tempDir();
    const { keys } = keyFile(dir);
    const repo = new LocalRepository(join(dir, 'repo'), keys);
    const manifest = await createBackup(store, repo, { cluster: 'primary', batchRows: 400 });

    const keyId = defaultKeyId(keys.encryption!.key);
    expect(keyId).toMatch(/^[0-9a-f]{16}$/);
    expect(manifest.encryption).toEqual({ algorithm: 'AES-256-GCM', keyId });
    expect(manifest.hmac).toMatchObject({ algorithm: 'HMAC-SHA256', keyId });
    expect(manifest.parts.map((p) => p.name)).toEqual(['vertices-00001.ndjson.gz.enc', 'edges-00001.ndjson.gz.enc']);
    const text = readFileSync(join(dir, 'repo', manifest.id, 'manifest.json'), 'utf8');
    expect(text).not.toContain(keys.encryption!.key.toString('hex'));
    for (const p of manifest.parts) {
      const stored = readFileSync(join(dir, 'repo', manifest.id, p.name));
      // the manifest's sums are over the stored bytes: sha256sum checks them without the key
      expect(createHash('sha256').update(stored).digest('hex')).toBe(p.sha256);
      expect(stored.length).toBe(p.bytes);
      expect(stored.subarray(12, 14).equals(Buffer.from([0x1f, 0x8b]))).toBe(false);
      expect(stored.includes('p000001')).toBe(false);
    }

    const restored = await openStore();
    await restoreBackup(restored, repo, manifest.id);
    expect(await restored.digest()).toBe(await store.digest());
    expect(await restored.counts()).toEqual(await store.counts());
    expect(await restored.positions()).toEqual(await store.positions());
    expect(await verifyBackup(repo, manifest.id)).toMatchObject({ ok: true, records: 2500, manifestHmac: 'verified', contentChecked: true, problems: [] });
  });

  it('without the key, or with another one, restore and verify are refused naming the backup and the key id; verify still checks the stored bytes', async () => {
    const store = await openStore();
    await fill(store, 50, 20);
    const dir = tempDir();
    const { keys } = keyFile(dir);
    const m = await createBackup(store, new LocalRepository(join(dir, 'repo'), keys), { cluster: 'primary' });
    const keyId = m.encryption!.keyId;

    // no key: the manifest reads (its HMAC cannot be checked), the parts cannot
    const bare = new LocalRepository(join(dir, 'repo'));
    expect((await readManifest(bare, m.id)).id).toBe(m.id);
    const err = await rejection(restoreBackup(await openStore(), bare, m.id));
    expect(err).toMatchObject({ code: 'CRR_BACKUP_INVALID', problem: 'key', backupId: m.id, keyId });
    expect(err.message).toContain(`backup ${m.id}`);
    expect(err.message).toContain(`key id ${keyId}`);
    expect(err.message).toContain('no backup.encryption key is configured');
    await expect(drain(readBackup(bare, m.id))).rejects.toMatchObject({ problem: 'key' });
    const v = await verifyBackup(bare, m.id);
    expect(v).toMatchObject({ ok: false, contentChecked: false, manifestHmac: 'not-checked', partsChecked: 2 });
    expect(v.problems).toEqual([expect.objectContaining({ part: 'manifest.json', problem: 'key' })]);
    // ... and a stored byte changed is still found without the key
    const part = join(dir, 'repo', m.id, m.parts[0]!.name);
    const bytes = readFileSync(part);
    bytes[20]! ^= 1;
    writeFileSync(part, bytes);
    expect((await verifyBackup(bare, m.id)).problems.map((p) => [p.part, p.problem])).toEqual([
      ['manifest.json', 'key'],
      [m.parts[0]!.name, 'corrupt'],
    ]);

    // another key: refused at the manifest (its HMAC key is derived from the encryption key), naming both ids
    const other = keyFile(dir, 'other.key').keys;
    const err2 = await rejection(restoreBackup(await openStore(), new LocalRepository(join(dir, 'repo'), other), m.id));
    expect(err2).toMatchObject({ code: 'CRR_BACKUP_INVALID', backupId: m.id });
    expect(err2.message).toContain(`is signed with key id ${keyId}, not the configured one (key id ${other.encryption!.keyId}`);
    // another key without the manifest HMAC: refused at the key
    const err3 = await rejection(restoreBackup(await openStore(), new LocalRepository(join(dir, 'repo'), { encryption: other.encryption! }), m.id));
    expect(err3).toMatchObject({ problem: 'key', keyId });
    expect(err3.message).toContain(`the configured backup.encryption key is key id ${other.encryption!.keyId}`);
  });

  it('a part whose ciphertext or tag was changed is refused, even with its SHA-256 in the manifest rewritten to match', async () => {
    const store = await openStore();
    await fill(store, 300, 100);
    const dir = tempDir();
    const enc = keyFile(dir).keys.encryption!;
    // no manifest HMAC here, so that the manifest can be rewritten: the part's own tag must catch it
    const repo = new LocalRepository(join(dir, 'repo'), { encryption: enc });
    const m = await createBackup(store, repo, { cluster: 'primary' });
    const name = m.parts[0]!.name;
    const file = join(dir, 'repo', m.id, name);
    const original = readFileSync(file);

    // the last byte is the tag's: the plaintext is intact, only AES-GCM can tell
    const tag = Buffer.from(original);
    tag[tag.length - 1]! ^= 0x80;
    writeFileSync(file, tag);
    editManifest(dir, m.id, (x) => resum(dir, m.id, x, name));
    const err = await rejection(drain(readBackup(repo, m.id)));
    expect(err).toMatchObject({ code: 'CRR_BACKUP_INVALID', problem: 'corrupt', part: name, backupId: m.id });
    expect(err.message).toContain(`part ${name} is corrupt: its AES-256-GCM authentication tag does not match`);

    const body = Buffer.from(original);
    body[40]! ^= 0x01;
    writeFileSync(file, body);
    editManifest(dir, m.id, (x) => resum(dir, m.id, x, name));
    expect(await rejection(restoreBackup(await openStore(), repo, m.id))).toMatchObject({ problem: 'corrupt', part: name });
    const v = await verifyBackup(repo, m.id);
    expect(v.problems.map((p) => [p.part, p.problem])).toEqual([[name, 'corrupt']]);
  });

  it('parts swapped within a backup, or taken from another backup, are refused (the backup id and the part place are authenticated)', async () => {
    const store = await openStore();
    await fill(store, 3000, 0);
    const dir = tempDir();
    const enc = keyFile(dir).keys.encryption!;
    const repo = new LocalRepository(join(dir, 'repo'), { encryption: enc });
    const a = await createBackup(store, repo, { cluster: 'primary', partSizeBytes: 64 * 1024, batchRows: 200 });
    expect(a.parts.length).toBeGreaterThanOrEqual(2);
    const [n1, n2] = [a.parts[0]!.name, a.parts[1]!.name];
    await drain(readBackup(repo, a.id));

    // swap the two files, and their entries' sums (the attacker can rewrite an unsigned manifest)
    const f1 = readFileSync(join(dir, 'repo', a.id, n1));
    const f2 = readFileSync(join(dir, 'repo', a.id, n2));
    writeFileSync(join(dir, 'repo', a.id, n1), f2);
    writeFileSync(join(dir, 'repo', a.id, n2), f1);
    editManifest(dir, a.id, (x) => {
      const [e1, e2] = [x.parts[0]!, x.parts[1]!];
      [e1.records, e2.records] = [e2.records, e1.records];
      [e1.uncompressedBytes, e2.uncompressedBytes] = [e2.uncompressedBytes, e1.uncompressedBytes];
      resum(dir, a.id, x, n1);
      resum(dir, a.id, x, n2);
    });
    const err = await rejection(restoreBackup(await openStore(), repo, a.id));
    expect(err).toMatchObject({ code: 'CRR_BACKUP_INVALID', problem: 'corrupt', part: n1 });
    expect(err.message).toContain('authentication tag does not match');

    // the first part of another backup (same key, same name, same index) in place of this one's
    const b = await createBackup(store, repo, { cluster: 'primary', partSizeBytes: 64 * 1024, batchRows: 200 });
    writeFileSync(join(dir, 'repo', b.id, n1), f1);
    editManifest(dir, b.id, (x) => {
      x.parts[0]!.records = a.parts[0]!.records;
      x.parts[0]!.uncompressedBytes = a.parts[0]!.uncompressedBytes;
      resum(dir, b.id, x, n1);
    });
    expect(await rejection(drain(readBackup(repo, b.id)))).toMatchObject({ problem: 'corrupt', part: n1, backupId: b.id });
  });

  it('a manifest whose part list was edited, HMAC kept, is refused; so is one without an HMAC while a key is configured', async () => {
    const store = await openStore();
    await fill(store, 200, 100);
    const dir = tempDir();
    const { keys } = keyFile(dir);
    const repo = new LocalRepository(join(dir, 'repo'), keys);
    const m = await createBackup(store, repo, { cluster: 'primary' });

    // drop the edges part and fix the totals: a consistent manifest, but not the one signed
    editManifest(dir, m.id, (x) => {
      x.parts = x.parts.filter((p) => p.kind === 'vertices');
      x.totals = { ...x.totals, edges: 0, parts: 1, bytes: x.parts[0]!.bytes, uncompressedBytes: x.parts[0]!.uncompressedBytes };
    });
    const err = await rejection(readManifest(repo, m.id));
    expect(err).toMatchObject({ code: 'CRR_BACKUP_INVALID', backupId: m.id });
    expect(err.message).toContain(`backup ${m.id}: manifest manifest.json has an HMAC that does not match`);
    await expect(restoreBackup(await openStore(), repo, m.id)).rejects.toMatchObject({ code: 'CRR_BACKUP_INVALID' });
    expect(await verifyBackup(repo, m.id)).toMatchObject({ ok: false, problems: [expect.objectContaining({ problem: 'manifest' })] });
    // without the HMAC key the edit is not seen: what the HMAC is for
    expect((await readManifest(new LocalRepository(join(dir, 'repo'), { encryption: keys.encryption! }), m.id)).parts).toHaveLength(1);

    // the hmac removed
    editManifest(dir, m.id, (x) => {
      delete x.hmac;
    });
    expect((await rejection(readManifest(repo, m.id))).message).toContain('has no HMAC, and a manifest HMAC key is configured');

    // a backup taken without keys, read with a manifest HMAC key configured
    const plain = await createBackup(store, new LocalRepository(join(dir, 'repo')), { cluster: 'primary' });
    expect(plain.hmac).toBeUndefined();
    expect((await rejection(readManifest(repo, plain.id))).message).toContain('has no HMAC');
  });

  it('backup.manifestHmac alone signs the manifest of a backup whose parts stay gzip; its own key id', async () => {
    const store = await openStore();
    await fill(store, 100, 50);
    const dir = tempDir();
    const path = join(dir, 'mac.key');
    writeFileSync(path, randomBytes(32).toString('base64'));
    const keys = loadBackupKeys({ manifestHmac: { keyFile: path, keyId: 'mac-2026' } }, 'clusters.primary.backup');
    expect(keys).toEqual({ manifestHmac: { key: expect.any(Buffer), keyId: 'mac-2026', derived: false } });
    const repo = new LocalRepository(join(dir, 'repo'), keys);
    const m = await createBackup(store, repo, { cluster: 'primary' });
    expect(m.encryption).toBeUndefined();
    expect(m.hmac?.keyId).toBe('mac-2026');
    expect(m.parts[0]!.name).toBe('vertices-00001.ndjson.gz');
    expect(await verifyBackup(repo, m.id)).toMatchObject({ ok: true, manifestHmac: 'verified' });
    // the HMAC is over the canonical JSON: re-indenting or reordering the file does not break it
    const file = join(dir, 'repo', m.id, 'manifest.json');
    const raw = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    writeFileSync(file, JSON.stringify(Object.fromEntries(Object.entries(raw).reverse())));
    expect((await readManifest(repo, m.id)).id).toBe(m.id);
    editManifest(dir, m.id, (x) => {
      x.epoch += 1;
    });
    expect((await rejection(readManifest(repo, m.id))).message).toContain('has an HMAC that does not match');
  });

  it('a line longer than MAX_PART_LINE_BYTES in an encrypted part is refused, naming the backup, the part and the line', async () => {
    const dir = tempDir();
    const enc = keyFile(dir).keys.encryption!;
    const repo = new LocalRepository(join(dir, 'repo'), { encryption: enc });
    const id = '20261202T100000Z-primary-abcd';
    const name = 'vertices-00001.ndjson.gz.enc';
    const w = new PartWriter(repo, `${id}/${name}`, name, 'vertices', { key: enc.key, aad: partAad(id, 0, name) });
    await w.write('{"type":"person","id":"a","attributes":{}}\n', 1);
    await w.write(`{"type":"person","id":"b","attributes":{"x":"${'x'.repeat(MAX_PART_LINE_BYTES)}"}}\n`, 1);
    const entry = await w.finish();
    const err = await rejection(drain(readPart(repo, id, entry, 100, { key: enc.key, index: 0 })));
    expect(err).toMatchObject({ code: 'CRR_BACKUP_INVALID', problem: 'corrupt', backupId: id, part: name });
    expect(err.message).toBe(
      `backup ${id}: part ${name} is corrupt: line 2 is longer than ${MAX_PART_LINE_BYTES} bytes (MAX_PART_LINE_BYTES), the longest line a part may hold`,
    );
    // read without its key: refused before anything is read
    expect(await rejection(drain(readPart(repo, id, entry, 100)))).toMatchObject({ problem: 'key' });
  });
});

describe('backup key files', () => {
  const key = randomBytes(32);
  it.each([
    ['32 raw bytes', key],
    ['64 hex digits', key.toString('hex')],
    ['64 hex digits and a newline', `${key.toString('hex').toUpperCase()}\n`],
    ['base64', `${key.toString('base64')}\n`],
    ['base64url without padding', key.toString('base64url')],
  ])('accepts %s', (_what, content) => {
    const path = join(tempDir(), 'k');
    writeFileSync(path, content);
    expect(readKeyFile(path, 'x.keyFile').equals(key)).toBe(true);
  });

  it.each([
    ['31 raw bytes', randomBytes(31)],
    ['62 hex digits', randomBytes(31).toString('hex')],
    ['base64 of 31 bytes', randomBytes(31).toString('base64')],
    ['a passphrase', 'correct horse battery staple\n'],
    ['nothing', ''],
  ])('refuses %s, naming the config path and the size, never the content', (_what, content) => {
    const path = join(tempDir(), 'k');
    writeFileSync(path, content);
    let err: unknown;
    try {
      readKeyFile(path, 'clusters.primary.backup.encryption.keyFile');
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'CRR_CONFIG_INVALID', path: 'clusters.primary.backup.encryption.keyFile' });
    expect((err as Error).message).toContain(`clusters.primary.backup.encryption.keyFile: ${path} is not a 32-byte key`);
    if (typeof content === 'string' && content.length > 0) expect((err as Error).message).not.toContain(content.trim());
  });

  it('loadConfig refuses a config whose backup key file is not a key or cannot be read (exit 78), naming the path', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'bad.key'), 'not a key\n');
    const yaml = (encryption: string, mac: string): string =>
      [
        'clusters:',
        '  primary:',
        "    bootstrapServers: ['127.0.0.1:19092']",
        '    backup:',
        `      repository: { type: local, path: ${join(dir, 'repo')} }`,
        `      encryption: { keyFile: ${encryption} }`,
        `      manifestHmac: { keyFile: ${mac} }`,
        '  dr:',
        "    bootstrapServers: ['127.0.0.1:29092']",
        'mirror:',
        '  flows: [{ source: primary, target: dr }]',
      ].join('\n');
    const file = join(dir, 'crr.yaml');
    writeFileSync(file, yaml(join(dir, 'bad.key'), join(dir, 'missing.key')));
    let err: unknown;
    try {
      loadConfig(file, {});
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'CRR_CONFIG_INVALID' });
    expect((err as Error).message).toContain('clusters.primary.backup.manifestHmac.keyFile: cannot read');
    const good = join(dir, 'good.key');
    writeFileSync(good, randomBytes(32).toString('hex'));
    writeFileSync(file, yaml(join(dir, 'bad.key'), good));
    expect(() => loadConfig(file, {})).toThrow(
      `clusters.primary.backup.encryption.keyFile: ${join(dir, 'bad.key')} is not a 32-byte key: expected 32 raw bytes, 64 hex digits or the base64 of 32 bytes`,
    );
    writeFileSync(file, yaml(good, good));
    expect(loadConfig(file, {}).clusters.primary!.backup!.encryption).toEqual({ keyFile: good });
  });

  it('canonical JSON sorts keys at every depth and keeps array order', () => {
    expect(canonicalJson({ b: 1, a: [{ d: 'x', c: null }, 2], é: true })).toBe('{"a":[{"c":null,"d":"x"},2],"b":1,"é":true}');
  });
});
