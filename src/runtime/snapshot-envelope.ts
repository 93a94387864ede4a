// A Raft snapshot's data = the state machine's bytes plus the member address table at that index.
// Without the table, a node restored from a snapshot (a wiped or brand-new node) would know the
// ids of members added before the snapshot but not how to reach them.
import { pack, unpack } from 'msgpackr';
import type { MemberAddress } from './membership.js';

const MAGIC = 'qkv-snap-1';

interface Envelope {
  magic: string;
  members: MemberAddress[];
  state: Uint8Array;
}

export function wrapSnapshotData(state: Uint8Array, members: MemberAddress[]): Uint8Array {
  const env: Envelope = { magic: MAGIC, members, state };
  return pack(env);
}

/** Unwraps; data that is not an envelope (e.g. an empty initial snapshot) is returned as the state. */
export function unwrapSnapshotData(data: Uint8Array): { state: Uint8Array; members: MemberAddress[] } {
  if (data.length === 0) return { state: data, members: [] };
  try {
    const env = unpack(data) as Partial<Envelope>;
    if (env && env.magic === MAGIC && env.state instanceof Uint8Array && Array.isArray(env.members)) {
      const members = env.members.filter(
        (m): m is MemberAddress => !!m && typeof m.id === 'string' && typeof m.raftAddress === 'string' && typeof m.clientAddress === 'string',
      );
      return { state: env.state, members };
    }
  } catch {
    // fall through: not ours
  }
  return { state: data, members: [] };
}

// ---- streamed snapshots: the member table goes in the snapshot file's header (its `app` bytes) ----

const MEMBERS_MAGIC = 'qkv-members/1';

export function encodeMembers(members: MemberAddress[]): Uint8Array {
  return pack({ magic: MEMBERS_MAGIC, members });
}

export function decodeMembers(bytes: Uint8Array): MemberAddress[] {
  if (bytes.length === 0) return [];
  try {
    const v = unpack(bytes) as { magic?: unknown; members?: unknown };
    if (v?.magic !== MEMBERS_MAGIC || !Array.isArray(v.members)) return [];
    return v.members.filter(
      (m): m is MemberAddress => !!m && typeof m.id === 'string' && typeof m.raftAddress === 'string' && typeof m.clientAddress === 'string',
    );
  } catch {
    return [];
  }
}
