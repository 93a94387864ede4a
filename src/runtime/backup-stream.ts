// A backup streamed to a client: the state machine's point-in-time view framed as a backup file
// (storage/backup-file.ts) as the client takes it. The view's iterator is read only when the next
// record is wanted, so a slow client holds a LevelDB snapshot, never the state, in memory.
import type { ConfState, NodeId } from '../raft/types.js';
import { backupFileBytes } from '../storage/backup-file.js';
import type { StateStream } from '../storage/state-machine.js';
import type { BackupStream } from './kv-backend.js';
import type { MemberAddress } from './membership.js';
import { encodeMembers } from './snapshot-envelope.js';

export interface BackupSource {
  nodeId: NodeId;
  cluster: string;
  conf: ConfState;
  members: MemberAddress[];
  /** Term of the entry at the view's index. */
  term: number;
  estimatedBytes: number;
}

export function backupStream(view: StateStream, source: BackupSource): BackupStream {
  const { index } = view.applied;
  const header = { index, term: source.term, conf: source.conf, app: encodeMembers(source.members) };
  const out = backupFileBytes(header, view.chunks, { cluster: source.cluster, nodeId: source.nodeId });
  return {
    info: {
      nodeId: source.nodeId,
      index,
      term: source.term,
      voters: [...source.conf.voters],
      learners: [...source.conf.learners],
      members: source.members,
      estimatedBytes: source.estimatedBytes,
    },
    bytes: out.bytes,
    totals: () => {
      const s = out.summary();
      return s && { bytes: s.fileBytes, crc32: s.fileCrc32, pairs: s.trailer.pairs, keys: s.trailer.keys };
    },
  };
}
