// A node's data dir as one unit:
//   <dataDir>/LOCK            this process owns the dir (pid, host); taken before anything is read
//   <dataDir>/identity.json   which node of which cluster the dir belongs to, and its incarnation
//   <dataDir>/raft/           the Raft log, hard state (term, vote, commit) and snapshot
//   <dataDir>/kv/             the LevelDB state machine
//
// The log and the state machine must agree: the state machine only ever applies entries the log
// made durable first, and the log holds the vote. A state machine without its log (the raft dir
// deleted or replaced) cannot be trusted — its node would come back with its vote forgotten and
// serve data nobody rebuilds — so the node refuses to start (DataDirInconsistentError). The
// opposite, a log without its state machine, is repaired on start: the state machine is restored
// from the log's snapshot and replays the rest.
//
// A data dir with nothing in it is a first start or a start after the data dir was wiped; which of
// the two only the cluster can tell (see Recovery in raft/types.ts): the node then rebuilds from the
// leader before it votes.
import { randomUUID } from 'node:crypto';
import { link, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { HardState } from '../raft/types.js';
import { DataDirIdentityError, DataDirInconsistentError, DataDirLockedError } from './errors.js';

export const LOCK_FILE = 'LOCK';
export const IDENTITY_FILE = 'identity.json';
export const RAFT_DIR = 'raft';
export const KV_DIR = 'kv';

export interface NodeOwner {
  cluster: string;
  nodeId: string;
}

/** Written once, when the data dir is first initialized; never rewritten. */
export interface NodeIdentity extends NodeOwner {
  format: 1;
  /** Random, new for every initialized data dir: tells a rebuilt node from its lost predecessor in logs. */
  incarnation: string;
  createdAt: string;
}

interface LockHolder {
  pid: number;
  hostname: string;
  cluster?: string;
  nodeId?: string;
  startedAt?: string;
}

function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch (err) {
    if (errno(err) === 'ENOENT') return false;
    throw err;
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errno(err) === 'EPERM'; // alive, owned by someone else
  }
}

async function readHolder(file: string): Promise<LockHolder | undefined> {
  try {
    const v = JSON.parse(await readFile(file, 'utf8')) as Partial<LockHolder>;
    if (Number.isSafeInteger(v.pid) && (v.pid as number) > 0 && typeof v.hostname === 'string') return v as LockHolder;
  } catch {
    // unreadable or garbled: handled as an unknown holder
  }
  return undefined;
}

/**
 * Creates `file` with `content` only if it does not exist, atomically: the content is written to a
 * temp file that is then hard-linked into place (link fails if the target exists), so nobody ever
 * sees an empty lock file. Filesystems without hard links fall back to an exclusive create.
 */
async function createExclusive(file: string, content: string): Promise<void> {
  const tmp = `${file}.${process.pid}.${randomUUID()}.tmp`;
  await writeDurably(tmp, content);
  try {
    await link(tmp, file);
  } catch (err) {
    if (errno(err) !== 'EPERM' && errno(err) !== 'ENOTSUP' && errno(err) !== 'EXDEV') throw err;
    const fd = await open(file, 'wx');
    try {
      await fd.writeFile(content);
    } finally {
      await fd.close();
    }
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
}

async function writeDurably(file: string, content: string): Promise<void> {
  const fd = await open(file, 'wx');
  try {
    await fd.writeFile(content);
    await fd.sync();
  } finally {
    await fd.close();
  }
}

/**
 * Exclusive ownership of a data dir by this process: `<dataDir>/LOCK` holds our pid and host. A
 * lock whose process is gone (a crash, SIGKILL) is stale and taken over; one held by a live
 * process refuses the start before anything in the dir is read. LevelDB's own lock on kv/ stays
 * as a second line: it is an OS lock, so two processes racing over a stale LOCK still cannot both
 * get past opening the state machine, which happens before the Raft log is written to.
 */
export class DataDirLock {
  private released = false;

  private constructor(
    readonly dataDir: string,
    readonly file: string,
    private readonly content: string,
  ) {}

  static async acquire(dataDir: string, owner: NodeOwner, onStale?: (holder: LockHolder) => void): Promise<DataDirLock> {
    const file = join(dataDir, LOCK_FILE);
    const content = `${JSON.stringify({ pid: process.pid, hostname: hostname(), cluster: owner.cluster, nodeId: owner.nodeId, startedAt: new Date().toISOString() })}\n`;
    for (let attempt = 0; ; attempt++) {
      try {
        await createExclusive(file, content);
        return new DataDirLock(dataDir, file, content);
      } catch (err) {
        if (errno(err) !== 'EEXIST') throw err;
      }
      const holder = await readHolder(file);
      const stale = holder !== undefined && holder.hostname === hostname() && holder.pid !== process.pid && !processAlive(holder.pid);
      if (!stale || attempt > 0) {
        const who = holder
          ? `process ${holder.pid} on ${holder.hostname}${holder.nodeId ? ` (quorumkv node ${holder.nodeId}${holder.startedAt ? `, started ${holder.startedAt}` : ''})` : ''}`
          : 'an unknown process (the lock file is unreadable)';
        throw new DataDirLockedError(dataDir, file, holder?.pid, who);
      }
      onStale?.(holder);
      // Two starts taking over the same stale lock at the same instant could both succeed here;
      // LevelDB's OS lock on kv/ (taken before the Raft log is written to) stops the second.
      await unlink(file).catch((err) => {
        if (errno(err) !== 'ENOENT') throw err;
      });
    }
  }

  /** Removes the lock file if it is still ours. Safe to call twice. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    const current = await readFile(this.file, 'utf8').catch(() => undefined);
    if (current === this.content) await unlink(this.file).catch(() => undefined);
  }
}

export async function readIdentity(dataDir: string): Promise<NodeIdentity | undefined> {
  const file = join(dataDir, IDENTITY_FILE);
  let raw: string;
  try {
    raw = await readFile(file, 'utf8');
  } catch (err) {
    if (errno(err) === 'ENOENT') return undefined;
    throw err;
  }
  let v: Partial<NodeIdentity>;
  try {
    v = JSON.parse(raw) as Partial<NodeIdentity>;
  } catch {
    throw new DataDirInconsistentError(dataDir, [file], 'the node identity file is not valid JSON');
  }
  if (v.format !== 1 || typeof v.cluster !== 'string' || typeof v.nodeId !== 'string' || typeof v.incarnation !== 'string') {
    throw new DataDirInconsistentError(dataDir, [file], 'the node identity file lacks format 1, cluster, nodeId or incarnation');
  }
  return v as NodeIdentity;
}

/** Writes identity.json for a data dir that has none (atomically: temp file, fsync, rename). */
export async function writeIdentity(dataDir: string, owner: NodeOwner): Promise<NodeIdentity> {
  const identity: NodeIdentity = { format: 1, cluster: owner.cluster, nodeId: owner.nodeId, incarnation: randomUUID(), createdAt: new Date().toISOString() };
  const file = join(dataDir, IDENTITY_FILE);
  const tmp = `${file}.${randomUUID()}.tmp`;
  await writeDurably(tmp, `${JSON.stringify(identity, null, 2)}\n`);
  await rename(tmp, file);
  const dir = await open(dataDir, 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
  return identity;
}

/** What is in a data dir, read before anything in it is opened or changed. */
export interface DataDirContents {
  identity: NodeIdentity | undefined;
  /** <dataDir>/raft holds a Raft log (FileRaftStorage.inspect found a segment). */
  raftLog: boolean;
  /** <dataDir>/kv holds a LevelDB database (its CURRENT file exists). */
  stateMachine: boolean;
}

export async function stateMachineExists(dataDir: string): Promise<boolean> {
  return exists(join(dataDir, KV_DIR, 'CURRENT'));
}

/**
 * The checks that need only the directory listing: the dir belongs to this node, and no state
 * machine sits beside a missing Raft log. Returns whether the dir is fresh (nothing in it yet).
 */
export function checkDataDirLayout(dataDir: string, owner: NodeOwner, found: DataDirContents): { fresh: boolean } {
  const { identity, raftLog, stateMachine } = found;
  if (identity && (identity.cluster !== owner.cluster || identity.nodeId !== owner.nodeId)) {
    throw new DataDirIdentityError(dataDir, join(dataDir, IDENTITY_FILE), identity, owner);
  }
  const raftDir = join(dataDir, RAFT_DIR);
  const kvDir = join(dataDir, KV_DIR);
  if (!raftLog && stateMachine) {
    throw new DataDirInconsistentError(dataDir, [raftDir, kvDir], 'the Raft log (term, vote, log) is missing but the state machine beside it holds data');
  }
  if (!raftLog && identity) {
    throw new DataDirInconsistentError(
      dataDir,
      [join(dataDir, IDENTITY_FILE), raftDir],
      `the identity file says this data dir was initialized (incarnation ${identity.incarnation}) but its Raft log is missing`,
    );
  }
  return { fresh: !raftLog };
}

/** The durable Raft state as FileRaftStorage.inspect found it. */
export interface LogFacts {
  hardState: HardState;
  lastIndex: number;
  snapshotIndex: number;
}

/**
 * The checks that need the Raft log and the state machine's applied index: the state machine never
 * applied beyond what the log holds, and a state machine with data has a log with a hard state.
 */
export function checkStorageConsistency(dataDir: string, log: LogFacts, appliedIndex: number): void {
  const raftDir = join(dataDir, RAFT_DIR);
  const kvDir = join(dataDir, KV_DIR);
  if (appliedIndex > 0 && log.hardState.term === 0 && log.lastIndex === 0 && log.snapshotIndex === 0) {
    throw new DataDirInconsistentError(
      dataDir,
      [raftDir, kvDir],
      `the state machine has applied up to index ${appliedIndex} but the Raft log is empty and has no hard state (term 0, no vote): it was replaced`,
    );
  }
  if (appliedIndex > log.lastIndex) {
    throw new DataDirInconsistentError(
      dataDir,
      [raftDir, kvDir],
      `the state machine has applied up to index ${appliedIndex} but the Raft log ends at ${log.lastIndex} (term ${log.hardState.term})`,
    );
  }
}
