// `quorumkv snapshot status FILE` and `quorumkv snapshot restore FILE --config C --node N`.
//
// A restore seeds one node of a NEW cluster: the config's cluster name must differ from the one the
// backup was taken from (peers refuse streams from another cluster's name, so restored nodes can
// never talk to the old cluster), and its membership is the config's nodes, not the old ones.
// Nothing is written until the whole file has been verified; the data dir is then built beside the
// target (`<dataDir>.restore-<pid>.tmp`) and renamed into place only when complete:
//   snapshots/  the backup's pairs re-framed as a snapshot file with the new membership in its header
//   kv/         the state machine, restored from that file by the streaming restore (applied = index)
//   raft/       a log whose base is the snapshot: index and term from the file, the new membership,
//               hard state {term, no vote, commit = index}
//   identity.json  written fresh: the new cluster's name, this node, a new incarnation
// Every node of the new cluster is restored from the same file, then started.
import { mkdir, readdir, rename, rm, rmdir } from 'node:fs/promises';
import path from 'node:path';
import { SnapshotFileError } from '../api/errors.js';
import { encodeMembers } from '../runtime/snapshot-envelope.js';
import { type BackupSummary, openBackupFile, verifyBackupFile } from '../storage/backup-file.js';
import { KV_DIR, RAFT_DIR, writeIdentity } from '../storage/data-dir.js';
import { InvalidSnapshotError } from '../storage/errors.js';
import { FileRaftStorage } from '../storage/file-raft-storage.js';
import { NODE_FS, syncDir } from '../storage/fs.js';
import { LevelStateMachine } from '../storage/level-state-machine.js';
import { openSnapshotFile, writeSnapshotFile } from '../storage/snapshot-file.js';
import { SnapshotStore, encodeSnapshotRef } from '../storage/snapshot-store.js';
import { loadConfig, selectNode } from './config.js';

export class RestoreError extends Error {
  override name = 'RestoreError';
}

/** Storage's refusal in the CLI's vocabulary (its own exit code). */
function asFileError(file: string, err: unknown): unknown {
  return err instanceof InvalidSnapshotError ? new SnapshotFileError(file, err.detail) : err;
}

/** Verifies the whole file; its metadata, or SnapshotFileError. */
export async function snapshotStatus(file: string): Promise<BackupSummary> {
  try {
    return await verifyBackupFile(path.resolve(file));
  } catch (err) {
    throw asFileError(file, err);
  }
}

export interface RestoreResult {
  nodeId: string;
  dataDir: string;
  cluster: string;
  summary: BackupSummary;
}

async function emptyOrAbsent(dir: string): Promise<boolean> {
  try {
    return (await readdir(dir)).length === 0;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return true;
    throw err;
  }
}

export async function restoreSnapshot(file: string, configPath: string, nodeId: string, options: { dataDir?: string } = {}): Promise<RestoreResult> {
  const config = await loadConfig(configPath);
  const self = selectNode(config, nodeId);
  const dataDir = path.resolve(options.dataDir ?? self.dataDir);
  if (!(await emptyOrAbsent(dataDir))) {
    throw new RestoreError(`${dataDir} (the data dir of node ${nodeId}) is not empty: a restore seeds a new node only; give the new cluster its own data dirs`);
  }
  const source = path.resolve(file);
  const summary = await snapshotStatus(source);
  const { header, trailer } = summary;
  if (trailer.cluster !== '' && trailer.cluster === config.cluster) {
    throw new RestoreError(
      `${configPath}: cluster is ${JSON.stringify(config.cluster)}, the name of the cluster the backup was taken from; a restored cluster must take a new name (set "cluster" to another one) so its nodes can never exchange messages with the old cluster`,
    );
  }
  const conf = { voters: config.nodes.filter((n) => !n.learner).map((n) => n.id), learners: config.nodes.filter((n) => n.learner).map((n) => n.id) };
  const members = config.nodes.map((n) => ({ id: n.id, raftAddress: n.raftAddress, clientAddress: n.clientAddress }));
  const meta = { index: header.index, term: header.term, conf };

  const tmp = `${dataDir}.restore-${process.pid}.tmp`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  try {
    // The file was verified above; reading it again checks it again (it could change under us).
    const store = await SnapshotStore.open({ dir: path.join(tmp, 'snapshots') });
    let ref: Awaited<ReturnType<typeof writeSnapshotFile>>;
    try {
      const backup = await openBackupFile(source);
      ref = await writeSnapshotFile(store, { index: meta.index, term: meta.term, conf, app: encodeMembers(members) }, backup.chunks);
    } catch (err) {
      throw asFileError(file, err);
    }
    const sm = await LevelStateMachine.open({ dir: path.join(tmp, KV_DIR) });
    try {
      const { chunks } = await openSnapshotFile(store, ref);
      await sm.restoreStream({ index: meta.index, term: meta.term }, chunks);
    } finally {
      await sm.close();
    }
    const storage = await FileRaftStorage.open({ dir: path.join(tmp, RAFT_DIR), bootstrap: conf });
    try {
      await storage.save({ hardState: { term: meta.term, vote: '', commit: meta.index }, entries: [], snapshot: { meta, data: encodeSnapshotRef(ref) } });
    } finally {
      await storage.close();
    }
    await writeIdentity(tmp, { cluster: config.cluster, nodeId });
    await syncDir(NODE_FS, tmp);
    // An empty target dir is replaced; rename needs it gone (rmdir refuses if something appeared meanwhile).
    await rmdir(dataDir).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw new RestoreError(`${dataDir} changed during the restore (${err.code}); nothing was written to it`);
    });
    await mkdir(path.dirname(dataDir), { recursive: true });
    await rename(tmp, dataDir);
    await syncDir(NODE_FS, path.dirname(dataDir));
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
  return { nodeId, dataDir, cluster: config.cluster, summary };
}
