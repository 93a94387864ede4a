#!/usr/bin/env node
// Builds only when dist/ is stale: dist/.build-stamp missing, or anything the build reads (src/,
// proto/, the tsconfigs, scripts/build.mjs) modified after it. A stat walk — no child process and
// no import of the build tooling when dist/ is fresh. Directories count too, so a deleted or
// renamed source file also makes dist/ stale. Used by `npm start` and `npm test`.
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const STAMP = path.join(ROOT, 'dist', '.build-stamp');
const INPUTS = ['src', 'proto', 'tsconfig.json', 'tsconfig.build.json', 'scripts/build.mjs'];

function mtimeMs(p) {
  try {
    return statSync(p).mtimeMs;
  } catch {
    return undefined;
  }
}

/** The first input path modified after `since`, or undefined. */
function newerThan(p, since) {
  const st = statSync(p, { throwIfNoEntry: false });
  if (!st) return undefined;
  if (st.mtimeMs > since) return p;
  if (!st.isDirectory()) return undefined;
  for (const name of readdirSync(p)) {
    const hit = newerThan(path.join(p, name), since);
    if (hit) return hit;
  }
  return undefined;
}

/** Why dist/ needs a build, or undefined when it is up to date. */
export function staleReason() {
  const stamp = mtimeMs(STAMP);
  if (stamp === undefined) return 'dist/ has not been built';
  for (const input of INPUTS) {
    const hit = newerThan(path.join(ROOT, input), stamp);
    if (hit) return `${path.relative(ROOT, hit)} changed since the last build`;
  }
  return undefined;
}

export async function ensureBuilt() {
  const reason = staleReason();
  if (!reason) return false;
  process.stderr.write(`ensure-built: ${reason}; building\n`);
  const { build } = await import('./build.mjs');
  await build();
  return true;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  ensureBuilt().catch((err) => {
    process.stderr.write(`build failed: ${err.message}\n`);
    process.exit(1);
  });
}
