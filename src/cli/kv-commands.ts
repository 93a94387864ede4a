// put / get / del / scan / cas.
import type { KvClient } from '../client/kv-client.js';
import type { ReadConsistency, ReadOptions } from '../client/types.js';
import { UsageError } from './args.js';
import type { CliValues, ParsedArgs } from './args.js';
import { EXIT_COMPARE_FAILED, EXIT_NOT_FOUND, EXIT_OK } from './exit-codes.js';
import { itemJson, printJson, printLine, readStdin } from './output.js';
import type { CliIo } from './output.js';

function readOptions(values: CliValues): ReadOptions {
  const consistency = (values.consistency ?? 'linearizable') as ReadConsistency;
  const options: ReadOptions = { consistency };
  if ((values.minIndex !== undefined || values.maxLagMs !== undefined) && consistency !== 'follower' && consistency !== 'session') {
    throw new UsageError('--min-index and --max-lag-ms apply to --consistency follower or session only');
  }
  if (values.minIndex !== undefined) options.minIndex = values.minIndex;
  if (values.maxLagMs !== undefined) options.maxLagMs = values.maxLagMs;
  return options;
}

export async function putCommand(kv: KvClient, args: ParsedArgs, io: CliIo): Promise<number> {
  const [key, given] = args.positionals as [string, string | undefined];
  // No VALUE (or "-"): the value is stdin, byte for byte (binary values, files, values with newlines).
  const value = given === undefined || given === '-' ? await readStdin(io, 'put KEY with no VALUE') : given;
  const durability = args.values.async ? 'async' : 'sync';
  const res = await kv.put(key, value, { durability, ...(args.values.lease !== undefined ? { lease: args.values.lease } : {}) });
  if (args.values.json) {
    printJson(io, { ok: true, durability, term: res.term, index: res.index, applied: res.applied, duplicate: res.duplicate });
  } else {
    printLine(io, `${durability === 'async' ? 'ACCEPTED' : 'OK'} term=${res.term} index=${res.index}`);
  }
  return EXIT_OK;
}

export async function getCommand(kv: KvClient, args: ParsedArgs, io: CliIo): Promise<number> {
  const [key] = args.positionals as [string];
  const detail = await kv.getDetail(key, readOptions(args.values));
  if (!detail.item) {
    if (args.values.json) printJson(io, { found: false, key, servedBy: detail.servedBy, appliedIndex: detail.appliedIndex });
    else io.stderr.write(`key not found: ${key}\n`);
    return EXIT_NOT_FOUND;
  }
  if (args.values.json) printJson(io, { found: true, ...itemJson(detail.item) });
  else printLine(io, detail.item.text());
  return EXIT_OK;
}

export async function delCommand(kv: KvClient, args: ParsedArgs, io: CliIo): Promise<number> {
  const [key] = args.positionals as [string];
  const { prefix, to } = args.values;
  if (prefix && to !== undefined) throw new UsageError('give --prefix or --to, not both');
  if (!prefix && to === undefined && key === '') throw new UsageError('del needs a non-empty KEY (to delete every key: del "" --prefix)');
  const durability = args.values.async ? 'async' : 'sync';
  const res = prefix
    ? await kv.deleteRange({ prefix: key }, { durability })
    : to !== undefined
      ? await kv.deleteRange({ start: key, end: to }, { durability })
      : await kv.delete(key, { durability });
  if (args.values.json) {
    printJson(io, { ok: true, durability, deleted: res.deleted ?? null, term: res.term, index: res.index });
  } else {
    printLine(io, res.deleted === undefined ? `ACCEPTED term=${res.term} index=${res.index}` : `${res.deleted}`);
  }
  return EXIT_OK;
}

export async function scanCommand(kv: KvClient, args: ParsedArgs, io: CliIo): Promise<number> {
  const [prefix = ''] = args.positionals;
  const { limit, from } = args.values;
  if (from !== undefined && !from.startsWith(prefix))
    throw new UsageError(`--from ${JSON.stringify(from)} does not start with the prefix ${JSON.stringify(prefix)}`);
  const page = await kv.scan({
    ...(prefix === '' ? {} : { prefix }),
    ...(limit !== undefined ? { limit } : {}),
    ...(from !== undefined && from !== '' ? { continueFrom: Buffer.from(from) } : {}),
    ...readOptions(args.values),
  });
  const next = page.more && page.continueFrom ? Buffer.from(page.continueFrom) : undefined;
  if (args.values.json) {
    printJson(io, {
      items: page.items.map(itemJson),
      more: page.more,
      ...(next ? { continueFrom: next.toString('utf8'), continueFromBase64: next.toString('base64') } : {}),
      servedBy: page.servedBy,
      appliedIndex: page.appliedIndex,
    });
  } else {
    for (const item of page.items) printLine(io, `${item.keyText()}\t${item.text()}`);
    if (next) io.stderr.write(`(more keys follow: continue with --from ${JSON.stringify(next.toString('utf8'))})\n`);
  }
  return EXIT_OK;
}

export async function casCommand(kv: KvClient, args: ParsedArgs, io: CliIo): Promise<number> {
  const [key, value] = args.positionals as [string, string];
  const { prev, absent } = args.values;
  if ((prev === undefined) === !absent) throw new UsageError('cas needs exactly one of --prev VALUE (the value KEY has now) or --absent (KEY does not exist)');
  const res = await kv.cas(key, absent ? null : prev!, value);
  if (args.values.json) printJson(io, { ok: true, succeeded: res.succeeded, term: res.term, index: res.index });
  else printLine(io, res.succeeded ? `OK term=${res.term} index=${res.index}` : 'FAILED: the compare did not hold; nothing was written');
  return res.succeeded ? EXIT_OK : EXIT_COMPARE_FAILED;
}
