// A strict in-memory filesystem (the Fs of fs.ts) for crash tests, after pebble's strict MemFS.
// Every file and directory keeps what was last made durable apart from what was changed since:
//   - file data becomes durable with sync()/datasync() on the file, or, through a handle opened
//     'r+dsync', when the write returns;
//   - directory entries (a create, rename or unlink) become durable only with sync() on the
//     directory itself (open it with 'r'), never with a sync of the file;
//   - crash() throws away what was not durable: by default all of it; with a CrashPolicy, a prefix
//     of the changes since the last sync survives and the first lost write may be torn (a prefix of
//     its bytes kept), as a power cut in the middle of writeback would leave it.
// Every call takes effect when it is made (synchronously); the promise it returns only reports the
// outcome (a slow fsync takes effect when its delay ends). Handles opened before a crash are dead
// after it: their calls never settle (the process that held them is gone). Faults can be injected per call: an fsync that fails (EIO), a write that fails, a
// slow fsync (awaited before it takes effect). Nothing here uses timers or randomness of its own.
import { posix } from 'node:path';
import type { Fs, FsFile, FsOpenFlags } from './fs.js';

type FileOp = { kind: 'write'; pos: number; bytes: Uint8Array } | { kind: 'truncate'; length: number };
type DirOp = { kind: 'link'; name: string; node: MemNode } | { kind: 'unlink'; name: string } | { kind: 'rename'; from: string; to: string };

class MemFile {
  readonly kind = 'file';
  /** Contents as of the last sync. */
  synced: Uint8Array = new Uint8Array(0);
  /** Changes since the last sync, in order. */
  ops: FileOp[] = [];
  /** synced with ops applied: what reads see. */
  data: Uint8Array = new Uint8Array(0);
}

class MemDir {
  readonly kind = 'dir';
  /** Entries as of the last sync of this directory. */
  synced = new Map<string, MemNode>();
  ops: DirOp[] = [];
  entries = new Map<string, MemNode>();
}

type MemNode = MemFile | MemDir;

/** How much of what was not synced survives a crash (see MemoryFs.crash). */
export interface CrashPolicy {
  /** Of `pending` changes since the last sync of one file or directory, how many survive (0 = strict). */
  keep(pending: number, kind: 'file' | 'dir'): number;
  /** The first lost write of a file keeps this many of its `length` bytes (0 = none: no tear). */
  tear?(length: number): number;
}

export interface MemoryFsFaults {
  /** Before a sync/datasync takes effect: an error to fail it with (e.g. memoryFsError('EIO', …)). */
  syncError?(path: string): Error | undefined;
  /** Before a write: an error to fail it with. */
  writeError?(path: string): Error | undefined;
  /** Awaited before a sync takes effect: a slow disk. */
  syncDelay?(path: string): Promise<void> | undefined;
}

export interface MemoryFsStats {
  syncs: number;
  crashes: number;
  /** Bytes of unsynced writes thrown away by crashes (torn prefixes kept are not counted). */
  lostBytes: number;
  /** Writes torn by a crash. */
  torn: number;
}

const DESCRIPTIONS: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EEXIST: 'file already exists',
  ENOTDIR: 'not a directory',
  EISDIR: 'illegal operation on a directory',
  EBADF: 'bad file descriptor',
  EIO: 'i/o error',
  ENOTEMPTY: 'directory not empty',
};

/** An error shaped like Node's fs errors (code, syscall, path). */
export function memoryFsError(code: string, syscall: string, path: string): NodeJS.ErrnoException {
  const err: NodeJS.ErrnoException = new Error(`${code}: ${DESCRIPTIONS[code] ?? 'error'}, ${syscall} '${path}'`);
  err.code = code;
  err.syscall = syscall;
  err.path = path;
  return err;
}

function applyFileOp(data: Uint8Array, op: FileOp): Uint8Array {
  if (op.kind === 'truncate') {
    if (op.length <= data.length) return data.slice(0, op.length);
    const grown = new Uint8Array(op.length);
    grown.set(data);
    return grown;
  }
  const end = op.pos + op.bytes.length;
  const out = end > data.length ? new Uint8Array(end) : data;
  if (out !== data) out.set(data);
  out.set(op.bytes, op.pos);
  return out;
}

function applyDirOp(entries: Map<string, MemNode>, op: DirOp): void {
  if (op.kind === 'link') entries.set(op.name, op.node);
  else if (op.kind === 'unlink') entries.delete(op.name);
  else {
    const node = entries.get(op.from);
    if (!node) return; // the link it renames was itself lost
    entries.delete(op.from);
    entries.set(op.to, node);
  }
}

export class MemoryFs implements Fs {
  private root = new MemDir();
  /** Bumped by crash(): handles of an older generation are dead. */
  private generation = 0;
  /** Every node created since the last crash (crash() needs to reach unlinked-but-pending ones). */
  private nodes = new Set<MemNode>([this.root]);
  faults: MemoryFsFaults = {};
  readonly stats: MemoryFsStats = { syncs: 0, crashes: 0, lostBytes: 0, torn: 0 };

  // ---- Fs -------------------------------------------------------------------------------------

  async open(path: string, flags: FsOpenFlags): Promise<FsFile> {
    const p = normalize(path);
    const found = this.lookup(p);
    if (flags === 'w') {
      if (found?.kind === 'dir') throw memoryFsError('EISDIR', 'open', p);
      let file = found;
      if (!file) {
        const { dir, name } = this.parentOf(p, 'open');
        file = new MemFile();
        this.nodes.add(file);
        this.dirOp(dir, { kind: 'link', name, node: file });
      } else if (file.data.length > 0) {
        this.fileOp(file, { kind: 'truncate', length: 0 });
      }
      return new MemHandle(this, p, file, this.generation, true);
    }
    if (!found) throw memoryFsError('ENOENT', 'open', p);
    const writable = flags === 'r+' || flags === 'r+dsync';
    if (writable && found.kind === 'dir') throw memoryFsError('EISDIR', 'open', p);
    return new MemHandle(this, p, found, this.generation, writable, flags === 'r+dsync');
  }

  async readFile(path: string): Promise<Buffer> {
    const p = normalize(path);
    const node = this.lookup(p);
    if (!node) throw memoryFsError('ENOENT', 'open', p);
    if (node.kind === 'dir') throw memoryFsError('EISDIR', 'read', p);
    return Buffer.from(node.data);
  }

  /** The bytes a read of `path` would return now, synchronously (simulator checkers); undefined if absent. */
  peek(path: string): Buffer | undefined {
    const node = this.lookup(normalize(path));
    return node && node.kind !== 'dir' ? Buffer.from(node.data) : undefined;
  }

  async readdir(path: string): Promise<string[]> {
    const p = normalize(path);
    const node = this.lookup(p);
    if (!node) throw memoryFsError('ENOENT', 'scandir', p);
    if (node.kind !== 'dir') throw memoryFsError('ENOTDIR', 'scandir', p);
    return [...node.entries.keys()].sort();
  }

  async mkdir(path: string, _options: { recursive: true }): Promise<string | undefined> {
    const p = normalize(path);
    let dir = this.root;
    let first: string | undefined;
    let at = '/';
    for (const part of p.split('/').filter((x) => x.length > 0)) {
      at = posix.join(at, part);
      const next = dir.entries.get(part);
      if (next?.kind === 'file') throw memoryFsError('ENOTDIR', 'mkdir', p);
      if (next) {
        dir = next;
        continue;
      }
      const created = new MemDir();
      this.nodes.add(created);
      this.dirOp(dir, { kind: 'link', name: part, node: created });
      first ??= at;
      dir = created;
    }
    return first;
  }

  async rename(from: string, to: string): Promise<void> {
    const src = normalize(from);
    const dst = normalize(to);
    const node = this.lookup(src);
    if (!node) throw memoryFsError('ENOENT', 'rename', src);
    const a = this.parentOf(src, 'rename');
    const b = this.parentOf(dst, 'rename');
    const existing = b.dir.entries.get(b.name);
    if (existing?.kind === 'dir' && node.kind === 'file') throw memoryFsError('EISDIR', 'rename', dst);
    if (a.dir === b.dir) {
      if (a.name !== b.name) this.dirOp(a.dir, { kind: 'rename', from: a.name, to: b.name });
      return;
    }
    // Across directories the two entries are separate changes (each durable with its own directory).
    this.dirOp(b.dir, { kind: 'link', name: b.name, node });
    this.dirOp(a.dir, { kind: 'unlink', name: a.name });
  }

  async unlink(path: string): Promise<void> {
    const p = normalize(path);
    const node = this.lookup(p);
    if (!node) throw memoryFsError('ENOENT', 'unlink', p);
    if (node.kind === 'dir') throw memoryFsError('EISDIR', 'unlink', p);
    const { dir, name } = this.parentOf(p, 'unlink');
    this.dirOp(dir, { kind: 'unlink', name });
  }

  async removeTree(path: string): Promise<void> {
    const p = normalize(path);
    if (!this.lookup(p)) return;
    const { dir, name } = this.parentOf(p, 'rmdir');
    this.dirOp(dir, { kind: 'unlink', name });
  }

  // ---- crash and inspection -------------------------------------------------------------------

  /**
   * A power cut: every file and directory goes back to its durable state, plus whatever `policy`
   * lets survive of the changes since (default: nothing). Handles opened before are dead.
   */
  crash(policy?: CrashPolicy): void {
    this.stats.crashes++;
    this.generation++;
    for (const node of this.nodes) {
      if (node.kind === 'dir') {
        const keep = clampKeep(policy?.keep(node.ops.length, 'dir') ?? 0, node.ops.length);
        const entries = new Map(node.synced);
        for (const op of node.ops.slice(0, keep)) applyDirOp(entries, op);
        node.synced = entries;
        node.entries = new Map(entries);
        node.ops = [];
      } else {
        const keep = clampKeep(policy?.keep(node.ops.length, 'file') ?? 0, node.ops.length);
        let data = node.synced;
        for (const op of node.ops.slice(0, keep)) data = applyFileOp(data, op);
        const lost = node.ops.slice(keep);
        const first = lost[0];
        if (first?.kind === 'write' && policy?.tear) {
          const kept = Math.max(0, Math.min(first.bytes.length - 1, Math.floor(policy.tear(first.bytes.length))));
          if (kept > 0) {
            data = applyFileOp(data, { kind: 'write', pos: first.pos, bytes: first.bytes.subarray(0, kept) });
            this.stats.torn++;
          }
        }
        for (const op of lost) if (op.kind === 'write') this.stats.lostBytes += op.bytes.length;
        node.synced = data;
        node.data = data.slice();
        node.ops = [];
      }
    }
    this.collect();
  }

  /** Makes everything durable as it is now, as if every file and directory had been fsynced (test setup). */
  syncAll(): void {
    for (const node of this.nodes) this.syncNode(node);
  }

  /** Whether `path` exists now (not necessarily durably). */
  exists(path: string): boolean {
    return this.lookup(normalize(path)) !== undefined;
  }

  /** Bytes written to files and not yet synced, plus directory changes not yet synced (for tests). */
  unsynced(): { fileOps: number; dirOps: number } {
    let fileOps = 0;
    let dirOps = 0;
    for (const node of this.nodes) {
      if (node.kind === 'dir') dirOps += node.ops.length;
      else fileOps += node.ops.length;
    }
    return { fileOps, dirOps };
  }

  // ---- internals (used by MemHandle) ----------------------------------------------------------

  /** @internal */
  isLive(generation: number): boolean {
    return generation === this.generation;
  }

  /** @internal */
  never<T>(): Promise<T> {
    // A new one each time: a shared never-settling promise would collect every caller's
    // continuation (and all it references) for as long as the module lives.
    return new Promise<T>(() => {});
  }

  /** @internal */
  fileOp(file: MemFile, op: FileOp): void {
    file.ops.push(op);
    file.data = applyFileOp(file.data, op);
  }

  /** @internal */
  syncNode(node: MemNode): void {
    this.stats.syncs++;
    if (node.kind === 'dir') {
      node.synced = new Map(node.entries);
      node.ops = [];
    } else {
      node.synced = node.data.slice();
      node.ops = [];
    }
  }

  private dirOp(dir: MemDir, op: DirOp): void {
    dir.ops.push(op);
    applyDirOp(dir.entries, op);
  }

  private lookup(p: string): MemNode | undefined {
    let node: MemNode = this.root;
    for (const part of p.split('/')) {
      if (part.length === 0) continue;
      if (node.kind !== 'dir') return undefined;
      const next: MemNode | undefined = node.entries.get(part);
      if (!next) return undefined;
      node = next;
    }
    return node;
  }

  private parentOf(p: string, syscall: string): { dir: MemDir; name: string } {
    const name = posix.basename(p);
    if (name.length === 0) throw memoryFsError('EISDIR', syscall, p);
    const parent = this.lookup(posix.dirname(p));
    if (!parent) throw memoryFsError('ENOENT', syscall, p);
    if (parent.kind !== 'dir') throw memoryFsError('ENOTDIR', syscall, p);
    return { dir: parent, name };
  }

  /** Forget nodes nothing can reach any more (after a crash, every pending change is gone). */
  private collect(): void {
    const reachable = new Set<MemNode>();
    const walk = (node: MemNode) => {
      if (reachable.has(node)) return;
      reachable.add(node);
      if (node.kind === 'dir') for (const child of node.entries.values()) walk(child);
    };
    walk(this.root);
    this.nodes = reachable;
  }
}

class MemHandle implements FsFile {
  private closed = false;
  private position = 0;

  constructor(
    private readonly fs: MemoryFs,
    private readonly path: string,
    private readonly node: MemNode,
    private readonly generation: number,
    private readonly writable: boolean,
    /** Opened 'r+dsync': each write is followed by what a datasync does, faults included. */
    private readonly dsync = false,
  ) {}

  async write(buffer: Uint8Array, offset: number, length: number, position?: number | null): Promise<{ bytesWritten: number }> {
    if (!this.fs.isLive(this.generation)) return this.fs.never();
    this.assertOpen('write');
    if (this.node.kind === 'dir') throw memoryFsError('EISDIR', 'write', this.path);
    if (!this.writable) throw memoryFsError('EBADF', 'write', this.path);
    const err = this.fs.faults.writeError?.(this.path);
    if (err) throw err;
    const pos = position ?? this.position;
    // Copied: the caller may reuse its buffer, a real write has taken the bytes by now.
    this.fs.fileOp(this.node, { kind: 'write', pos, bytes: buffer.slice(offset, offset + length) });
    if (position === null || position === undefined) this.position = pos + length;
    if (this.dsync) await this.doSync('pwrite (O_DSYNC)');
    return { bytesWritten: length };
  }

  async read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<{ bytesRead: number }> {
    if (!this.fs.isLive(this.generation)) return this.fs.never();
    this.assertOpen('read');
    if (this.node.kind === 'dir') throw memoryFsError('EISDIR', 'read', this.path);
    const bytes = this.node.data.subarray(position, position + length);
    buffer.set(bytes, offset);
    return { bytesRead: bytes.length };
  }

  async stat(): Promise<{ size: number }> {
    if (!this.fs.isLive(this.generation)) return this.fs.never();
    this.assertOpen('fstat');
    return { size: this.node.kind === 'file' ? this.node.data.length : 0 };
  }

  async truncate(length: number): Promise<void> {
    if (!this.fs.isLive(this.generation)) return this.fs.never();
    this.assertOpen('ftruncate');
    if (this.node.kind === 'dir') throw memoryFsError('EISDIR', 'ftruncate', this.path);
    if (!this.writable) throw memoryFsError('EBADF', 'ftruncate', this.path);
    this.fs.fileOp(this.node, { kind: 'truncate', length });
  }

  sync(): Promise<void> {
    return this.doSync('fsync');
  }

  datasync(): Promise<void> {
    return this.doSync('fdatasync');
  }

  async close(): Promise<void> {
    if (!this.fs.isLive(this.generation)) return this.fs.never();
    this.assertOpen('close');
    this.closed = true;
  }

  private async doSync(syscall: string): Promise<void> {
    if (!this.fs.isLive(this.generation)) return this.fs.never();
    this.assertOpen(syscall);
    const delay = this.fs.faults.syncDelay?.(this.path);
    if (delay) await delay;
    // A crash while the sync was on its way to the disk: it never completed.
    if (!this.fs.isLive(this.generation)) return this.fs.never();
    const err = this.fs.faults.syncError?.(this.path);
    if (err) throw err;
    this.fs.syncNode(this.node);
  }

  private assertOpen(syscall: string): void {
    if (this.closed) throw memoryFsError('EBADF', syscall, this.path);
  }
}

function normalize(path: string): string {
  return posix.resolve('/', path);
}

function clampKeep(keep: number, pending: number): number {
  return Math.max(0, Math.min(pending, Math.floor(keep)));
}
