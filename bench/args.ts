// Command-line options of `npm run bench`. Pure: parsing never touches the machine, so it is unit tested.
import { BenchUsageError } from './errors.js';

export interface BenchOptions {
  /** Length of each closed-loop load phase (one workload at one concurrency). */
  durationMs: number;
  /** Bytes per written value. */
  valueSize: number;
  /** Closed-loop concurrencies, ascending, distinct. */
  concurrency: number[];
  /** Whole run in about a minute: shorter phases and fewer Benchmark.js samples. */
  quick: boolean;
  /** Where the JSON results go. */
  jsonOut: string;
  /** Benchmark.js: the most time one micro-benchmark may take (seconds). */
  microMaxTimeS: number;
  /** Untimed warm-up at the start of each load phase (JIT, connections, caches). */
  warmupMs: number;
  /** write+fdatasync rounds for the fsync floor. */
  fsyncSamples: number;
  /** Ping round trips for the loopback floor. */
  pingSamples: number;
  /** When set, the node processes run with --cpu-prof and write their profiles here. */
  profileDir?: string;
  /** `--compare etcd`: after the quorumkv phases, the same workloads side by side with a three-member etcd. */
  compare?: CompareSystem;
  /** Repetitions of the compare phase's workloads (each workload alternates between the systems). */
  compareReps: number;
  /** `--scale <size>`: only the data-larger-than-memory phase (bench/scale.ts), filling this many bytes. */
  scaleBytes?: number;
  /** Concurrency of the scale fill (default 64). */
  scaleConcurrency: number;
  /** Print the help text instead of running. */
  help: boolean;
}

export const DEFAULT_JSON_OUT = 'bench/results/latest.json';
export const DEFAULT_CONCURRENCY = [1, 16, 64, 256];
export const COMPARE_SYSTEMS = ['etcd'] as const;
export type CompareSystem = (typeof COMPARE_SYSTEMS)[number];
export const DEFAULT_COMPARE_REPS = 2;

export const HELP = `npm run bench -- [options]

Starts a fresh three-node quorumkv cluster (real processes, loopback, temp dirs), measures the
machine's floor (fdatasync, gRPC loopback), per-operation latency (Benchmark.js) and closed-loop load
(ops/s, p50/p99/p99.9, cluster CPU per op), prints one table with the target checks and writes JSON.

  --duration-ms <n>        length of each load phase (default 5000, --quick 1000)
  --value-size <bytes>     size of written values (default 256)
  --concurrency <list>     closed-loop concurrencies, comma separated (default 1,16,64,256)
  --quick                  whole run in about one minute
  --json-out <file>        results file (default ${DEFAULT_JSON_OUT})
  --profile-dir <dir>      run the nodes with --cpu-prof, profiles written to <dir>
  --compare etcd           then start a fresh three-member etcd (the \`etcd\` on PATH) and a fresh
                           quorumkv side by side and run the same workloads alternately on both
                           (sync put c=1/16/256, async put vs etcd put, linearizable get, follower
                           get vs serializable get); prints ratios; skipped when etcd is missing
  --compare-reps <n>       repetitions of each compared workload (default ${DEFAULT_COMPARE_REPS})
  --scale <size>           only the scale phase: fill a fresh cluster with <size> of sync puts
                           (e.g. 200MB, 2GB; values of --value-size, default 1024 here), report
                           per tenth ops/s, RSS per node, longest event-loop stall, leader changes,
                           then wipe a follower and time its rebuild; results bench/results/scale.json
  --scale-concurrency <n>  concurrency of the scale fill (default 64)
  --help                   this text
`;

const MIN_SCALE_BYTES = 1024 * 1024;
const MAX_SCALE_BYTES = 64 * 1024 * 1024 * 1024;

/** "2GB", "512MB", "100m", "1.5g", "64KiB" or plain bytes; undefined when it is none of these. */
export function parseSize(raw: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*([kmg]i?b?|b)?$/i.exec(raw.trim());
  if (!m) return undefined;
  const unit = (m[2] ?? 'b').toLowerCase()[0]!;
  const mult = unit === 'k' ? 1024 : unit === 'm' ? 1024 * 1024 : unit === 'g' ? 1024 * 1024 * 1024 : 1;
  return Math.round(Number(m[1]) * mult);
}

const MAX_VALUE_SIZE = 1024 * 1024; // the server rejects larger values (proto/kv.proto)
const MAX_CONCURRENCY = 4096;

function positiveInt(option: string, raw: string | undefined, min: number, max: number): number {
  if (raw === undefined || raw.startsWith('--')) throw new BenchUsageError(option, 'needs a value');
  if (!/^\d+$/.test(raw)) throw new BenchUsageError(option, `expected an integer, got "${raw}"`);
  const n = Number(raw);
  if (n < min || n > max) throw new BenchUsageError(option, `must be between ${min} and ${max}, got ${n}`);
  return n;
}

export function parseConcurrencyList(raw: string | undefined): number[] {
  if (raw === undefined || raw.startsWith('--')) throw new BenchUsageError('--concurrency', 'needs a value such as 1,16,64');
  const parts = raw.split(',').map((p) => p.trim());
  if (parts.some((p) => p === '')) throw new BenchUsageError('--concurrency', `empty item in "${raw}"`);
  const values = parts.map((p) => positiveInt('--concurrency', p, 1, MAX_CONCURRENCY));
  return [...new Set(values)].sort((a, b) => a - b);
}

/** Parses argv (without node and the script). Throws BenchUsageError naming the bad option. */
export function parseBenchArgs(argv: readonly string[]): BenchOptions {
  let durationMs: number | undefined;
  let valueSize = 256;
  let concurrency = DEFAULT_CONCURRENCY;
  let quick = false;
  let jsonOut = DEFAULT_JSON_OUT;
  let profileDir: string | undefined;
  let compare: CompareSystem | undefined;
  let compareReps = DEFAULT_COMPARE_REPS;
  let help = false;
  let scaleBytes: number | undefined;
  let scaleConcurrency = 64;
  let valueSizeGiven = false;

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    // Accept both `--opt value` and `--opt=value`.
    const eq = arg.indexOf('=');
    const name = arg.startsWith('--') && eq > 0 ? arg.slice(0, eq) : arg;
    const inline = arg.startsWith('--') && eq > 0 ? arg.slice(eq + 1) : undefined;
    const value = (): string | undefined => (inline !== undefined ? inline : argv[++i]);
    switch (name) {
      case '--duration-ms':
        durationMs = positiveInt(name, value(), 100, 3_600_000);
        break;
      case '--value-size':
        valueSize = positiveInt(name, value(), 1, MAX_VALUE_SIZE);
        valueSizeGiven = true;
        break;
      case '--concurrency':
        concurrency = parseConcurrencyList(value());
        break;
      case '--quick':
        if (inline !== undefined) throw new BenchUsageError(name, 'takes no value');
        quick = true;
        break;
      case '--json-out': {
        const v = value();
        if (v === undefined || v === '' || v.startsWith('--')) throw new BenchUsageError(name, 'needs a file path');
        jsonOut = v;
        break;
      }
      case '--profile-dir': {
        const v = value();
        if (v === undefined || v === '' || v.startsWith('--')) throw new BenchUsageError(name, 'needs a directory');
        profileDir = v;
        break;
      }
      case '--compare': {
        const v = value();
        if (v === undefined || v === '' || v.startsWith('--')) throw new BenchUsageError(name, `needs a system: ${COMPARE_SYSTEMS.join(', ')}`);
        if (!(COMPARE_SYSTEMS as readonly string[]).includes(v)) throw new BenchUsageError(name, `unknown system "${v}"; known: ${COMPARE_SYSTEMS.join(', ')}`);
        compare = v as CompareSystem;
        break;
      }
      case '--compare-reps':
        compareReps = positiveInt(name, value(), 1, 20);
        break;
      case '--scale': {
        const v = value();
        const bytes = v === undefined || v.startsWith('--') ? undefined : parseSize(v);
        if (bytes === undefined || bytes < MIN_SCALE_BYTES || bytes > MAX_SCALE_BYTES) {
          throw new BenchUsageError(name, `needs a size between 1MB and 64GB such as 200MB or 2GB, got "${v ?? ''}"`);
        }
        scaleBytes = bytes;
        break;
      }
      case '--scale-concurrency':
        scaleConcurrency = positiveInt(name, value(), 1, MAX_CONCURRENCY);
        break;
      case '--help':
      case '-h':
        help = true;
        break;
      default:
        throw new BenchUsageError(arg, 'unknown option');
    }
  }

  return {
    durationMs: durationMs ?? (quick ? 1000 : 5000),
    valueSize: scaleBytes !== undefined && !valueSizeGiven ? 1024 : valueSize,
    concurrency,
    quick,
    jsonOut,
    microMaxTimeS: quick ? 0.6 : 3,
    warmupMs: quick ? 150 : 500,
    fsyncSamples: quick ? 200 : 1000,
    pingSamples: quick ? 500 : 2000,
    ...(profileDir !== undefined ? { profileDir } : {}),
    ...(compare !== undefined ? { compare } : {}),
    compareReps,
    ...(scaleBytes !== undefined ? { scaleBytes } : {}),
    scaleConcurrency,
    help,
  };
}
