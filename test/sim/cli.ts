// npm run sim -- --seeds 5000 [--start 1] [--nodes 3|5] [--ticks 400]
// npm run sim -- --seed 42 [--trace]      replay one seed exactly

import { runSeed, type RunOptions } from './run.js';

function usage(message: string): never {
  process.stderr.write(
    `${message}\nusage: npm run sim -- --seeds N [--start S] [--nodes 3|5] [--ticks T]\n` +
      `       npm run sim -- --seed N [--trace] [--nodes 3|5] [--ticks T]\n`,
  );
  process.exit(2);
}

function parseArgs(argv: string[]): Record<string, string | true> {
  const out: Record<string, string | true> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) usage(`unexpected argument '${arg}'`);
    const key = arg.slice(2);
    const next = argv[i + 1];
    if (next !== undefined && !next.startsWith('--')) {
      out[key] = next;
      i++;
    } else out[key] = true;
  }
  return out;
}

function intArg(args: Record<string, string | true>, key: string): number | undefined {
  const v = args[key];
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v === true || !Number.isInteger(n) || n < 0) usage(`--${key} needs a non-negative integer, got '${v}'`);
  return n;
}

const args = parseArgs(process.argv.slice(2));
for (const key of Object.keys(args)) {
  if (!['seeds', 'seed', 'start', 'trace', 'nodes', 'ticks'].includes(key)) usage(`unknown option --${key}`);
}
const options: RunOptions = {};
const nodes = intArg(args, 'nodes');
if (nodes !== undefined) {
  if (nodes !== 3 && nodes !== 5) usage('--nodes must be 3 or 5');
  options.nodes = nodes;
}
const ticks = intArg(args, 'ticks');
if (ticks !== undefined) options.faultTicks = ticks;

const single = intArg(args, 'seed');
if (single !== undefined) {
  const result = runSeed(single, { ...options, trace: args.trace === true });
  if (args.trace === true) process.stdout.write(result.trace.join('\n') + '\n');
  process.stdout.write(
    `seed ${single}: ${result.ok ? 'ok' : 'FAILED'} after ${result.ticks} ticks (${result.nodes} nodes) trace ${result.traceHash}\n` +
      `stats ${JSON.stringify(result.stats)}\n`,
  );
  if (!result.ok) process.stdout.write(`${result.error}\n`);
  process.exit(result.ok ? 0 : 1);
}

const count = intArg(args, 'seeds') ?? usage('give --seeds N or --seed N');
const start = intArg(args, 'start') ?? 1;
const failed: number[] = [];
const began = performance.now();
let lastPrint = began;
for (let seed = start; seed < start + count; seed++) {
  const result = runSeed(seed, options);
  if (!result.ok) {
    failed.push(seed);
    const first = result.error!.split('\n')[0];
    process.stdout.write(`\nFAIL seed ${seed}: ${first}\n`);
  }
  const now = performance.now();
  if (now - lastPrint > 2000 || seed === start + count - 1) {
    lastPrint = now;
    const done = seed - start + 1;
    process.stdout.write(`\r${done}/${count} seeds, ${failed.length} failed, ${(done / ((now - began) / 1000)).toFixed(1)} seeds/s   `);
  }
}
const seconds = (performance.now() - began) / 1000;
process.stdout.write(
  `\n${count} seeds (${start}..${start + count - 1}) in ${seconds.toFixed(1)} s: ${(count / seconds).toFixed(1)} seeds/s, ` +
    `${failed.length} failed${failed.length ? `: ${failed.join(' ')}` : ''}\n`,
);
if (failed.length) process.stdout.write(`replay one: npm run sim -- --seed ${failed[0]} --trace\n`);
process.exit(failed.length ? 1 : 0);
