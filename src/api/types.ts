// Plain types of the wire contract that the node and the SDK both speak. Imports nothing.

export type Durability = 'sync' | 'async';
export type Consistency = 'linearizable' | 'lease' | 'follower';
export type WaitOutcome = 'committed' | 'lost';
export type NodeRole = 'follower' | 'preCandidate' | 'candidate' | 'leader';

/** What a node reports about itself and, when it leads, about its followers. */
export interface NodeStatus {
  id: string;
  clientAddress: string;
  role: NodeRole;
  term: number;
  leaderId: string;
  leaderClientAddress: string;
  commitIndex: number;
  appliedIndex: number;
  lastIndex: number;
  /** Voters and learners with their client addresses. */
  members: { id: string; clientAddress: string; voter: boolean; raftAddress?: string }[];
  /** Leader only: per-follower match index and lag in entries. */
  followers?: { id: string; match: number; lag: number }[];
}
