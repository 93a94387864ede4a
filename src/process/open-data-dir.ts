// Opening a node's data dir in an order that refuses every bad start before anything changes:
//
//   1. lock    <dataDir>/LOCK (the dir is created first if it does not exist yet)
//   2. read    identity.json, the Raft log (FileRaftStorage.inspect: read only), whether kv/ holds a database
//   3. check   the dir belongs to this node; no state machine beside a missing Raft log
//   4. open    the state machine (LevelDB takes its own OS lock on kv/ here)
//   5. check   the state machine is not ahead of the log
//   6. repair  and open the Raft log for writing (bootstrap a new one, cut a torn tail, drop temp files)
//   7. write   identity.json for a dir that has none (a new dir, or one from before identity files)
//
// A refusal at 1, 3 or 5 leaves the dir as it was (a dir this start created is removed again) and
// releases the lock. The caller binds its ports before calling this, so a taken port changes nothing.
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import {
  DataDirLock,
  KV_DIR,
  RAFT_DIR,
  checkDataDirLayout,
  checkStorageConsistency,
  readIdentity,
  stateMachineExists,
  writeIdentity,
  type NodeIdentity,
  type NodeOwner,
} from '../storage/data-dir.js';
import { FileRaftStorage, type FileRaftStorageOptions } from '../storage/file-raft-storage.js';
import type { LevelStateMachine } from '../storage/level-state-machine.js';

export interface OpenDataDirOptions {
  dataDir: string;
  owner: NodeOwner;
  /** FileRaftStorage options; `dir` is <dataDir>/raft. */
  raft: Omit<FileRaftStorageOptions, 'dir'>;
  /** Opens <dataDir>/kv. */
  openStateMachine: () => Promise<LevelStateMachine>;
  logger: Logger;
}

export interface OpenedDataDir {
  storage: FileRaftStorage;
  stateMachine: LevelStateMachine;
  identity: NodeIdentity;
  lock: DataDirLock;
  /** The dir held no data: a first start, or a start after it was wiped (the node rebuilds before it votes). */
  fresh: boolean;
}

export async function openDataDir(options: OpenDataDirOptions): Promise<OpenedDataDir> {
  const { dataDir, owner, logger } = options;
  // The first directory mkdir created (undefined when dataDir existed): removed again on refusal.
  const created = await mkdir(dataDir, { recursive: true });
  let lock: DataDirLock;
  try {
    lock = await DataDirLock.acquire(dataDir, owner, (holder) =>
      logger.warn(
        { event: 'data_dir_stale_lock', dataDir, holderPid: holder.pid, startedAt: holder.startedAt },
        'taking over the lock of a process that is gone',
      ),
    );
  } catch (err) {
    if (created) await rm(created, { recursive: true, force: true });
    throw err;
  }
  let stateMachine: LevelStateMachine | undefined;
  try {
    const identity = await readIdentity(dataDir);
    const inspected = await FileRaftStorage.inspect({ ...options.raft, dir: path.join(dataDir, RAFT_DIR) });
    const { fresh } = checkDataDirLayout(dataDir, owner, {
      identity,
      raftLog: !inspected.fresh,
      stateMachine: await stateMachineExists(dataDir),
    });
    stateMachine = await options.openStateMachine();
    const { state } = inspected;
    checkStorageConsistency(
      dataDir,
      { hardState: state.hardState, lastIndex: state.lastIndex(), snapshotIndex: state.snap.meta.index },
      stateMachine.appliedIndex(),
    );
    const storage = await inspected.open();
    const id = identity ?? (await writeIdentity(dataDir, owner));
    logger.info(
      { event: 'data_dir_opened', dataDir, incarnation: id.incarnation, fresh, raftDir: path.join(dataDir, RAFT_DIR), kvDir: path.join(dataDir, KV_DIR) },
      fresh ? 'new data dir: if this node was a member before (its data was lost), it rebuilds from the leader before it votes' : 'data dir opened',
    );
    return { storage, stateMachine, identity: id, lock, fresh };
  } catch (err) {
    await stateMachine?.close().catch(() => undefined);
    await lock.release();
    if (created) await rm(created, { recursive: true, force: true });
    throw err;
  }
}
