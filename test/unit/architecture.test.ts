import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = new URL('../../src/', import.meta.url).pathname;

/** Relative imports (`from './x.js'`, `from '../y/z.js'`) of every .ts file in a folder of src/. */
function importsOf(folder: string): Array<{ file: string; target: string }> {
  const out: Array<{ file: string; target: string }> = [];
  for (const f of readdirSync(join(SRC, folder)).filter((n) => n.endsWith('.ts'))) {
    const text = readFileSync(join(SRC, folder, f), 'utf8');
    for (const m of text.matchAll(/from '(\.{1,2}\/[^']+)'/g)) out.push({ file: `${folder}/${f}`, target: m[1]! });
  }
  return out;
}

// Import cycles between files are refused by Biome's noImportCycles (npm run lint); these keep
// the folder-level layering of docs/architecture.md ("Source layout").
describe('source layout', () => {
  it('src/replication/ is a leaf: it imports nothing of crr but errors.ts', () => {
    const outside = importsOf('replication').filter(({ target }) => target.startsWith('../') && target !== '../errors.js');
    expect(outside).toEqual([]);
  });

  it('checkpoint/ does not import mirror/ (the mirror runs the checkpoint task, not the reverse)', () => {
    expect(importsOf('checkpoint').filter(({ target }) => target.startsWith('../mirror/'))).toEqual([]);
  });

  it('replay/ and cluster/ do not reach into mirror/', () => {
    expect([...importsOf('replay'), ...importsOf('cluster')].filter(({ target }) => target.startsWith('../mirror/'))).toEqual([]);
  });

  it('domain folders do not import the CLI', () => {
    const domain = ['mirror', 'replay', 'checkpoint', 'cluster', 'store', 'replication', 'protocol', 'kafka', 'writer', 'reseed', 'failover', 'admin'];
    expect(domain.flatMap(importsOf).filter(({ target }) => target.startsWith('../cli/'))).toEqual([]);
  });
});
