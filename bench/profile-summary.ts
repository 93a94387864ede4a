// Summarizes a V8 .cpuprofile (from `--profile-dir` or bench/profile.ts): self time per function,
// per file and per area (raft core, runtime, storage, gRPC, LevelDB, logging, GC, ...), and
// inclusive time per function, optionally restricted to a time window and without idle time.
// Usage: node --import tsx bench/profile-summary.ts <file.cpuprofile> [top=25]
import { readdirSync, readFileSync } from 'node:fs';
import { SourceMap, type SourceMapPayload } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber?: number };
  children?: number[];
}

export interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  /** µs on the monotonic clock (the one process.hrtime uses, so other processes can name windows). */
  startTime?: number;
  endTime?: number;
}

export interface SelfTime {
  name: string;
  ms: number;
  percent: number;
}

export interface SummaryOptions {
  /** Only samples taken at or after this monotonic time (µs, the profile's clock). */
  fromUs?: number;
  /** Only samples taken before this monotonic time (µs). */
  toUs?: number;
  /** Leave out `(idle)`: percentages are then of the time the thread was busy. */
  excludeIdle?: boolean;
}

function shortUrl(url: string): string {
  const i = url.indexOf('/node_modules/');
  if (i >= 0) return url.slice(i + 1);
  const j = url.indexOf('/src/');
  if (j >= 0) return url.slice(j + 1);
  return url.replace(/^file:\/\//, '') || '(native)';
}

function functionKey(f: ProfileNode['callFrame']): string {
  return `${f.functionName || '(anonymous)'} ${shortUrl(f.url)}:${f.lineNumber + 1}`;
}

/**
 * tsx runs TypeScript through esbuild with whitespace minified, so every frame of a .ts file sits
 * on line 1 and anonymous closures cannot be told apart. tsx keeps each transform (code and source
 * map) in its cache dir; this finds, per profiled file, the cached transform whose named functions
 * sit exactly at the profile's columns, and rewrites lineNumber to the TypeScript line. Frames it
 * cannot place keep line 1. Returns how many files were resolved.
 */
export function resolveTsxLines(profile: CpuProfile, cacheDir = path.join(os.tmpdir(), `tsx-${os.userInfo().uid}`)): number {
  const byUrl = new Map<string, ProfileNode[]>();
  for (const n of profile.nodes) {
    const f = n.callFrame;
    // A transform keeps a leading comment line or two (a banner), so the code may start on line 2.
    if (!f.url.startsWith('file://') || !/\.[cm]?tsx?$/.test(f.url) || f.lineNumber > 2 || f.columnNumber === undefined) continue;
    const list = byUrl.get(f.url) ?? [];
    list.push(n);
    byUrl.set(f.url, list);
  }
  if (byUrl.size === 0) return 0;
  let entries: string[];
  try {
    entries = readdirSync(cacheDir);
  } catch {
    return 0;
  }
  const wanted = new Map([...byUrl.keys()].map((u) => [fileURLToPath(u), u]));
  const candidates = new Map<string, { code: string; map: SourceMapPayload }[]>();
  for (const e of entries) {
    let j: { code?: string; map?: SourceMapPayload | string };
    try {
      j = JSON.parse(readFileSync(path.join(cacheDir, e), 'utf8'));
    } catch {
      continue;
    }
    if (typeof j.code !== 'string' || !j.map) continue;
    const map = typeof j.map === 'string' ? (JSON.parse(j.map) as SourceMapPayload) : j.map;
    const src = map.sources?.find((s) => wanted.has(s));
    if (!src) continue;
    const url = wanted.get(src)!;
    const list = candidates.get(url) ?? [];
    list.push({ code: j.code, map });
    candidates.set(url, list);
  }
  let resolved = 0;
  for (const [url, nodes] of byUrl) {
    const named = nodes.filter((n) => n.callFrame.functionName !== '' && !n.callFrame.functionName.startsWith('<'));
    // V8 places a function at the '(' of its parameter list: the name ends right before it
    // (constructors are named after their class).
    const at = (code: string, n: ProfileNode): boolean => {
      const col = offsetOf(code, n.callFrame.lineNumber, n.callFrame.columnNumber!);
      const name = n.callFrame.functionName.split('.').pop()!;
      return col >= 0 && (code.startsWith(name, col - name.length) || code.startsWith('constructor', col - 11));
    };
    let match: { code: string; map: SourceMapPayload } | undefined;
    let best = 0;
    for (const c of candidates.get(url) ?? []) {
      const score = named.filter((n) => at(c.code, n)).length;
      if (score > best) {
        best = score;
        match = c;
      }
    }
    // Named frames must sit where this transform has them, or the file changed since. Names V8
    // infers for arrow functions (`const x = (...) =>`) do not end at the '(' and are let off.
    if (named.length === 0 || best < Math.max(1, Math.ceil(0.8 * named.length))) match = undefined;
    if (!match) continue;
    const sm = new SourceMap(match.map);
    for (const n of nodes) {
      const entry = sm.findEntry(n.callFrame.lineNumber, n.callFrame.columnNumber!) as { originalLine?: number };
      if (typeof entry.originalLine === 'number') n.callFrame.lineNumber = entry.originalLine;
    }
    resolved++;
  }
  return resolved;
}

/** Offset in `code` of a 0-based line and column, or -1. */
function offsetOf(code: string, line: number, col: number): number {
  let start = 0;
  for (let i = 0; i < line; i++) {
    const nl = code.indexOf('\n', start);
    if (nl < 0) return -1;
    start = nl + 1;
  }
  return start + col;
}

/** The area a frame belongs to, for the "where does the time go" rollup. */
export function areaOf(f: ProfileNode['callFrame']): string {
  const { url, functionName } = f;
  if (functionName === '(garbage collector)') return 'GC';
  if (functionName === '(idle)') return 'idle';
  if (functionName === '(program)') return 'V8 (program: compile, IC, runtime)';
  if (url.includes('/node_modules/@grpc/') || url.includes('/node_modules/@js-sdsl/')) return 'gRPC (grpc-js)';
  if (url.includes('/node_modules/protobufjs/') || url.includes('/node_modules/@protobufjs/')) return 'protobuf (protobufjs)';
  if (/\/node_modules\/(classic-level|abstract-level|level|level-transcoder|module-error|maybe-combine-errors)\//.test(url)) return 'LevelDB (JS side)';
  if (
    /\/node_modules\/(pino|pino-std-serializers|sonic-boom|thread-stream|fast-redact|quick-format-unescaped|atomic-sleep|on-exit-leak-free|safe-stable-stringify)\//.test(
      url,
    )
  )
    return 'logging (pino)';
  if (url.includes('/node_modules/msgpackr')) return 'msgpackr';
  if (url.includes('/node_modules/')) return `other package (${url.slice(url.indexOf('/node_modules/') + 14).split('/')[0]})`;
  const m = /\/src\/([a-z-]+)\//.exec(url);
  if (m) return `quorumkv src/${m[1]}`;
  if (url.startsWith('node:internal/timers') || url.startsWith('node:timers')) return 'node timers';
  if (url.startsWith('node:internal/http2') || url.startsWith('node:http2')) return 'node http2';
  if (url.startsWith('node:internal/fs') || url.startsWith('node:fs')) return 'node fs';
  if (url.startsWith('node:internal/streams') || url.startsWith('node:stream')) return 'node streams';
  if (url.startsWith('node:internal/process/task_queues') || url.startsWith('node:internal/async_hooks')) return 'node task queues / async hooks';
  if (url.startsWith('node:net') || url.startsWith('node:internal/stream_base')) return 'node net';
  if (url.startsWith('node:')) return 'node (other internals)';
  if (url === '') return 'native (builtins, bindings)';
  return 'other';
}

/** Sample i with its own time: timeDeltas[i+1] is the time spent in sample i; its timestamp is startTime + sum of deltas up to i. */
function* samplesIn(profile: CpuProfile, o: SummaryOptions): Generator<{ node: ProfileNode; ms: number }> {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  let t = profile.startTime ?? 0;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i] ?? 0;
    if (o.fromUs !== undefined && t < o.fromUs) continue;
    if (o.toUs !== undefined && t >= o.toUs) continue;
    const node = byId.get(profile.samples[i]!);
    if (!node) continue;
    if (o.excludeIdle && node.callFrame.functionName === '(idle)') continue;
    yield { node, ms: (profile.timeDeltas[i + 1] ?? 0) / 1000 };
  }
}

function ranked(totals: Map<string, number>, total: number): SelfTime[] {
  return [...totals.entries()].map(([name, ms]) => ({ name, ms, percent: total > 0 ? (100 * ms) / total : 0 })).sort((a, b) => b.ms - a.ms);
}

/** Self time per key (function, file or area): each sample's time delta is billed to the sampled node. */
export function selfTimes(profile: CpuProfile, by: 'function' | 'file' | 'area', o: SummaryOptions = {}): SelfTime[] {
  const totals = new Map<string, number>();
  let total = 0;
  for (const { node, ms } of samplesIn(profile, o)) {
    const f = node.callFrame;
    const key = by === 'file' ? shortUrl(f.url) : by === 'area' ? areaOf(f) : functionKey(f);
    totals.set(key, (totals.get(key) ?? 0) + ms);
    total += ms;
  }
  return ranked(totals, total);
}

/** Milliseconds sampled in the window (busy only, with excludeIdle). */
export function sampledMs(profile: CpuProfile, o: SummaryOptions = {}): number {
  let total = 0;
  for (const { ms } of samplesIn(profile, o)) total += ms;
  return total;
}

/**
 * Inclusive time per function: a sample counts once for every distinct function on its stack
 * (recursion is not double counted). `filter` keeps the keys worth listing (e.g. only src/).
 */
export function inclusiveTimes(profile: CpuProfile, o: SummaryOptions = {}, filter: (key: string) => boolean = () => true): SelfTime[] {
  const parent = new Map<number, ProfileNode>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n);
  const totals = new Map<string, number>();
  let total = 0;
  for (const { node, ms } of samplesIn(profile, o)) {
    total += ms;
    const seen = new Set<string>();
    for (let n: ProfileNode | undefined = node; n; n = parent.get(n.id)) {
      const key = functionKey(n.callFrame);
      if (seen.has(key) || !filter(key)) continue;
      seen.add(key);
      totals.set(key, (totals.get(key) ?? 0) + ms);
    }
  }
  return ranked(totals, total);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const file = process.argv[2];
  if (!file) {
    process.stderr.write('usage: node --import tsx bench/profile-summary.ts <file.cpuprofile> [top]\n');
    process.exit(2);
  }
  const top = Number(process.argv[3] ?? 25);
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  resolveTsxLines(profile);
  for (const by of ['area', 'function', 'file'] as const) {
    process.stdout.write(`\nself time by ${by}, idle excluded (${file}):\n`);
    for (const r of selfTimes(profile, by, { excludeIdle: true }).slice(0, top)) {
      process.stdout.write(`${r.percent.toFixed(1).padStart(6)}%  ${r.ms.toFixed(0).padStart(7)} ms  ${r.name}\n`);
    }
  }
}
