#!/usr/bin/env node
// The published `quorumkv` command: runs the compiled CLI in dist/ with production dependencies
// only (no tsx). In a source checkout, `npm ci` or `npm run build` produces dist/.
import { existsSync } from 'node:fs';

const main = new URL('../dist/esm/process/main.js', import.meta.url);
if (!existsSync(main)) {
  process.stderr.write('quorumkv: dist/esm/process/main.js is missing; in a source checkout run `npm run build` first\n');
  process.exit(1);
}
await import(main.href);
