// Finds files that ship beside the compiled code (proto/, package.json). The same module runs from
// src/ (under tsx), dist/esm/ and dist/cjs/, at different depths below the package root, so it
// walks up from its own directory instead of assuming one.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// CommonJS has __filename; ESM has import.meta (the CJS build leaves it empty).
const HERE = path.dirname(typeof __filename === 'string' ? __filename : fileURLToPath(import.meta.url));

/** How far up the package root can be: src/api, dist/esm/api and dist/cjs/api are 2–3 levels down. */
const MAX_LEVELS = 4;

/**
 * The absolute path of `relPath` (e.g. 'proto/kv.proto') in the quorumkv package; `accept` skips
 * look-alikes on the way up (dist/cjs has a package.json of its own that only sets the module type).
 */
export function packageFile(relPath: string, accept: (candidate: string) => boolean = () => true): string {
  let dir = HERE;
  for (let level = 0; level <= MAX_LEVELS; level++) {
    const candidate = path.join(dir, relPath);
    if (existsSync(candidate) && accept(candidate)) return candidate;
    dir = path.dirname(dir);
  }
  throw new Error(`quorumkv package is incomplete: ${relPath} not found above ${HERE}; reinstall the package`);
}
