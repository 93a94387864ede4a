// The drill's command line: `quorumkv drill [--duration 60s] [--seed N] ...` and
// `quorumkv drill --check FILE`. Its own option table (node:util), so that the CLI's parser can
// change without touching the drill: the CLI only dispatches `drill` to drillMain.
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { checkHistory } from './checks.js';
import { DRILL_DEFAULTS, formatReport, runDrill } from './drill.js';
import { FAULT_KINDS, parseSavedHistory } from './history.js';
import type { FaultKind } from './history.js';

export const DRILL_EXIT = Object.freeze({ ok: 0, violation: 1, usage: 2, failed: 4 });

export class DrillUsageError extends Error {
  override name = 'DrillUsageError';
}

export interface DrillIo {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown };
}

const OPTIONS = {
  duration: { type: 'string' },
  seed: { type: 'string' },
  clients: { type: 'string' },
  keys: { type: 'string' },
  'think-ms': { type: 'string' },
  faults: { type: 'string' },
  endpoints: { type: 'string' },
  out: { type: 'string' },
  'log-dir': { type: 'string' },
  check: { type: 'string' },
  'self-test': { type: 'boolean' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const DRILL_USAGE = `usage: quorumkv drill [options]      (npm run drill -- [options])

Starts a 3-node cluster of real processes on loopback (or drives --endpoints), runs a concurrent
SDK workload, injects a seeded schedule of faults, checks the history, reports RTO and RPO.

  --duration D       how long: 60s (default), 10m, 90000ms
  --seed N           fault schedule and workload seed (default: random, printed)
  --clients N        concurrent SDK clients (default ${DRILL_DEFAULTS.clients})
  --keys N           key space (default ${DRILL_DEFAULTS.keys}; small so operations contend)
  --think-ms N       pause between one client's operations (default ${DRILL_DEFAULTS.thinkMs})
  --faults a,b       only these fault kinds: ${FAULT_KINDS.join(', ')}
  --endpoints a,b,c  drive a running cluster instead (only switchovers are injected)
  --out DIR          where a failing history is saved (default .)
  --log-dir DIR      keep each node's output (log level info) in DIR/<id>.log
  --check FILE       re-check a saved history and exit
  --self-test        also check a copy of the history with injected stale reads: fails unless flagged
  --json             the report as JSON on stdout

exit codes: 0 all checks passed, 1 a violation (history saved), 2 usage, 4 the drill could not run`;

export function parseDuration(raw: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(raw.trim());
  if (!m) throw new DrillUsageError(`--duration must look like 60s, 10m or 90000ms, got "${raw}"`);
  const unit = m[2] ?? 's';
  const ms = Number(m[1]) * { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }[unit]!;
  if (ms < 10_000 || ms > 24 * 3_600_000) throw new DrillUsageError(`--duration must be between 10s and 24h, got "${raw}"`);
  return Math.round(ms);
}

function intOpt(raw: string | undefined, name: string, fallback: number, min: number, max: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(n) || n < min || n > max)
    throw new DrillUsageError(`--${name} must be an integer in ${min}..${max}, got "${raw}"`);
  return n;
}

function faultsOpt(raw: string | undefined): FaultKind[] | undefined {
  if (raw === undefined) return undefined;
  const kinds = raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const k of kinds)
    if (!(FAULT_KINDS as readonly string[]).includes(k)) throw new DrillUsageError(`unknown fault "${k}" (expected ${FAULT_KINDS.join(', ')})`);
  if (kinds.length === 0) throw new DrillUsageError('--faults needs at least one fault kind');
  return kinds as FaultKind[];
}

/** Run `quorumkv drill` with its arguments (after the word `drill`); resolves with the exit code. */
export async function drillMain(argv: string[], io: DrillIo): Promise<number> {
  let values: ReturnType<typeof parseArgs<{ args: string[]; options: typeof OPTIONS; strict: true }>>['values'];
  try {
    values = parseArgs({ args: argv, options: OPTIONS, strict: true }).values;
  } catch (e) {
    io.stderr.write(`quorumkv drill: ${(e as Error).message}\n${DRILL_USAGE}\n`);
    return DRILL_EXIT.usage;
  }
  if (values.help) {
    io.stdout.write(`${DRILL_USAGE}\n`);
    return DRILL_EXIT.ok;
  }
  try {
    if (values.check !== undefined) {
      const file = values.check;
      const saved = parseSavedHistory(await readFile(file, 'utf8'), file);
      const report = checkHistory(saved.ops);
      if (values.json) io.stdout.write(`${JSON.stringify({ file, seed: saved.seed, check: report })}\n`);
      else {
        io.stdout.write(
          `${file}: ${saved.ops.length} ops, seed ${saved.seed}: ${report.ok ? 'OK' : `${report.violations.length + report.omitted} VIOLATION(S)`}\n`,
        );
        for (const v of report.violations) io.stdout.write(`  [${v.kind}] ${v.message}\n`);
      }
      return report.ok ? DRILL_EXIT.ok : DRILL_EXIT.violation;
    }
    const selfTest = values['self-test'] === true;
    const endpoints = values.endpoints
      ?.split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    const kinds = faultsOpt(values.faults);
    const result = await runDrill({
      durationMs: values.duration === undefined ? DRILL_DEFAULTS.durationMs : parseDuration(values.duration),
      seed: intOpt(values.seed, 'seed', Math.floor(Math.random() * 2 ** 31), 0, 2 ** 31 - 1),
      clients: intOpt(values.clients, 'clients', DRILL_DEFAULTS.clients, 1, 64),
      keys: intOpt(values.keys, 'keys', DRILL_DEFAULTS.keys, 1, 1000),
      thinkMs: intOpt(values['think-ms'], 'think-ms', DRILL_DEFAULTS.thinkMs, 0, 10_000),
      ...(endpoints && endpoints.length > 0 ? { endpoints } : {}),
      ...(kinds ? { kinds } : {}),
      raft: { ...DRILL_DEFAULTS.raft },
      outDir: values.out ?? '.',
      ...(values['log-dir'] === undefined ? {} : { logDir: values['log-dir'] }),
      injectStaleReads: selfTest,
      log: (line) => io.stderr.write(`${line}\n`),
    });
    if (values.json) io.stdout.write(`${JSON.stringify(result)}\n`);
    else io.stdout.write(`${formatReport(result)}\n`);
    if (result.selfTest && !result.selfTest.passed) {
      io.stderr.write(`self-test FAILED: injected ${result.selfTest.injected.length} stale reads, the checker flagged ${result.selfTest.flagged.length}\n`);
      return DRILL_EXIT.violation;
    }
    return result.check.ok ? DRILL_EXIT.ok : DRILL_EXIT.violation;
  } catch (e) {
    io.stderr.write(`quorumkv drill: ${(e as Error).name}: ${(e as Error).message}\n`);
    return e instanceof DrillUsageError || (e as Error).name === 'HistoryFormatError' ? DRILL_EXIT.usage : DRILL_EXIT.failed;
  }
}
