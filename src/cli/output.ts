// How the CLI prints (--json / -w json: one JSON document on stdout; otherwise text and tables) and reads stdin.
import type { Readable, Writable } from 'node:stream';
import { bytesToStrictText } from '../client/bytes.js';
import type { KvItem } from '../client/kv-item.js';
import { UsageError } from './args.js';

export interface CliIo {
  stdout: Writable;
  stderr: Writable;
  env: NodeJS.ProcessEnv;
  /** Where put (no VALUE) and txn read their input; absent = none. */
  stdin?: Readable;
}

export function printJson(io: CliIo, doc: unknown): void {
  io.stdout.write(`${JSON.stringify(doc)}\n`);
}

export function printLine(io: CliIo, line: string): void {
  io.stdout.write(`${line}\n`);
}

/** Bytes as JSON: text when valid UTF-8, else base64 under `<name>Base64`. */
function bytesField(name: string, b: Uint8Array): Record<string, string> {
  const text = bytesToStrictText(b);
  return text === undefined ? { [`${name}Base64`]: Buffer.from(b).toString('base64') } : { [name]: text };
}

export function itemJson(item: KvItem): Record<string, unknown> {
  return {
    ...bytesField('key', item.key),
    ...bytesField('value', item.value),
    version: item.version,
    createIndex: item.createIndex,
    modIndex: item.modIndex,
    servedBy: item.servedBy,
    appliedIndex: item.appliedIndex,
  };
}

/** A plain-text table with a header row and a rule under it (like `etcdctl -w table`). */
export function renderTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  const rule = `+${widths.map((w) => '-'.repeat(w + 2)).join('+')}+`;
  return [rule, line(header), rule, ...rows.map(line), rule].join('\n');
}

/** The most a value read from stdin may be (the node's own limit is lower; this only bounds memory). */
const MAX_STDIN_BYTES = 64 * 1024 * 1024;

/** All of stdin, bounded; `what` names the command in the error when stdin is a terminal. */
export async function readStdin(io: CliIo, what: string): Promise<Buffer> {
  const stdin = io.stdin;
  if (!stdin || (stdin as { isTTY?: boolean }).isTTY) throw new UsageError(`${what}: the value is read from stdin, which is a terminal; pipe it in or give it`);
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of stdin) {
    const b = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    total += b.length;
    if (total > MAX_STDIN_BYTES) throw new UsageError(`${what}: stdin holds more than ${MAX_STDIN_BYTES} bytes`);
    chunks.push(b);
  }
  return Buffer.concat(chunks);
}
