// put / get / del / scan.
import type { KvClient } from '../client/kv-client.js';
import type { Consistency, ReadOptions } from '../client/types.js';
import { intOption, UsageError } from './args.js';
import type { ParsedArgs } from './args.js';
import { EXIT_NOT_FOUND, EXIT_OK } from './exit-codes.js';
import { itemJson, printJson, printLine } from './output.js';
import type { CliIo } from './output.js';

const CONSISTENCIES: readonly Consistency[] = ['linearizable', 'lease', 'follower'];

function readOptions(values: ParsedArgs['values']): ReadOptions {
  const consistency = values.consistency ?? 'linearizable';
  if (!(CONSISTENCIES as readonly string[]).includes(consistency)) {
    throw new UsageError(`--consistency must be one of ${CONSISTENCIES.join(', ')}, got "${consistency}"`);
  }
  const options: ReadOptions = { consistency: consistency as Consistency };
  const minIndex = intOption(values, 'min-index');
  const maxLagMs = intOption(values, 'max-lag-ms');
  if ((minIndex !== undefined || maxLagMs !== undefined) && consistency !== 'follower') {
    throw new UsageError('--min-index and --max-lag-ms apply to --consistency follower only');
  }
  if (minIndex !== undefined) options.minIndex = minIndex;
  if (maxLagMs !== undefined) options.maxLagMs = maxLagMs;
  return options;
}

export async function putCommand(kv: KvClient, args: ParsedArgs, io: CliIo): Promise<number> {
  const [key, value] = args.positionals as [string, string];
  const durability = args.values.async ? 'async' : 'sync';
  const res = await kv.put(key, value, { durability });
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
  const durability = args.values.async ? 'async' : 'sync';
  const res = await kv.delete(key, { durability });
  if (args.values.json) {
    printJson(io, { ok: true, durability, deleted: res.deleted ?? null, term: res.term, index: res.index });
  } else {
    printLine(io, res.deleted === undefined ? `ACCEPTED term=${res.term} index=${res.index}` : `${res.deleted}`);
  }
  return EXIT_OK;
}

export async function scanCommand(kv: KvClient, args: ParsedArgs, io: CliIo): Promise<number> {
  const [prefix] = args.positionals as [string];
  const limit = intOption(args.values, 'limit', 1);
  const page = await kv.scan({
    ...(prefix === '' ? {} : { prefix }),
    ...(limit !== undefined ? { limit } : {}),
    ...readOptions(args.values),
  });
  if (args.values.json) {
    printJson(io, {
      items: page.items.map(itemJson),
      more: page.more,
      ...(page.continueFrom ? { continueFromBase64: Buffer.from(page.continueFrom).toString('base64') } : {}),
      servedBy: page.servedBy,
      appliedIndex: page.appliedIndex,
    });
  } else {
    for (const item of page.items) printLine(io, `${item.keyText()}\t${item.text()}`);
    if (page.more) io.stderr.write(`(more keys follow; raise --limit)\n`);
  }
  return EXIT_OK;
}
