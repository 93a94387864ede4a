// Fills a new LevelDB directory with raw keyspace pairs (a snapshot being restored), in large
// batches, one of which is written in LevelDB's thread while the caller prepares the next. The
// directory holds nothing usable until finish() has written the applied position last and synced;
// abort() deletes the directory; one a crash leaves behind is deleted when the machine opens.
import { rm } from 'node:fs/promises';
import { Level } from 'level';
import { APPLIED_KEY, type AppliedPosition, encodeApplied } from './keyspace.js';
import { levelOpenOptions, type LevelDbTuning } from './level-options.js';

type Db = Level<Uint8Array, Uint8Array>;
type BatchOp = { type: 'put'; key: Uint8Array; value: Uint8Array };

/**
 * Pairs written per LevelDB batch (two batches at a time in memory: one written, one filling).
 * classic-level copies a batch into LevelDB's WriteBatch on the main thread before its worker
 * writes it, about 5-10 ms per MiB on this machine: 8 MiB batches stalled the event loop for
 * 50-500 ms at a time during a restore.
 */
export const FILL_BATCH_BYTES = 1 << 20;
/** Every this many batches are synced (16 MiB, as snapshot files): bounds the dirty pages a multi-GB fill piles up. */
const FILL_SYNC_EVERY = 16;

export class LevelFill {
  private ops: BatchOp[] = [];
  private bytes = 0;
  private batches = 0;
  private writing: Promise<void> | undefined;
  private state: 'filling' | 'finished' | 'aborted' = 'filling';

  private constructor(
    readonly dir: string,
    private readonly db: Db,
  ) {}

  /** A new, empty database at `dir` (anything there before is deleted). */
  static async create(dir: string, tuning: LevelDbTuning | undefined): Promise<LevelFill> {
    await rm(dir, { recursive: true, force: true });
    const db: Db = new Level<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' });
    await db.open({ createIfMissing: true, errorIfExists: true, ...levelOpenOptions(tuning) });
    return new LevelFill(dir, db);
  }

  /** Throws unless the fill is still open (an abort may have come while a batch was written). */
  private assertFilling(): void {
    if (this.state !== 'filling') throw new Error(`the fill of ${this.dir} is ${this.state}`);
  }

  /** Adds pairs; resolves once they are buffered, waiting for the previous batch when a new one is full. */
  async write(pairs: readonly [Uint8Array, Uint8Array][]): Promise<void> {
    this.assertFilling();
    for (const [key, value] of pairs) {
      this.ops.push({ type: 'put', key, value });
      this.bytes += key.length + value.length;
    }
    if (this.bytes < FILL_BATCH_BYTES) return;
    await this.writing;
    this.assertFilling();
    this.writing = this.db.batch(this.ops, { sync: ++this.batches % FILL_SYNC_EVERY === 0 });
    this.writing.catch(() => undefined); // awaited by the next write or finish; must not go unhandled meanwhile
    this.ops = [];
    this.bytes = 0;
  }

  /** Writes what is buffered and the applied position, syncs and closes: the directory then holds the whole state. */
  async finish(applied: AppliedPosition): Promise<void> {
    this.assertFilling();
    try {
      await this.writing;
      this.assertFilling();
      this.ops.push({ type: 'put', key: APPLIED_KEY, value: encodeApplied(applied) });
      await this.db.batch(this.ops, { sync: true });
      this.ops = [];
      await this.db.close();
      // An abort while the last batch was written has deleted the directory: it must not become 'finished'.
      this.assertFilling();
      this.state = 'finished';
    } catch (err) {
      await this.abort();
      throw err;
    }
  }

  /** Stops and deletes the directory. Idempotent; also after finish() (the finished state is then dropped). */
  async abort(): Promise<void> {
    if (this.state === 'aborted') return;
    const wasOpen = this.state === 'filling';
    this.state = 'aborted';
    this.ops = [];
    await this.writing?.catch(() => undefined);
    if (wasOpen) await this.db.close().catch(() => undefined);
    await rm(this.dir, { recursive: true, force: true });
  }
}
