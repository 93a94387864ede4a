// watch / lease grant|keepalive|revoke|list.
import type { KvClient } from '../client/kv-client.js';
import type { WatchEvent } from '../client/watch.js';
import { bytesToStrictText } from '../client/bytes.js';
import { UsageError } from './args.js';
import type { ParsedArgs } from './args.js';
import { EXIT_OK } from './exit-codes.js';
import { printJson, printLine, renderTable } from './output.js';
import type { CliIo } from './output.js';

function text(b: Uint8Array): string {
  return bytesToStrictText(b) ?? `base64:${Buffer.from(b).toString('base64')}`;
}

function eventJson(e: WatchEvent): Record<string, unknown> {
  return {
    type: e.type,
    key: text(e.key),
    ...(e.type === 'put' ? { value: text(e.value) } : {}),
    index: e.index,
    ...(e.prevValue !== undefined ? { prevValue: text(e.prevValue) } : {}),
    ...(e.lease ? { lease: e.lease } : {}),
  };
}

/** Prints the changes under PREFIX as they come, until interrupted (or --max-events). */
export async function watchCommand(kv: KvClient, args: ParsedArgs, io: CliIo): Promise<number> {
  const [prefix = ''] = args.positionals;
  const { fromIndex, maxEvents, prevValue } = args.values;
  const watcher = kv.watch({ ...(prefix === '' ? {} : { prefix }), ...(fromIndex ? { fromIndex } : {}), prevValue: prevValue === true });
  let seen = 0;
  const stop = (): void => watcher.close();
  process.once('SIGINT', stop);
  try {
    for await (const e of watcher) {
      if (args.values.json) printJson(io, eventJson(e));
      else printLine(io, `${e.index}\t${e.type.toUpperCase()}\t${text(e.key)}${e.type === 'put' ? `\t${text(e.value)}` : ''}`);
      if (maxEvents !== undefined && ++seen >= maxEvents) break;
    }
  } finally {
    process.removeListener('SIGINT', stop);
    watcher.close();
  }
  return EXIT_OK;
}

function leaseId(raw: string | undefined): number {
  const n = Number(raw);
  if (raw === undefined || !/^\d+$/.test(raw) || !Number.isSafeInteger(n) || n <= 0)
    throw new UsageError(`LEASE must be a lease id (a positive number), got "${raw}"`);
  return n;
}

export async function leaseGrantCommand(kv: KvClient, args: ParsedArgs, io: CliIo): Promise<number> {
  const raw = args.positionals[0];
  const ttlMs = Number(raw);
  if (raw === undefined || !/^\d+$/.test(raw) || !Number.isSafeInteger(ttlMs))
    throw new UsageError(`TTL_MS must be a whole number of milliseconds, got "${raw}"`);
  const id = await kv.grantLease(ttlMs);
  if (args.values.json) printJson(io, { id, ttlMs });
  else printLine(io, `lease ${id} granted with TTL ${ttlMs} ms`);
  return EXIT_OK;
}

export async function leaseRevokeCommand(kv: KvClient, args: ParsedArgs, io: CliIo): Promise<number> {
  const id = leaseId(args.positionals[0]);
  const res = await kv.revokeLease(id);
  const deleted = res.result?.op === 'leaseRevoke' ? res.result.deleted : undefined;
  if (args.values.json) printJson(io, { id, revoked: true, deleted: deleted ?? null, index: res.index });
  else printLine(io, `lease ${id} revoked${deleted === undefined ? '' : `, ${deleted} key(s) deleted`}`);
  return EXIT_OK;
}

/** Renews LEASE until interrupted (--once: one renewal). */
export async function leaseKeepAliveCommand(kv: KvClient, args: ParsedArgs, io: CliIo): Promise<number> {
  const id = leaseId(args.positionals[0]);
  const ttlMs = await kv.keepAliveOnce(id);
  const say = (): void => (args.values.json ? printJson(io, { id, ttlMs }) : printLine(io, `lease ${id} kept alive with TTL ${ttlMs} ms`));
  say();
  if (args.values.once) return EXIT_OK;
  let lost: Error | undefined;
  const handle = kv.keepAlive(id, ttlMs, { onLost: (err) => (lost = err) });
  const stop = (): void => handle.stop();
  process.once('SIGINT', stop);
  try {
    await handle.done;
  } finally {
    process.removeListener('SIGINT', stop);
  }
  if (lost) throw lost;
  return EXIT_OK;
}

export async function leaseListCommand(kv: KvClient, args: ParsedArgs, io: CliIo): Promise<number> {
  const leases = await kv.leases();
  if (args.values.json) printJson(io, { leases });
  else
    printLine(
      io,
      renderTable(
        ['ID', 'TTL MS', 'REMAINING MS', 'KEYS'],
        leases.map((l) => [String(l.id), String(l.ttlMs), String(l.remainingMs), String(l.keys)]),
      ),
    );
  return EXIT_OK;
}
