// The package version, read once from the package.json that ships with this code.
import { readFileSync } from 'node:fs';
import { packageFile } from '../api/package-files.js';

let cached: string | undefined;

function readManifest(file: string): { name?: string; version?: string } {
  return JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
}

export function packageVersion(): string {
  cached ??= readManifest(packageFile('package.json', (f) => readManifest(f).name === 'quorumkv')).version ?? 'unknown';
  return cached;
}
