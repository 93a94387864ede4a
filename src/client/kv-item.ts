import { bytesToText } from './bytes.js';

/** Which node served a read and at which applied index (every read reports this). */
export interface ServedBy {
  servedBy: string;
  appliedIndex: number;
}

/** A stored key as returned by get/scan: bytes plus helpers for text. */
export class KvItem implements ServedBy {
  constructor(
    readonly key: Uint8Array,
    readonly value: Uint8Array,
    /** Writes since the key was (re)created; 1 for a fresh key. */
    readonly version: number,
    readonly createIndex: number,
    readonly modIndex: number,
    readonly servedBy: string,
    readonly appliedIndex: number,
    /** The lease the key is attached to (0 = none). */
    readonly lease = 0,
  ) {}

  /** The value as UTF-8 text. */
  text(): string {
    return bytesToText(this.value);
  }

  /** The key as UTF-8 text. */
  keyText(): string {
    return bytesToText(this.key);
  }
}
