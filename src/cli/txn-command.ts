// txn: compare-then-ops, read as etcdctl reads it: compares, success ops and failure ops, three
// blocks separated by an empty line. The whole input is checked before anything is sent.
import { readFile } from 'node:fs/promises';
import type { KvClient } from '../client/kv-client.js';
import type { TxnCompare, TxnOp, TxnSpec } from '../client/types.js';
import { UsageError } from './args.js';
import type { ParsedArgs } from './args.js';
import { EXIT_COMPARE_FAILED, EXIT_OK } from './exit-codes.js';
import { printJson, printLine, readStdin } from './output.js';
import type { CliIo } from './output.js';

/** Splits a line into words: bare words, or JSON-quoted strings (which may hold spaces). */
function words(line: string, where: string): string[] {
  const out: string[] = [];
  const re = /\s*("(?:[^"\\]|\\.)*"|[^\s"]+)/gy;
  let m: RegExpExecArray | null;
  let end = 0;
  // biome-ignore lint/suspicious/noAssignInExpressions: the usual regex loop
  while ((m = re.exec(line)) !== null) {
    const w = m[1]!;
    out.push(w.startsWith('"') ? (JSON.parse(w) as string) : w);
    end = re.lastIndex;
  }
  if (line.slice(end).trim() !== '') throw new UsageError(`${where}: cannot read ${JSON.stringify(line.slice(end).trim())} (unterminated quote?)`);
  return out;
}

const COMPARE_RE = /^\s*(value|version|mod|modIndex)\(\s*("(?:[^"\\]|\\.)*"|[^\s)"]+)\s*\)\s*(=|==|!=|<|>)\s*(.+?)\s*$/;
const RESULTS = { '=': 'eq', '==': 'eq', '!=': 'neq', '<': 'lt', '>': 'gt' } as const;

function parseCompare(line: string, where: string): TxnCompare {
  const m = COMPARE_RE.exec(line);
  if (!m) throw new UsageError(`${where}: expected a compare like value("KEY") = "V", version("KEY") > 2 or mod("KEY") < 10, got ${JSON.stringify(line)}`);
  const [, target, rawKey, op, rawOperand] = m as unknown as [string, string, string, keyof typeof RESULTS, string];
  const key = rawKey.startsWith('"') ? (JSON.parse(rawKey) as string) : rawKey;
  const result = RESULTS[op];
  if (target === 'value') {
    if (result !== 'eq' && result !== 'neq') throw new UsageError(`${where}: value() compares with = or != only`);
    const [value, ...rest] = words(rawOperand, where);
    if (value === undefined || rest.length > 0) throw new UsageError(`${where}: value() needs one value after ${op}`);
    return { key, target: 'value', result, value };
  }
  const n = Number(rawOperand);
  if (!/^\d+$/.test(rawOperand) || !Number.isSafeInteger(n))
    throw new UsageError(`${where}: ${target}() compares with a whole number, got ${JSON.stringify(rawOperand)}`);
  return { key, target: target === 'version' ? 'version' : 'modIndex', result, number: n };
}

function parseOp(line: string, where: string): TxnOp {
  const w = words(line, where);
  if (w[0] === 'put' && w.length === 3) return { op: 'put', key: w[1]!, value: w[2]! };
  if ((w[0] === 'del' || w[0] === 'delete') && w.length === 2) return { op: 'delete', key: w[1]! };
  if ((w[0] === 'del' || w[0] === 'delete') && w.length === 3 && w[1] === '--prefix') return { op: 'deleteRange', prefix: w[2]! };
  throw new UsageError(`${where}: expected put KEY VALUE, del KEY or del --prefix PREFIX, got ${JSON.stringify(line)}`);
}

/** Parses the three blocks; a line number names every mistake. */
export function parseTxn(text: string): TxnSpec {
  const blocks: { line: number; text: string }[][] = [[]];
  text.split(/\r?\n/).forEach((raw, i) => {
    // Each empty line ends a block (an input starting with one has no compares).
    if (raw.trim() === '') {
      blocks.push([]);
      return;
    }
    blocks[blocks.length - 1]!.push({ line: i + 1, text: raw });
  });
  // Trailing empty lines make empty blocks at the end; they say nothing.
  while (blocks.length > 3 && blocks[blocks.length - 1]!.length === 0) blocks.pop();
  if (blocks.length > 3)
    throw new UsageError(`txn: more than three blocks (compares, success ops, failure ops); block 4 starts at line ${blocks[3]![0]?.line}`);
  const [compares = [], success = [], failure = []] = blocks;
  const spec: TxnSpec = {
    compares: compares.map((l) => parseCompare(l.text, `txn line ${l.line}`)),
    success: success.map((l) => parseOp(l.text, `txn line ${l.line}`)),
    failure: failure.map((l) => parseOp(l.text, `txn line ${l.line}`)),
  };
  if (spec.success!.length === 0 && spec.failure!.length === 0)
    throw new UsageError('txn: no operations given (blocks: compares, empty line, success ops, empty line, failure ops)');
  return spec;
}

export async function txnCommand(kv: KvClient, args: ParsedArgs, io: CliIo): Promise<number> {
  const file = args.values.file;
  let text: string;
  if (file !== undefined) {
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      throw new UsageError(`--file ${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
  } else {
    text = (await readStdin(io, 'txn')).toString('utf8');
  }
  const spec = parseTxn(text);
  const res = await kv.txn(spec);
  const succeeded = res.succeeded === true;
  if (args.values.json) {
    printJson(io, { ok: true, succeeded, term: res.term, index: res.index, results: res.results ?? [] });
  } else {
    printLine(io, succeeded ? 'SUCCESS' : 'FAILURE');
    for (const r of res.results ?? []) {
      if (r.op === 'put') printLine(io, 'OK');
      else if (r.op === 'delete' || r.op === 'deleteRange') printLine(io, String(r.deleted));
    }
  }
  return succeeded ? EXIT_OK : EXIT_COMPARE_FAILED;
}
