// Reads log entries that are no longer held in memory back from the live segment file. The core
// asks synchronously (LogStorage.entries); the first ask for an index outside what was loaded starts
// one asynchronous read of up to `readBytes` from there and throws EntriesLoadingError; when the
// read is in, `onLoaded` tells the runtime, whose retry is then answered from the loaded window.
import { crc32 } from 'node:zlib';
import { EntriesLoadingError, entrySize } from '../raft/log-storage.js';
import type { Entry } from '../raft/types.js';
import { StorageCorruptionError } from './errors.js';
import type { FsFile } from './fs.js';
import { REC_ENTRIES, decodeEntries, decodePayload } from './log-records.js';
import type { ColdEntries, LogState } from './log-state.js';
import { RECORD_HEADER_BYTES, readAt } from './record-file.js';

/**
 * Entries [lo, hi) as the log holds them, read from `file` by their record offsets (an entry counts
 * only from the record its position names: a later record may have replaced it), stopping once
 * `maxBytes` of entries were read. Reads about `readBytes` at a time.
 */
export async function readLogEntries(
  file: FsFile,
  fileName: string,
  state: Pick<LogState, 'baseIndex' | 'positions'>,
  lo: number,
  hi: number,
  maxBytes: number,
  readBytes: number,
): Promise<Entry[]> {
  const positions = state.positions;
  const base = state.baseIndex;
  const positionOf = (index: number): number | undefined => positions?.[index - base - 1];
  const out: Entry[] = [];
  let bytes = 0;
  let next = lo;
  let offset = positionOf(lo);
  // Each turn consumes at least one record, and records only grow in offset: bounded by the file.
  for (let turn = 0; offset !== undefined && next < hi && bytes < maxBytes; turn++) {
    let buf = await readAt(file, offset, readBytes);
    let p = 0;
    while (next < hi && bytes < maxBytes) {
      if (buf.length - p < RECORD_HEADER_BYTES) break;
      const length = buf.readUInt32LE(p);
      if (p + RECORD_HEADER_BYTES + length > buf.length) {
        if (p > 0) break;
        buf = await readAt(file, offset, RECORD_HEADER_BYTES + length);
        if (buf.length < RECORD_HEADER_BYTES + length) throw new StorageCorruptionError(fileName, offset, 'a log record is cut short');
        continue;
      }
      const payload = buf.subarray(p + RECORD_HEADER_BYTES, p + RECORD_HEADER_BYTES + length);
      const at = offset + p;
      if (length === 0 || crc32(payload) !== buf.readUInt32LE(p + 4)) {
        throw new StorageCorruptionError(fileName, at, 'a log record read back from disk fails its checksum');
      }
      p += RECORD_HEADER_BYTES + length;
      if (positionOf(next) !== at) continue; // nothing the log still holds is in this record
      const r = decodePayload(payload);
      if (r?.[0] !== REC_ENTRIES) throw new StorageCorruptionError(fileName, at, 'the record an entry is said to be in holds no entries');
      const entries = decodeEntries(r);
      if (typeof entries === 'string') throw new StorageCorruptionError(fileName, at, entries);
      for (const e of entries) {
        if (e.index !== next || positionOf(next) !== at || next >= hi || bytes >= maxBytes) continue;
        out.push(e);
        bytes += entrySize(e);
        next++;
      }
    }
    if (p === 0) break; // cannot happen for a file the positions came from; never loop on it
    offset += p;
    if (turn > 1_000_000) break;
  }
  if (out.length === 0 || out[0]!.index !== lo)
    throw new StorageCorruptionError(fileName, positionOf(lo) ?? 0, `log entry ${lo} is not where the log says it is`);
  return out;
}

export interface ColdLogReaderOptions {
  state: LogState;
  /** The live segment and its name (it changes when the log is rewritten). */
  file(): { file: FsFile; name: string } | undefined;
  /** Bytes read ahead from the first index asked for. */
  readBytes: number;
  /** Loaded (or failed): the runtime retries what waited. */
  onLoaded(): void;
}

export class ColdLogReader implements ColdEntries {
  private window: { generation: number; lo: number; entries: Entry[] } | undefined;
  private loading: Promise<void> | undefined;
  private failure: Error | undefined;

  constructor(private readonly options: ColdLogReaderOptions) {}

  read(lo: number, hi: number, maxBytes: number): Entry[] {
    if (this.failure) throw this.failure;
    const w = this.window;
    if (w && w.generation === this.options.state.generation && lo >= w.lo && lo < w.lo + w.entries.length) {
      const out: Entry[] = [];
      let bytes = 0;
      for (let i = lo - w.lo; i < w.entries.length && w.entries[i]!.index < hi; i++) {
        bytes += entrySize(w.entries[i]!);
        if (out.length > 0 && bytes > maxBytes) break;
        out.push(w.entries[i]!);
      }
      return out;
    }
    this.load(lo);
    throw new EntriesLoadingError(lo);
  }

  /** Resolves once no read is in flight (before the segment it reads is closed). */
  idle(): Promise<void> {
    return this.loading ?? Promise.resolve();
  }

  /** One read at a time: a second index asked for meanwhile is read on the retry after this one. */
  private load(lo: number): void {
    if (this.loading) return;
    const { state } = this.options;
    const live = this.options.file();
    if (!live) return;
    const generation = state.generation;
    const hi = state.firstHotIndex();
    this.loading = readLogEntries(live.file, live.name, state, lo, hi, this.options.readBytes, Math.min(this.options.readBytes, 4 << 20))
      .then((entries) => {
        this.window = generation === state.generation ? { generation, lo, entries } : undefined;
      })
      .catch((err: Error) => {
        // A read that raced a rewrite of the log is simply dropped; damage is sticky.
        if (generation === state.generation) this.failure = err;
      })
      .finally(() => {
        this.loading = undefined;
        this.options.onLoaded();
      });
  }
}
