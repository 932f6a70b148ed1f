#!/usr/bin/env node
// Entry point of the `crr` command. The TypeScript sources are compiled to dist/ by `npm ci`
// (the package's `prepare` script); this shim only loads the compiled CLI.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(main))) {
  process.stderr.write('crr: dist/ is missing; run `npm run build` (npm ci runs it for you)\n');
  process.exit(70);
}
await import(main.href);
