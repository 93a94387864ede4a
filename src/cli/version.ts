// The package version, read once from the package.json that ships with this code.
import { readFileSync } from 'node:fs';
import { packageFile } from '../api/package-files.js';

let cached: string | undefined;

export function packageVersion(): string {
  cached ??= (JSON.parse(readFileSync(packageFile('package.json'), 'utf8')) as { version: string }).version;
  return cached;
}
