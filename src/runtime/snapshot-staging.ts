// A follower installs a snapshot file while it is still arriving. Each piece the transport writes
// into the new file is also fed, through a bounded byte pipe, to the same record reader a restore
// uses (every record's CRC, the pairs' shape, the end record's counts and, at the end, the whole
// file's size and CRC-32 against what the header announced), and the pairs it yields go into the
// state machine's staged restore beside the live state. When the file is committed the staged
// state is finished under the file's name; installing the snapshot is then only the swap
// (installStaged). Without this a rebuild pays the transfer and the install one after the other.
//
// Staging only ever saves time: if it cannot start or finds the bytes bad, it is dropped and the
// install streams the file as before. While it is behind by its bound, the transfer waits for it. Anything but a committed,
// checked file ends in abort, which deletes the staged state; a crash leaves a directory that the
// state machine deletes when it opens.
import type { Logger } from 'pino';
import { readSnapshotRecords } from '../storage/snapshot-file.js';
import type { SnapshotRef } from '../storage/snapshot-store.js';
import type { StagedRestore, StateMachine } from '../storage/state-machine.js';

/** Bytes received (and written to the file) but not yet read into the staged state; beyond this the transfer waits. */
export const STAGING_PIPE_BYTES = 16 << 20;

/** The name a staged state is finished under and looked up by: the file and its checksum. */
export function stagedSource(ref: Pick<SnapshotRef, 'name' | 'crc32'>): string {
  return `${ref.name}#${ref.crc32.toString(16)}`;
}

/** What was announced for the incoming file: its size and whole-file CRC-32. */
export interface AnnouncedFile {
  bytes: number;
  crc32: number;
}

/**
 * Bytes pushed in order, read in order by offset. A read waits until it can return the whole
 * requested length (or the rest of the announced total); push waits while more than `limit`
 * bytes are unread. fail() wakes everyone with the error.
 */
class BytePipe {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private readOffset = 0;
  private pushed = 0;
  private failure: Error | undefined;
  private readerWaiting: (() => void) | undefined;
  private writerWaiting: (() => void) | undefined;

  constructor(
    private readonly total: number,
    private readonly limit: number,
  ) {}

  async push(bytes: Uint8Array): Promise<void> {
    if (this.failure) throw this.failure;
    if (this.pushed + bytes.length > this.total) throw new Error(`more than the announced ${this.total} bytes`);
    this.chunks.push(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    this.buffered += bytes.length;
    this.pushed += bytes.length;
    this.wake('reader');
    while (this.buffered > this.limit && !this.failure) await new Promise<void>((resolve) => (this.writerWaiting = resolve));
    if (this.failure) throw this.failure;
  }

  async read(offset: number, length: number): Promise<Buffer> {
    if (offset !== this.readOffset) throw new Error(`pipe read at ${offset}, expected ${this.readOffset}`);
    const want = Math.max(0, Math.min(length, this.total - offset));
    while (this.buffered < want && !this.failure) await new Promise<void>((resolve) => (this.readerWaiting = resolve));
    if (this.failure) throw this.failure;
    const out = Buffer.allocUnsafe(want);
    let got = 0;
    while (got < want) {
      const head = this.chunks[0]!;
      const n = Math.min(head.length, want - got);
      head.copy(out, got, 0, n);
      got += n;
      if (n === head.length) this.chunks.shift();
      else this.chunks[0] = head.subarray(n);
    }
    this.buffered -= want;
    this.readOffset += want;
    if (this.buffered <= this.limit) this.wake('writer');
    return out;
  }

  fail(err: Error): void {
    this.failure ??= err;
    this.chunks = [];
    this.buffered = 0;
    this.wake('reader');
    this.wake('writer');
  }

  private wake(who: 'reader' | 'writer'): void {
    const w = who === 'reader' ? this.readerWaiting : this.writerWaiting;
    if (who === 'reader') this.readerWaiting = undefined;
    else this.writerWaiting = undefined;
    w?.();
  }
}

/** One incoming file's staging. Created beside the file writer; fed every appended piece. */
export class SnapshotStaging {
  private readonly pipe: BytePipe;
  private readonly filled: Promise<{ index: number; term: number; pairs: number }>;
  /** Dropped (failed or aborted) or committed: nothing more is done, and abort no longer deletes a committed staging. */
  private dropped = false;
  private committed = false;
  private readonly started = performance.now();

  private constructor(
    private readonly staged: StagedRestore,
    private readonly announced: AnnouncedFile,
    private readonly logger: Logger | undefined,
  ) {
    this.pipe = new BytePipe(announced.bytes, STAGING_PIPE_BYTES);
    const pipe = this.pipe;
    this.filled = (async () => {
      const source = { name: 'incoming snapshot file', bytes: announced.bytes, crc32: announced.crc32 };
      const { header, chunks } = await readSnapshotRecords(
        (o, n) => pipe.read(o, n),
        source,
        async () => undefined,
      );
      let pairs = 0;
      for await (const chunk of chunks) {
        await staged.write(chunk);
        pairs += chunk.length;
      }
      return { index: header.index, term: header.term, pairs };
    })();
    // Bad bytes end the fill: the pipe's failure then stops a transfer waiting on it (push drops the staging).
    this.filled.catch((err: Error) => this.pipe.fail(err));
  }

  /** A staging for a file of `announced` size and CRC, or undefined when the machine cannot stage (then the install streams the file). */
  static async start(sm: StateMachine, announced: AnnouncedFile, logger: Logger | undefined): Promise<SnapshotStaging | undefined> {
    if (!sm.stageRestore || !sm.installStaged) return undefined;
    try {
      return new SnapshotStaging(await sm.stageRestore(), announced, logger);
    } catch (err) {
      logger?.warn({ event: 'snapshot_staging_failed', err: (err as Error).message }, 'cannot stage the incoming snapshot; it is installed after it arrived');
      return undefined;
    }
  }

  /** Feeds one appended piece (already written to the file); waits while the staged state is behind its bound. */
  async push(bytes: Uint8Array): Promise<void> {
    if (this.dropped) return;
    try {
      await this.pipe.push(bytes);
    } catch (err) {
      await this.drop(err as Error);
    }
  }

  /** The file is committed as `ref` (its size and CRC-32 checked): finish the staged state under its name. */
  async commit(ref: SnapshotRef): Promise<void> {
    if (this.dropped || this.committed) return;
    this.committed = true;
    try {
      // The caller checked these before committing; without them the reader would wait for bytes that never come.
      if (ref.bytes !== this.announced.bytes || ref.crc32 !== this.announced.crc32) {
        throw new Error(`the file has ${ref.bytes} bytes of CRC-32 ${ref.crc32}, the transfer announced ${this.announced.bytes} / ${this.announced.crc32}`);
      }
      const filled = await this.filled;
      if (filled.index !== ref.index || filled.term !== ref.term) {
        throw new Error(`the file's header says ${filled.index}/${filled.term}, the message ${ref.index}/${ref.term}`);
      }
      await this.staged.finish({ index: ref.index, term: ref.term }, stagedSource(ref));
      this.logger?.info(
        { event: 'snapshot_staged', index: ref.index, pairs: filled.pairs, bytes: ref.bytes, ms: Math.round(performance.now() - this.started) },
        'the state of the received snapshot is built beside the live one',
      );
    } catch (err) {
      await this.drop(err as Error);
    }
  }

  /** The transfer failed or was cancelled (after a commit: nothing to do; the staged state stays for the install). */
  async abort(): Promise<void> {
    if (this.dropped || this.committed) return;
    this.dropped = true;
    this.pipe.fail(new Error('the transfer ended'));
    await this.staged.abort();
  }

  private async drop(err: Error): Promise<void> {
    if (this.dropped) return;
    this.dropped = true;
    this.pipe.fail(err);
    this.logger?.warn({ event: 'snapshot_staging_failed', err: err.message }, 'staging the incoming snapshot failed; it is installed after it arrived');
    await this.staged.abort();
  }
}
