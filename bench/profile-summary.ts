// Summarizes a V8 .cpuprofile (from `--profile-dir`): self time per function and per file, top N.
// Usage: node --import tsx bench/profile-summary.ts <file.cpuprofile> [top=25]
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

export interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface SelfTime {
  name: string;
  ms: number;
  percent: number;
}

function shortUrl(url: string): string {
  const i = url.indexOf('/node_modules/');
  if (i >= 0) return url.slice(i + 1);
  const j = url.indexOf('/src/');
  if (j >= 0) return url.slice(j + 1);
  return url.replace(/^file:\/\//, '') || '(native)';
}

/** Self time per key (function or file): each sample's time delta is billed to the sampled node. */
export function selfTimes(profile: CpuProfile, by: 'function' | 'file'): SelfTime[] {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const totals = new Map<string, number>();
  let total = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i]!);
    const dt = (profile.timeDeltas[i + 1] ?? 0) / 1000; // µs -> ms; delta i+1 is the time spent in sample i
    if (!node) continue;
    const f = node.callFrame;
    const key = by === 'file' ? shortUrl(f.url) : `${f.functionName || '(anonymous)'} ${shortUrl(f.url)}:${f.lineNumber + 1}`;
    totals.set(key, (totals.get(key) ?? 0) + dt);
    total += dt;
  }
  return [...totals.entries()]
    .map(([name, ms]) => ({ name, ms, percent: total > 0 ? (100 * ms) / total : 0 }))
    .sort((a, b) => b.ms - a.ms);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const file = process.argv[2];
  if (!file) {
    process.stderr.write('usage: node --import tsx bench/profile-summary.ts <file.cpuprofile> [top]\n');
    process.exit(2);
  }
  const top = Number(process.argv[3] ?? 25);
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  for (const by of ['function', 'file'] as const) {
    process.stdout.write(`\nself time by ${by} (${file}):\n`);
    for (const r of selfTimes(profile, by).slice(0, top)) {
      process.stdout.write(`${r.percent.toFixed(1).padStart(6)}%  ${r.ms.toFixed(0).padStart(7)} ms  ${r.name}\n`);
    }
  }
}
