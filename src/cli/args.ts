// What a parsed command line hands to a command: its name, its positional arguments and its
// options (global ones merged in). The parsing itself is commander's (program.ts).

export class UsageError extends Error {
  override name = 'UsageError';
}

export type OutputFormat = 'table' | 'json';

export interface CliValues {
  endpoints?: string;
  config?: string;
  /** Machine-readable output (`--json`, or `-w json`). */
  json?: boolean;
  writeOut?: OutputFormat;
  timeout?: number;
  user?: string;
  token?: string;
  cacert?: string;
  cert?: string;
  key?: string;
  async?: boolean;
  consistency?: string;
  minIndex?: number;
  maxLagMs?: number;
  limit?: number;
  from?: string;
  prefix?: boolean;
  to?: string;
  prev?: string;
  absent?: boolean;
  file?: string;
  node?: string;
  raftAddress?: string;
  clientAddress?: string;
  learner?: boolean;
  role?: string;
  client?: string;
  logFormat?: 'json' | 'pretty';
  logLevel?: string;
  lease?: number;
  fromIndex?: number;
  maxEvents?: number;
  prevValue?: boolean;
  once?: boolean;
}

export interface ParsedArgs {
  /** e.g. 'put', 'member add', 'endpoint health'. */
  command: string;
  positionals: string[];
  values: CliValues;
}

/** A whole number >= min, for commander's argument parsers; the message names the option. */
export function wholeNumber(option: string, min: number): (raw: string) => number {
  return (raw: string) => {
    const n = Number(raw);
    if (!/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(n) || n < min) {
      throw new UsageError(`${option} must be a whole number >= ${min}, got "${raw}"`);
    }
    return n;
  };
}
