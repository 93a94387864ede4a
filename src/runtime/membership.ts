// The addresses of cluster members. The core knows only ids (ConfState); addresses travel in the
// ConfChange `context` so every node learns them from the log, and in snapshots (see
// snapshot-envelope.ts) so a node restored from a snapshot knows members added before it.
import { pack, unpack } from 'msgpackr';
import { decodeConfChange } from '../raft/conf-change-codec.js';
import type { ConfChange, NodeId } from '../raft/types.js';

export interface MemberAddress {
  id: NodeId;
  raftAddress: string;
  clientAddress: string;
}

export interface ConfChangeContext {
  raftAddress: string;
  clientAddress: string;
}

export function encodeConfContext(ctx: ConfChangeContext): Uint8Array {
  return pack({ raftAddress: ctx.raftAddress, clientAddress: ctx.clientAddress });
}

/**
 * Decodes a conf entry's data (the core's encoding, see src/raft/conf-change-codec.ts) and its
 * address context; undefined when the entry is malformed.
 */
export function decodeConfEntry(data: Uint8Array): { change: ConfChange; context?: ConfChangeContext } | undefined {
  let change: ConfChange;
  try {
    change = decodeConfChange(data);
  } catch {
    return undefined;
  }
  let context: ConfChangeContext | undefined;
  if (change.context && change.context.length > 0) {
    try {
      const raw = unpack(change.context) as Partial<ConfChangeContext>;
      if (raw && typeof raw.raftAddress === 'string' && typeof raw.clientAddress === 'string') {
        context = { raftAddress: raw.raftAddress, clientAddress: raw.clientAddress };
      }
    } catch {
      // Addresses are advisory; a change without them still changes membership.
    }
  }
  return { change, context };
}

/** Known member addresses (a superset of the current configuration while a change is in flight). */
export class MemberTable {
  private readonly members = new Map<NodeId, MemberAddress>();

  constructor(initial: Iterable<MemberAddress> = []) {
    for (const m of initial) this.set(m);
  }

  set(member: MemberAddress): void {
    this.members.set(member.id, { ...member });
  }

  get(id: NodeId): MemberAddress | undefined {
    return this.members.get(id);
  }

  delete(id: NodeId): boolean {
    return this.members.delete(id);
  }

  clientAddress(id: NodeId): string {
    return this.members.get(id)?.clientAddress ?? '';
  }

  list(): MemberAddress[] {
    return [...this.members.values()].map((m) => ({ ...m }));
  }
}

/** What applying one conf entry changed in the member table (for the transport's peer list). */
export type MemberTableChange = { kind: 'added'; member: MemberAddress } | { kind: 'removed'; id: NodeId } | { kind: 'none' };

/**
 * Applies a decoded conf entry to the address table. The node's own entry is never removed (a
 * removed node still needs its own address to answer until it stops).
 */
export function applyConfToTable(table: MemberTable, decoded: { change: ConfChange; context?: ConfChangeContext }, selfId: NodeId): MemberTableChange {
  const { change, context } = decoded;
  if (change.type === 'removeNode') {
    if (change.nodeId === selfId) return { kind: 'none' };
    table.delete(change.nodeId);
    return { kind: 'removed', id: change.nodeId };
  }
  if (!context) return { kind: 'none' };
  const member = { id: change.nodeId, ...context };
  table.set(member);
  return { kind: 'added', member };
}
