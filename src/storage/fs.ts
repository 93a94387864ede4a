// The few filesystem calls the durable Raft log makes (file-raft-storage.ts), behind one interface
// so the same code runs over the real disk (NODE_FS) or over MemoryFs (memory-fs.ts), the strict
// in-memory twin the simulator crashes: what was not fsynced is lost, a write in flight is torn.
//
// The shapes are node:fs/promises' own (a FileHandle is an FsFile), so NODE_FS is a thin pass-through.
import { constants } from 'node:fs';
import * as fsp from 'node:fs/promises';

/** An open file (or, opened with 'r', a directory: sync() then makes its entries durable). */
export interface FsFile {
  /** Writes at `position`, or at the handle's own position (advanced by the write) when it is null/undefined. */
  write(buffer: Uint8Array, offset: number, length: number, position?: number | null): Promise<{ bytesWritten: number }>;
  /** Reads up to `length` bytes at `position` into buffer[offset..]; bytesRead 0 at the end of the file. */
  read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  stat(): Promise<{ size: number }>;
  truncate(length: number): Promise<void>;
  /** Data and metadata durable. On a directory: its entries (creates, renames, unlinks) durable. */
  sync(): Promise<void>;
  /** Data durable (and the size, when it changed). */
  datasync(): Promise<void>;
  close(): Promise<void>;
}

/**
 * 'r' read only (files and directories), 'r+' read/write an existing file, 'w' create or truncate;
 * 'r+dsync' like 'r+', and every write is durable when it returns, as if a datasync() followed it
 * (O_DSYNC: one system call, and one thread-pool round trip, where write + datasync take two).
 */
export type FsOpenFlags = 'r' | 'r+' | 'w' | 'r+dsync';

export interface Fs {
  open(path: string, flags: FsOpenFlags): Promise<FsFile>;
  readFile(path: string): Promise<Buffer>;
  /** Entry names of a directory. Fails with code ENOENT when it does not exist. */
  readdir(path: string): Promise<string[]>;
  /** Like mkdir -p; returns the first directory it created, undefined when all existed. */
  mkdir(path: string, options: { recursive: true }): Promise<string | undefined>;
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
  /** Like rm -rf (LevelDB directories beside the live one); a missing path is not an error. */
  removeTree(path: string): Promise<void>;
}

/** The real disk. */
export const NODE_FS: Fs = {
  open: (path, flags) => fsp.open(path, flags === 'r+dsync' ? constants.O_RDWR | constants.O_DSYNC : flags),
  readFile: (path) => fsp.readFile(path),
  readdir: (path) => fsp.readdir(path),
  mkdir: (path, options) => fsp.mkdir(path, options),
  rename: (from, to) => fsp.rename(from, to),
  unlink: (path) => fsp.unlink(path),
  removeTree: (path) => fsp.rm(path, { recursive: true, force: true }),
};

/** Makes directory entries durable: fsync `dir` (open it read-only, sync, close). */
export async function syncDir(fs: Fs, dir: string): Promise<void> {
  const fd = await fs.open(dir, 'r');
  try {
    await fd.sync();
  } finally {
    await fd.close();
  }
}
