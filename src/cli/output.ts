// How the CLI prints: --json emits one JSON document on stdout; otherwise human text.
import type { Writable } from 'node:stream';
import { bytesToStrictText } from '../client/bytes.js';
import type { KvItem } from '../client/kv-item.js';

export interface CliIo {
  stdout: Writable;
  stderr: Writable;
  env: NodeJS.ProcessEnv;
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
