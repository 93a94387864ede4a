// `quorumkv rebuild --config FILE --node ID`: the fix for a node whose state machine is damaged
// (StateMachineCorruptionError names this command). With the node stopped, it moves the node's
// data dir aside to `<dataDir>.corrupt-<UTC timestamp>` — never deleting it — so the next start
// finds no data: the node comes back as a wiped node and the leader rebuilds it by sending a
// snapshot (InstallSnapshot) and then the log after it.
//
// "Stopped" is checked, not assumed: a running node holds LevelDB's lock on <dataDir>/kv/LOCK (a
// POSIX fcntl lock). On Linux the lock is looked up in /proc/locks, which touches nothing; elsewhere
// the kv dir is opened and closed again, which fails with LEVEL_LOCKED while the node runs (and,
// when it does not run, lets LevelDB replay its log first — the moved-aside copy stays readable).
import { readFile, rename, stat } from 'node:fs/promises';
import path from 'node:path';
import { loadClusterConfig, selectNode } from './config.js';

export class RebuildError extends Error {
  override name = 'RebuildError';
}

export interface RebuildOptions {
  /** The node's data dir when it is not the config's (QUORUMKV_DATA_DIR, as `serve` honours it). */
  dataDir?: string;
  now?: () => Date;
}

export interface RebuildResult {
  nodeId: string;
  dataDir: string;
  /** Where the old data dir now is. */
  movedTo: string;
}

/** `20260102T030405Z`: sorts by time and is safe in a file name on every platform. */
function stamp(d: Date): string {
  return d
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/** glibc's major()/minor() of a dev_t, as /proc/locks prints them (hex). */
function devParts(dev: bigint): [number, number] {
  const major = Number(((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn));
  const minor = Number((dev & 0xffn) | ((dev >> 12n) & ~0xffn));
  return [major, minor];
}

/**
 * The pid holding a lock on `file` per /proc/locks; null when none holds one; undefined when
 * /proc/locks cannot be read (not Linux).
 */
async function lockHolderLinux(file: string): Promise<number | null | undefined> {
  let table: string;
  try {
    table = await readFile('/proc/locks', 'utf8');
  } catch {
    return undefined;
  }
  const st = await stat(file, { bigint: true });
  const [major, minor] = devParts(st.dev);
  for (const line of table.split('\n')) {
    // "1: POSIX  ADVISORY  WRITE 4242 08:01:1234567 0 EOF" (blocked waiters have a "->" prefix)
    const m = /^\d+:\s+(?:->\s+)?\S+\s+\S+\s+\S+\s+(-?\d+)\s+([0-9a-f]+):([0-9a-f]+):(\d+)\s/.exec(line);
    if (!m) continue;
    if (BigInt(m[4]!) === st.ino && parseInt(m[2]!, 16) === major && parseInt(m[3]!, 16) === minor) return Number(m[1]);
  }
  return null;
}

/** Rejects with RebuildError when a process still has the node's LevelDB open. */
async function assertStopped(nodeId: string, dataDir: string): Promise<void> {
  const kvDir = path.join(dataDir, 'kv');
  const lockFile = path.join(kvDir, 'LOCK');
  if (!(await exists(lockFile))) return; // no state machine was ever opened here
  const running = (pid: string) =>
    new RebuildError(`node ${nodeId} is still running (${pid} holds the lock on ${lockFile}); stop it first, then run rebuild again`);
  const holder = await lockHolderLinux(lockFile);
  if (holder !== undefined) {
    if (holder !== null) throw running(`pid ${holder}`);
    return;
  }
  const { Level } = await import('level');
  const db = new Level(kvDir);
  try {
    await db.open({ createIfMissing: false });
  } catch (err) {
    const e = err as { code?: string; cause?: { code?: string } };
    const codes = [e.code, e.cause?.code];
    if (codes.includes('LEVEL_LOCKED')) throw running('another process');
    return; // it does not open (damaged): nobody is using it either
  }
  await db.close();
}

/** Moves the node's data dir aside (see the file header). The node must be stopped. */
export async function rebuildNode(configPath: string, nodeId: string, options: RebuildOptions = {}): Promise<RebuildResult> {
  const config = await loadClusterConfig(configPath);
  const self = selectNode(config, nodeId);
  const others = config.nodes.filter((n) => n.id !== nodeId && !n.learner);
  if (others.length === 0) {
    throw new RebuildError(
      `node ${nodeId} is the only voter in ${configPath}: there is no leader to rebuild it from; restore its data dir from a backup instead`,
    );
  }
  const dataDir = path.resolve(options.dataDir ?? self.dataDir);
  if (!(await exists(dataDir))) {
    throw new RebuildError(`${dataDir} does not exist: nothing to move aside (started like this, node ${nodeId} is rebuilt from the leader already)`);
  }
  await assertStopped(nodeId, dataDir);
  const base = `${dataDir}.corrupt-${stamp((options.now ?? (() => new Date()))())}`;
  let movedTo = base;
  for (let i = 2; await exists(movedTo); i++) movedTo = `${base}-${i}`;
  await rename(dataDir, movedTo);
  return { nodeId, dataDir, movedTo };
}
