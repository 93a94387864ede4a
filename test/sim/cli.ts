// npm run sim -- --seeds 5000 [--start 1 | --from 1] [--nodes 3|5] [--ticks 400] [--sabotage NAME] [--profile JSON]
// npm run sim -- --seed 42 [--trace]      replay one seed exactly (with the same options)

import type { Sabotage } from './cluster.js';
import { type RunOptions, replayArgs, runSeed } from './run.js';

const SABOTAGES: readonly Sabotage[] = ['forget-votes', 'early-reads', 'rebuilding-votes', 'frozen-lease'];

function usage(message: string): never {
  process.stderr.write(
    `${message}\nusage: npm run sim -- --seeds N [--start S | --from S] [--nodes 3|5] [--ticks T] [--sabotage ${SABOTAGES.join('|')}] [--profile JSON]\n` +
      `       npm run sim -- --seed N [--trace] [--nodes 3|5] [--ticks T] [--sabotage NAME] [--profile JSON]\n` +
      `  --profile overrides fault-profile fields, e.g. --profile '{"freezeRate":0.03,"storage":"file"}' (see FaultProfile in test/sim/cluster.ts)\n`,
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
  if (!['seeds', 'seed', 'start', 'from', 'trace', 'nodes', 'ticks', 'sabotage', 'profile'].includes(key)) usage(`unknown option --${key}`);
}
const options: RunOptions = {};
const nodes = intArg(args, 'nodes');
if (nodes !== undefined) {
  if (nodes !== 3 && nodes !== 5) usage('--nodes must be 3 or 5');
  options.nodes = nodes;
}
const ticks = intArg(args, 'ticks');
if (ticks !== undefined) options.faultTicks = ticks;
if (args.sabotage !== undefined) {
  if (!SABOTAGES.includes(args.sabotage as Sabotage)) usage(`--sabotage must be one of ${SABOTAGES.join(', ')}`);
  options.sabotage = args.sabotage as Sabotage;
}
if (args.profile !== undefined) {
  try {
    const profile: unknown = JSON.parse(String(args.profile));
    if (!profile || typeof profile !== 'object' || Array.isArray(profile)) throw new Error('not an object');
    options.profile = profile as RunOptions['profile'];
  } catch (err) {
    usage(`--profile needs a JSON object of FaultProfile fields: ${(err as Error).message}`);
  }
}
const extra = replayArgs(options);

const single = intArg(args, 'seed');
if (single !== undefined) {
  const result = await runSeed(single, { ...options, trace: args.trace === true });
  if (args.trace === true) process.stdout.write(`${result.trace.join('\n')}\n`);
  process.stdout.write(
    `seed ${single}: ${result.ok ? 'ok' : 'FAILED'} after ${result.ticks} ticks (${result.nodes} nodes) trace ${result.traceHash}\n` +
      `stats ${JSON.stringify(result.stats)}\n`,
  );
  if (!result.ok) process.stdout.write(`${result.error}\n`);
  process.exit(result.ok ? 0 : 1);
}

const count = intArg(args, 'seeds') ?? usage('give --seeds N or --seed N');
const start = intArg(args, 'start') ?? intArg(args, 'from') ?? 1;
const failed: number[] = [];
const byChecker = new Map<string, number>();
const began = performance.now();
let lastPrint = began;
let events = 0;
for (let seed = start; seed < start + count; seed++) {
  const result = await runSeed(seed, options);
  events += result.stats.events;
  if (!result.ok) {
    failed.push(seed);
    const checker = result.violations[0]?.checker ?? '?';
    byChecker.set(checker, (byChecker.get(checker) ?? 0) + 1);
    process.stdout.write(`\nFAIL seed ${seed}: ${result.error!.split('\n')[0]}\n`);
  }
  const now = performance.now();
  if (now - lastPrint > 5000 || seed === start + count - 1) {
    lastPrint = now;
    const done = seed - start + 1;
    process.stdout.write(`\r${done}/${count} seeds, ${failed.length} failed, ${(done / ((now - began) / 1000)).toFixed(2)} seeds/s   `);
  }
}
const seconds = (performance.now() - began) / 1000;
const checkers = [...byChecker].map(([c, n]) => `${c} ${n}`).join(', ');
process.stdout.write(
  `\n${count} seeds (${start}..${start + count - 1})${extra} in ${seconds.toFixed(1)} s: ${(count / seconds).toFixed(2)} seeds/s ` +
    `(${Math.round(events / seconds)} events/s), ${failed.length} failed${failed.length ? ` (${checkers}): ${failed.join(' ')}` : ''}\n`,
);
if (failed.length) process.stdout.write(`replay one: npm run sim -- --seed ${failed[0]}${extra} --trace\n`);
process.exit(failed.length ? 1 : 0);
