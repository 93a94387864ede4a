// LevelDB's tuning for a store larger than memory, and the open options it becomes.
export interface LevelDbTuning {
  /** Block cache (uncompressed blocks). Default 32 MiB. */
  cacheBytes?: number;
  /** Memtable size: writes buffered before a level-0 table is written (two may exist at once). Default 16 MiB. */
  writeBufferBytes?: number;
  /** Table file size: larger files mean fewer open files for a big store. Default 8 MiB. */
  maxFileBytes?: number;
  /** Table files kept open (each costs an index block in memory). Default 500. */
  maxOpenFiles?: number;
  /** Snappy block compression. Default true. */
  compression?: boolean;
}

export const LEVELDB_DEFAULTS: Required<LevelDbTuning> = {
  cacheBytes: 32 << 20,
  writeBufferBytes: 16 << 20,
  maxFileBytes: 8 << 20,
  maxOpenFiles: 500,
  compression: true,
};

export function levelOpenOptions(t: LevelDbTuning | undefined) {
  const o = { ...LEVELDB_DEFAULTS, ...t };
  return {
    cacheSize: o.cacheBytes,
    writeBufferSize: o.writeBufferBytes,
    maxFileSize: o.maxFileBytes,
    maxOpenFiles: o.maxOpenFiles,
    compression: o.compression,
  };
}
