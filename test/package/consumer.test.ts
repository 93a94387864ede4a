// The package as a consumer gets it: `npm pack` the built package, install the tarball into a fresh
// project outside the repository (production dependencies only, from the npm cache that `npm ci`
// filled), then use it there with plain node (ES module and CommonJS), with tsc under two module
// resolution modes, and through the installed `quorumkv` bin — against a real 3-process cluster.
import test from 'ava';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ProcessCluster } from '../integration/harness.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const TSC = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
const TYPE_ROOTS = path.join(ROOT, 'node_modules', '@types');

interface RootPackageJson {
  version: string;
  overrides?: Record<string, string>;
}

interface PackResult {
  filename: string;
  files: { path: string }[];
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Children run plain node: no tsx or other loader inherited from the test worker. */
function childEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  return env;
}

function run(file: string, args: string[], cwd: string, timeoutMs = 60_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(file, args, { cwd, env: childEnv(), timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr: err && typeof err.code !== 'number' ? `${stderr}\n${err.message}` : stderr });
    });
  });
}

async function mustRun(file: string, args: string[], cwd: string, timeoutMs?: number): Promise<Run> {
  const r = await run(file, args, cwd, timeoutMs);
  if (r.code !== 0) throw new Error(`${path.basename(file)} ${args.join(' ')} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
  return r;
}

const node = (args: string[], cwd: string): Promise<Run> => run(process.execPath, args, cwd);

let tmp = '';
let app = '';
let cluster: ProcessCluster | undefined;
let endpoints = '';
let pack: PackResult;
let version = '';

test.before(async () => {
  const rootPkg = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8')) as RootPackageJson;
  version = rootPkg.version;
  tmp = await mkdtemp(path.join(os.tmpdir(), 'quorumkv-pkg-'));
  app = path.join(tmp, 'app');
  const packDir = path.join(tmp, 'pack');
  await mkdir(app);
  await mkdir(packDir);

  const startCluster = (async () => {
    cluster = await ProcessCluster.start({ size: 3 });
    await cluster.waitForLeader();
    endpoints = [...cluster.nodes.values()].map((h) => h.clientAddress).join(',');
  })();
  // Whichever fails first, the other must settle before after.always cleans up.
  const install = (async () => {
    // Build only if dist/ is stale (npm test has already done this); pack then skips `prepare`.
    await mustRun(process.execPath, [path.join(ROOT, 'scripts', 'ensure-built.mjs')], ROOT, 120_000);
    const packed = await mustRun('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', packDir], ROOT);
    pack = (JSON.parse(packed.stdout) as PackResult[])[0]!;
    // A consumer project; it pins what the repository's lockfile pins (see package.json overrides).
    await writeFile(
      path.join(app, 'package.json'),
      JSON.stringify({ name: 'quorumkv-consumer', private: true, type: 'module', overrides: rootPkg.overrides ?? {} }, null, 2),
    );
    await mustRun(
      'npm',
      ['install', path.join(packDir, pack.filename), '--prefer-offline', '--no-audit', '--no-fund', '--no-package-lock', '--loglevel=error'],
      app,
      180_000,
    );
  })();
  const [a, b] = await Promise.allSettled([startCluster, install]);
  for (const r of [a, b]) if (r.status === 'rejected') throw r.reason;
});

test.after.always(async () => {
  await cluster?.close();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

test.serial('the tarball holds the built package (ESM, CommonJS, types, proto, LICENSE) and no sources or tests', (t) => {
  const files = pack.files.map((f) => f.path);
  for (const want of [
    'LICENSE',
    'README.md',
    'package.json',
    'bin/quorumkv.js',
    'proto/kv.proto',
    'proto/raft.proto',
    'dist/esm/index.js',
    'dist/esm/index.d.ts',
    'dist/cjs/index.js',
    'dist/cjs/index.d.ts',
    'dist/cjs/package.json',
    'dist/esm/process/index.js',
    'dist/cjs/process/index.js',
    'dist/esm/process/main.js',
  ]) {
    t.true(files.includes(want), `tarball lacks ${want}`);
  }
  const unwanted = files.filter((f) => /^(src|test|bench|\.ci|scripts|node_modules)\//.test(f) || f.startsWith('tsconfig') || f === 'dist/.build-stamp');
  t.deepEqual(unwanted, []);
});

test.serial('only production dependencies are installed beside it', (t) => {
  for (const dev of ['tsx', 'typescript', 'esbuild', 'ava']) t.false(existsSync(path.join(app, 'node_modules', dev)), `${dev} was installed`);
  t.true(existsSync(path.join(app, 'node_modules', 'quorumkv', 'dist', 'esm', 'index.js')));
});

test.serial('plain node, ES module: import { connect } from "quorumkv" puts and gets against the cluster', async (t) => {
  await writeFile(
    path.join(app, 'esm.mjs'),
    `import { connect } from 'quorumkv';
import * as server from 'quorumkv/server';
const kv = await connect({ endpoints: process.argv[2].split(','), deadlineMs: 10000 });
try {
  await kv.put('pkg-esm', 'from an ES module');
  const item = await kv.get('pkg-esm');
  console.log(JSON.stringify({ value: item?.text(), resolved: import.meta.resolve('quorumkv'), server: typeof server.runNodeProcess }));
} finally {
  await kv.close();
}
`,
  );
  const r = await node(['esm.mjs', endpoints], app);
  t.is(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { value: string; resolved: string; server: string };
  t.is(out.value, 'from an ES module');
  t.true(out.resolved.endsWith('/node_modules/quorumkv/dist/esm/index.js'), out.resolved);
  t.is(out.server, 'function');
});

test.serial('plain node, CommonJS: require("quorumkv") puts and gets against the cluster', async (t) => {
  await writeFile(
    path.join(app, 'cjs.cjs'),
    `'use strict';
const { connect } = require('quorumkv');
const server = require('quorumkv/server');
const { version } = require('quorumkv/package.json');
async function main() {
  const kv = await connect({ endpoints: process.argv[2].split(','), deadlineMs: 10000 });
  try {
    await kv.put('pkg-cjs', 'from CommonJS');
    const item = await kv.get('pkg-cjs');
    console.log(JSON.stringify({ value: item && item.text(), resolved: require.resolve('quorumkv'), server: typeof server.runNodeProcess, version }));
  } finally {
    await kv.close();
  }
}
main().catch((err) => {
  console.error(err);
  process.exit(1);
});
`,
  );
  const r = await node(['cjs.cjs', endpoints], app);
  t.is(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { value: string; resolved: string; server: string; version: string };
  t.is(out.value, 'from CommonJS');
  t.true(out.resolved.endsWith(`${path.sep}node_modules${path.sep}quorumkv${path.sep}dist${path.sep}cjs${path.sep}index.js`), out.resolved);
  t.is(out.server, 'function');
  t.is(out.version, version);
});

const USES_SDK = `import { connect, KvItem, NotLeaderError } from 'quorumkv';
import type { ConnectOptions, ReadOptions, WriteResult } from 'quorumkv';
import { runNodeProcess } from 'quorumkv/server';

export type RunNode = typeof runNodeProcess;

export async function roundTrip(endpoints: string[]): Promise<string | undefined> {
  const options: ConnectOptions = { endpoints, deadlineMs: 5000 };
  const kv = await connect(options);
  try {
    const written: WriteResult = await kv.put('k', new Uint8Array([1, 2]), { durability: 'async' });
    const read: ReadOptions = { consistency: 'follower', minIndex: written.index };
    const item: KvItem | undefined = await kv.get('k', read);
    return item?.text();
  } catch (err) {
    if (err instanceof NotLeaderError) return undefined;
    throw err;
  } finally {
    await kv.close();
  }
}
`;

/** skipLibCheck false (default) also checks the shipped .d.ts files themselves. */
async function tsconfig(name: string, module: string, moduleResolution: string, files: string[], skipLibCheck = false): Promise<string> {
  const file = path.join(app, name);
  const compilerOptions = { strict: true, target: 'ES2022', module, moduleResolution, noEmit: true, skipLibCheck, types: ['node'], typeRoots: [TYPE_ROOTS] };
  await writeFile(file, JSON.stringify({ compilerOptions, files }, null, 2));
  return file;
}

test.serial('strict TypeScript compiles against the shipped types: Node16 (ESM and CommonJS) and Bundler resolution', async (t) => {
  await writeFile(path.join(app, 'uses-sdk.ts'), USES_SDK);
  // A .cts file is CommonJS under Node16: it resolves the "require" condition, i.e. dist/cjs's types.
  await writeFile(path.join(app, 'uses-sdk-cjs.cts'), USES_SDK);
  const node16 = await tsconfig('tsconfig.node16.json', 'Node16', 'Node16', ['uses-sdk.ts', 'uses-sdk-cjs.cts']);
  const bundler = await tsconfig('tsconfig.bundler.json', 'ESNext', 'Bundler', ['uses-sdk.ts']);
  for (const config of [node16, bundler]) {
    const r = await node([TSC, '-p', config, '--listFiles'], app);
    t.is(r.code, 0, `${path.basename(config)}:\n${r.stdout}${r.stderr}`);
    t.true(r.stdout.includes('/node_modules/quorumkv/dist/esm/index.d.ts'), `${path.basename(config)} did not use dist/esm types`);
    if (config === node16) t.true(r.stdout.includes('/node_modules/quorumkv/dist/cjs/index.d.ts'), 'the .cts file did not use dist/cjs types');
  }
});

test.serial('a wrong option value fails to compile, at the option and naming its type', async (t) => {
  const badLine = "await kv.get('k', { consistency: 'bogus' });";
  await writeFile(
    path.join(app, 'wrong-option.ts'),
    `import { connect } from 'quorumkv';

const kv = await connect({ endpoints: ['127.0.0.1:1'] });
${badLine}
`,
  );
  const config = await tsconfig('tsconfig.wrong.json', 'Node16', 'Node16', ['wrong-option.ts'], true);
  const r = await node([TSC, '-p', config], app);
  t.not(r.code, 0, 'tsc accepted consistency: "bogus"');
  const errors = r.stdout.split('\n').filter((l) => l.includes('error TS'));
  t.is(errors.length, 1, r.stdout);
  // tsc reports the position of the offending property (line 4, column of `consistency`).
  const column = badLine.indexOf('consistency') + 1;
  t.true(
    (errors[0] ?? '').startsWith(`wrong-option.ts(4,${column}): error TS2322: Type '"bogus"' is not assignable to type 'ReadConsistency | undefined'`),
    r.stdout,
  );
});

test.serial('the installed bin runs the compiled CLI: --version, then put and get against the cluster', async (t) => {
  const bin = path.join(app, 'node_modules', '.bin', 'quorumkv');
  const v = await run(bin, ['--version'], app);
  t.is(v.code, 0, v.stderr);
  t.is(v.stdout.trim(), version);
  const p = await run(bin, ['put', 'pkg-bin', 'from the bin', '--endpoints', endpoints], app);
  t.is(p.code, 0, p.stderr);
  const g = await run(bin, ['get', 'pkg-bin', '--endpoints', endpoints], app);
  t.is(g.code, 0, g.stderr);
  t.is(g.stdout.trim(), 'from the bin');
});
