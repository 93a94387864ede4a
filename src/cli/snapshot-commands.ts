// `quorumkv snapshot save FILE`: a backup from the leader (or --node) written to FILE.part, checked
// against the node's CRC-32, fsynced and only then renamed to FILE, so FILE is either a complete,
// checked backup or absent. A progress line (bytes, rate, ETA) goes to stderr. `snapshot status`
// and `snapshot restore` read files with the storage code and are run by the process layer.
import { open, rename, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { KvClient } from '../client/kv-client.js';
import type { SnapshotMetadata } from '../client/snapshot.js';
import { type ParsedArgs, UsageError } from './args.js';
import { type CliIo, printJson, printLine } from './output.js';

const PROGRESS_EVERY_MS = 250;

function mib(bytes: number): string {
  return `${(bytes / (1 << 20)).toFixed(1)} MiB`;
}

/** One updating line on a terminal; elsewhere (a log, a pipe) a line every few seconds. */
class ProgressLine {
  private readonly started = Date.now();
  private last = 0;
  private readonly tty: boolean;

  constructor(private readonly io: CliIo) {
    this.tty = (io.stderr as { isTTY?: boolean }).isTTY === true;
  }

  update(bytes: number, estimate: number, final = false): void {
    const now = Date.now();
    if (!final && now - this.last < (this.tty ? PROGRESS_EVERY_MS : 5_000)) return;
    this.last = now;
    const seconds = Math.max((now - this.started) / 1000, 0.001);
    const rate = bytes / seconds;
    const eta = final ? 'done' : estimate > bytes && rate > 0 ? `ETA ${Math.ceil((estimate - bytes) / rate)} s` : 'ETA ?';
    const of = estimate > 0 && !final ? ` of ~${mib(estimate)}` : '';
    const line = `snapshot: ${mib(bytes)}${of}, ${mib(rate)}/s, ${eta}`;
    this.io.stderr.write(this.tty ? `\r${line.padEnd(60)}${final ? '\n' : ''}` : `${line}\n`);
  }
}

export function snapshotMetadataJson(m: SnapshotMetadata): Record<string, unknown> {
  return { node: m.nodeId, index: m.index, term: m.term, members: m.members, keys: m.keys, pairs: m.pairs, bytes: m.bytes, crc32: m.crc32 };
}

export async function snapshotSaveCommand(kv: KvClient, args: ParsedArgs, io: CliIo): Promise<number> {
  const file = args.positionals[0];
  if (!file) throw new UsageError('snapshot save needs FILE');
  const target = path.resolve(file);
  if (
    await stat(target).then(
      () => true,
      () => false,
    )
  ) {
    throw new UsageError(`${target} exists; give a new file name (a backup never overwrites one)`);
  }
  const part = `${target}.part`;
  const fd = await open(part, 'w');
  const progress = new ProgressLine(io);
  let bytes = 0;
  let meta: SnapshotMetadata;
  try {
    const download = kv.snapshot(args.values.node === undefined ? {} : { node: args.values.node });
    for await (const chunk of download as AsyncIterable<Buffer>) {
      let written = 0;
      while (written < chunk.length) written += (await fd.write(chunk, written, chunk.length - written)).bytesWritten;
      bytes += chunk.length;
      progress.update(bytes, download.info?.estimatedBytes ?? 0);
    }
    meta = await download.metadata();
    await fd.sync();
    await fd.close();
    progress.update(bytes, 0, true);
    await rename(part, target);
    const dir = await open(path.dirname(target), 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  } catch (err) {
    await fd.close().catch(() => undefined);
    await unlink(part).catch(() => undefined);
    throw err;
  }
  if (args.values.json) printJson(io, { file: target, ...snapshotMetadataJson(meta) });
  else {
    printLine(io, `saved ${target}: index ${meta.index}, term ${meta.term}, from ${meta.nodeId}`);
    printLine(io, `  keys ${meta.keys} (pairs ${meta.pairs}), ${meta.bytes} bytes, crc32 ${meta.crc32.toString(16).padStart(8, '0')}`);
    printLine(io, `  members ${meta.members.map((m) => `${m.id}${m.voter ? '' : ' (learner)'}`).join(', ')}`);
  }
  return 0;
}
