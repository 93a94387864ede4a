// The dependency rule between layers (docs/ARCHITECTURE.md), checked on every import in src/:
// static imports, re-exports and dynamic import(). A new arrow fails here with the file and line.
import test from 'ava';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

/** api/'s contract files import nothing; lower layers may use them as plain vocabulary. */
const API_CONTRACT = ['api/command.ts', 'api/errors.ts', 'api/types.ts'];

/** Per layer: which other layers (or single files) it may import. '*' = anything. */
const ALLOWED: Record<string, readonly string[]> = {
  raft: [],
  api: [],
  storage: ['raft', 'api/command.ts'],
  transport: ['raft'],
  runtime: ['raft', 'storage', 'transport', ...API_CONTRACT],
  server: ['runtime', 'api'],
  process: ['*'],
  client: ['api'],
  cli: ['client', 'api'],
  // The drill drives real node processes through the SDK; it reads the one defaults table.
  drill: ['client', 'api', 'process'],
  '.': ['client'],
};

/** Packages (and node: builtins) a layer may import; absent = any. The core is pure. */
const ALLOWED_PACKAGES: Record<string, (spec: string) => boolean> = {
  raft: () => false,
  api: (s) => s.startsWith('node:') || s.startsWith('@grpc/'),
  client: (s) => s.startsWith('node:') || s.startsWith('@grpc/'),
  cli: (s) => s.startsWith('node:') || s === 'commander',
  drill: (s) => s.startsWith('node:') || s === 'pure-rand',
};

interface ImportEdge {
  file: string; // relative to src/, e.g. 'client/kv-client.ts'
  line: number;
  spec: string;
  target?: string; // relative to src/, for relative specifiers
}

function sourceFiles(dir = SRC): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) => {
    const full = path.join(dir, d.name);
    if (d.isDirectory()) return sourceFiles(full);
    return d.name.endsWith('.ts') ? [path.relative(SRC, full).split(path.sep).join('/')] : [];
  });
}

const IMPORT_RE = /(?:^|[^\w.])(?:import|export)\s+(?:type\s+)?(?:[^'";]*?\sfrom\s+)?['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

export function importsOf(file: string, text: string): ImportEdge[] {
  const edges: ImportEdge[] = [];
  // Comments would give false edges; strip them, keeping line breaks so line numbers stay right.
  const code = text.replace(/\/\*[\s\S]*?\*\//g, (c) => c.replace(/[^\n]/g, ' ')).replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
  for (const m of code.matchAll(IMPORT_RE)) {
    const spec = (m[1] ?? m[2])!;
    const line = code.slice(0, m.index).split('\n').length;
    if (spec.startsWith('.')) {
      const target = path.posix.normalize(path.posix.join(path.posix.dirname(file), spec)).replace(/\.js$/, '.ts');
      edges.push({ file, line, spec, target });
    } else {
      edges.push({ file, line, spec });
    }
  }
  return edges;
}

function layerOf(file: string): string {
  return file.includes('/') ? file.slice(0, file.indexOf('/')) : '.';
}

function allowedEdge(from: string, target: string): boolean {
  const layer = layerOf(from);
  const to = layerOf(target);
  if (layer === to) return true;
  const rules = ALLOWED[layer];
  if (!rules) return false;
  return rules.includes('*') || rules.includes(to) || rules.includes(target);
}

const FILES = sourceFiles();
const EDGES = FILES.flatMap((f) => importsOf(f, readFileSync(path.join(SRC, f), 'utf8')));

test('every src/ folder is a known layer', (t) => {
  const unknown = [...new Set(FILES.map(layerOf))].filter((l) => !(l in ALLOWED));
  t.deepEqual(unknown, []);
});

test('imports between layers follow the dependency rule', (t) => {
  const broken = EDGES.filter((e) => e.target !== undefined && !allowedEdge(e.file, e.target)).map(
    (e) => `src/${e.file}:${e.line} imports ${e.spec} (${layerOf(e.file)} -> ${layerOf(e.target!)} is not allowed)`,
  );
  t.deepEqual(broken, []);
  t.true(EDGES.length > 100, 'the import scanner found the imports');
});

test('package imports per layer: the Raft core imports nothing, the SDK no server packages', (t) => {
  const broken = EDGES.filter((e) => e.target === undefined)
    .filter((e) => {
      const ok = ALLOWED_PACKAGES[layerOf(e.file)];
      return ok !== undefined && !ok(e.spec);
    })
    .map((e) => `src/${e.file}:${e.line} imports ${e.spec}`);
  t.deepEqual(broken, []);
});

test("the SDK's import closure holds only client/ and api/ code and no LevelDB, pino or server package", (t) => {
  const byFile = new Map<string, ImportEdge[]>();
  for (const e of EDGES) byFile.set(e.file, [...(byFile.get(e.file) ?? []), e]);
  const seen = new Set<string>();
  const packages = new Set<string>();
  const stack = ['index.ts'];
  while (stack.length > 0) {
    const f = stack.pop()!;
    if (seen.has(f)) continue;
    seen.add(f);
    for (const e of byFile.get(f) ?? []) {
      if (e.target) stack.push(e.target);
      else packages.add(e.spec);
    }
  }
  const foreign = [...seen].filter((f) => f !== 'index.ts' && !f.startsWith('client/') && !f.startsWith('api/'));
  t.deepEqual(foreign, []);
  const serverPackages = [...packages].filter((p) => /^(level|classic-level|pino|msgpackr)/.test(p));
  t.deepEqual(serverPackages, []);
  t.true(seen.size > 5);
});

test('the scanner sees static, type-only, re-export and dynamic imports, and skips comments', (t) => {
  const text = [
    "import { a } from './a.js';",
    "import type { B } from '../b/b.js';",
    "export * from './c.js';",
    "export { d } from './d.js';",
    "const e = await import('../e/e.js');",
    "// import { no } from './commented.js';",
    "import 'node:fs';",
  ].join('\n');
  t.deepEqual(
    importsOf('x/file.ts', text).map((e) => e.target ?? e.spec),
    ['x/a.ts', 'b/b.ts', 'x/c.ts', 'x/d.ts', 'e/e.ts', 'node:fs'],
  );
  t.false(allowedEdge('raft/raft.ts', 'storage/codec.ts'));
  t.true(allowedEdge('storage/codec.ts', 'api/command.ts'));
  t.false(allowedEdge('storage/codec.ts', 'api/kv-proto.ts'));
  t.false(allowedEdge('client/kv-client.ts', 'runtime/raft-node.ts'));
});
