#!/usr/bin/env node
// `npm run build` (also `prepare`, so `npm ci` and `npm pack` build): compiles src/ into
//   dist/esm  tsc (tsconfig.build.json): ES modules, .d.ts, declaration maps, source maps
//   dist/cjs  esbuild, file by file from dist/esm: CommonJS with source maps chained back to src/,
//             plus copies of the .d.ts files so `require` consumers get the same types
// and finally writes dist/.build-stamp (scripts/ensure-built.mjs compares sources against it).
//
// Entry scripts that use top-level await (process/main.ts, process/serve-main.ts) cannot be
// CommonJS: dist/cjs gets a stub for each that imports its ES module build, and the build fails if
// any CommonJS module would require() one. In CommonJS output import.meta is empty, so
// import.meta.url / .filename / .dirname are replaced by values derived from __filename.
import { spawnSync } from 'node:child_process';
import { copyFile, mkdir, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const require = createRequire(import.meta.url);
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const DIST = path.join(ROOT, 'dist');
export const STAMP = path.join(DIST, '.build-stamp');
const ESM = path.join(DIST, 'esm');
const CJS = path.join(DIST, 'cjs');

async function walk(dir) {
  const out = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await walk(p)));
    else out.push(p);
  }
  return out;
}

function tsc() {
  const bin = require.resolve('typescript/bin/tsc');
  const r = spawnSync(process.execPath, [bin, '-p', path.join(ROOT, 'tsconfig.build.json')], { cwd: ROOT, stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`tsc -p tsconfig.build.json failed (exit ${r.status ?? r.signal})`);
}

// The CommonJS stand-in for `import.meta.url`. Code may also test `typeof __filename` itself.
const IMPORT_META_URL = '__quorumkv_import_meta_url';
// The directive comes first so the module stays strict (esbuild's own "use strict" follows the banner).
const CJS_BANNER = `"use strict"; var ${IMPORT_META_URL} = require("node:url").pathToFileURL(__filename).href;`;

/** Files esbuild refuses to turn into CommonJS because of top-level await, relative to dist/esm. */
async function topLevelAwaitFiles(esbuild, files) {
  const skipped = [];
  await Promise.all(
    files.map(async (file) => {
      try {
        await esbuild.transform(await readFile(file, 'utf8'), { format: 'cjs', platform: 'node', target: 'node20', logLevel: 'silent' });
      } catch (err) {
        const messages = err.errors ?? [];
        if (messages.length > 0 && messages.every((m) => /top-level await/i.test(m.text))) skipped.push(path.relative(ESM, file));
        else throw err;
      }
    }),
  );
  return skipped.sort();
}

/** Every relative require() in dist/cjs must name a file that exists there. */
async function checkCjsRequires(cjsFiles, skipped) {
  const problems = [];
  for (const file of cjsFiles) {
    const code = await readFile(file, 'utf8');
    for (const m of code.matchAll(/\brequire\(\s*"(\.{1,2}\/[^"]+)"\s*\)/g)) {
      const target = path.resolve(path.dirname(file), m[1]);
      const rel = path.relative(CJS, target);
      if (skipped.includes(rel)) problems.push(`${path.relative(ROOT, file)} requires ${m[1]}, an ES-module-only entry script (top-level await)`);
      else if (!cjsFiles.includes(target)) problems.push(`${path.relative(ROOT, file)} requires ${m[1]}, which is not in dist/cjs`);
    }
  }
  if (problems.length > 0) throw new Error(`CommonJS build is inconsistent:\n  ${problems.join('\n  ')}`);
}

export async function build({ quiet = false } = {}) {
  const started = new Date();
  const t0 = performance.now();
  const log = quiet ? () => {} : (s) => process.stderr.write(`build: ${s}\n`);
  const esbuild = await import('esbuild');

  await rm(DIST, { recursive: true, force: true });
  tsc();
  const esmAll = await walk(ESM);
  const esmJs = esmAll.filter((f) => f.endsWith('.js'));
  log(`tsc: ${esmJs.length} modules in dist/esm (${Math.round(performance.now() - t0)} ms)`);

  const skipped = await topLevelAwaitFiles(esbuild, esmJs);
  const cjsSources = esmJs.filter((f) => !skipped.includes(path.relative(ESM, f)));
  // Only modules that read import.meta.url get the stand-in (keeps the rest free of it).
  const usesUrl = new Set();
  for (const f of cjsSources) if ((await readFile(f, 'utf8')).includes('import.meta.url')) usesUrl.add(f);
  const common = {
    outbase: ESM,
    outdir: CJS,
    bundle: false,
    format: 'cjs',
    platform: 'node',
    target: 'node20',
    sourcemap: true, // reads the //# sourceMappingURL of each input, so the maps point at src/*.ts
    define: { 'import.meta.filename': '__filename', 'import.meta.dirname': '__dirname' },
    logLevel: 'warning',
  };
  await Promise.all([
    esbuild.build({ ...common, entryPoints: cjsSources.filter((f) => !usesUrl.has(f)) }),
    usesUrl.size > 0 &&
      esbuild.build({ ...common, entryPoints: [...usesUrl], define: { ...common.define, 'import.meta.url': IMPORT_META_URL }, banner: { js: CJS_BANNER } }),
  ]);

  // Types: the same declarations serve both formats; dist/cjs/package.json makes them CommonJS.
  const declarations = esmAll.filter((f) => /\.d\.ts(\.map)?$/.test(f));
  await Promise.all(
    declarations.map(async (f) => {
      const to = path.join(CJS, path.relative(ESM, f));
      await mkdir(path.dirname(to), { recursive: true });
      await copyFile(f, to);
    }),
  );
  await writeFile(path.join(CJS, 'package.json'), `${JSON.stringify({ type: 'commonjs' }, null, 2)}\n`);
  // An entry script run by path from dist/cjs (e.g. a launcher that spawns its sibling main.js)
  // gets a stub that loads the ES module build.
  for (const rel of skipped) {
    const stub = path.join(CJS, rel);
    const target = path.relative(path.dirname(stub), path.join(ESM, rel)).split(path.sep).join('/');
    await mkdir(path.dirname(stub), { recursive: true });
    await writeFile(
      stub,
      `"use strict";\n// ES-module-only entry script (top-level await): the CommonJS build runs the ES module build.\nimport(${JSON.stringify(target)});\n`,
    );
  }

  const cjsJs = (await walk(CJS)).filter((f) => f.endsWith('.js'));
  await checkCjsRequires(cjsJs, skipped);
  log(`esbuild: ${cjsJs.length} modules in dist/cjs; ES-module-only (top-level await): ${skipped.join(', ') || 'none'}`);

  // Stamped with the build's start time: a source saved while the build ran still counts as newer.
  await writeFile(STAMP, `${started.toISOString()}\n`);
  await utimes(STAMP, started, started);
  log(`done in ${Math.round(performance.now() - t0)} ms`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  build().catch((err) => {
    process.stderr.write(`build failed: ${err.message}\n`);
    process.exit(1);
  });
}
