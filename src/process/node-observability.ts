// Process-side glue for a node's metrics and status page: peer round-trip times measured on the
// Raft traffic, LevelDB batch-commit times around the state machine's apply, and the cluster
// view the status page shows (every member probed with a short deadline).
import type * as grpc from '@grpc/grpc-js';
import type { Message, NodeId } from '../raft/types.js';
import type { RaftNode } from '../runtime/raft-node.js';
import type { ClusterMemberView } from '../server/http-endpoints.js';
import type { StateMachine } from '../storage/state-machine.js';
import type { Transport } from '../transport/transport.js';
import { NodeProbe } from './node-probe.js';

/**
 * The transport, with the time from each heartbeat to a peer until that peer's answer reported
 * as its round-trip time (one heartbeat outstanding per peer, so a lost answer is not counted).
 */
export function withPeerRtt(transport: Transport, observe: (peer: NodeId, seconds: number) => void): Transport {
  const outstanding = new Map<NodeId, number>();
  return {
    start: () => transport.start(),
    send: (messages: Message[]) => {
      const now = performance.now();
      for (const m of messages) if (m.type === 'heartbeat' && !outstanding.has(m.to)) outstanding.set(m.to, now);
      transport.send(messages);
    },
    onMessage: (handler) =>
      transport.onMessage((m) => {
        if (m.type === 'heartbeatResp') {
          const sent = outstanding.get(m.from);
          if (sent !== undefined) {
            outstanding.delete(m.from);
            observe(m.from, (performance.now() - sent) / 1000);
          }
        }
        handler(m);
      }),
    onUnreachable: (handler) =>
      transport.onUnreachable((peer) => {
        outstanding.delete(peer);
        handler(peer);
      }),
    onSnapshotStatus: (handler) => transport.onSnapshotStatus(handler),
    ...(transport.setAdmission ? { setAdmission: transport.setAdmission.bind(transport) } : {}),
    // Without it the runtime would find no snapshot files and stream nothing (snapshot-stream.test.ts).
    ...(transport.setSnapshotFiles ? { setSnapshotFiles: transport.setSnapshotFiles.bind(transport) } : {}),
    addPeer: (peer) => transport.addPeer(peer),
    removePeer: (id) => {
      outstanding.delete(id);
      transport.removePeer(id);
    },
    close: () => transport.close(),
  };
}

/** The state machine, with each apply (one LevelDB write batch) timed. */
export function withTimedApply<T extends StateMachine>(sm: T, observe: (seconds: number) => void): T {
  const apply = sm.apply.bind(sm);
  sm.apply = async (entries) => {
    const started = performance.now();
    try {
      return await apply(entries);
    } finally {
      observe((performance.now() - started) / 1000);
    }
  };
  return sm;
}

/** Probes every member's client address (reusing one probe per address) for the status page. */
export class ClusterView {
  private readonly probes = new Map<string, NodeProbe>();

  constructor(
    private readonly node: () => RaftNode | undefined,
    private readonly credentials: grpc.ChannelCredentials,
    private readonly timeoutMs = 700,
  ) {}

  async members(): Promise<ClusterMemberView[]> {
    const node = this.node();
    if (!node) return [];
    const self = await node.status();
    return Promise.all(
      self.members.map(async (m): Promise<ClusterMemberView> => {
        const base = { id: m.id, clientAddress: m.clientAddress, voter: m.voter };
        if (m.id === self.id) return { ...base, ...this.fromStatus(self) };
        if (!m.clientAddress) return { ...base, healthy: false, error: 'client address unknown' };
        try {
          return { ...base, ...this.fromStatus(await this.probe(m.clientAddress).status(this.timeoutMs)) };
        } catch (err) {
          return { ...base, healthy: false, error: /ECONNREFUSED|No connection/.test((err as Error).message) ? 'connection refused' : 'no answer' };
        }
      }),
    );
  }

  private fromStatus(s: { role: string; term: number; leaderId: string; commitIndex: number; appliedIndex: number }) {
    return { healthy: s.leaderId !== '', role: s.role, term: s.term, leaderId: s.leaderId, commitIndex: s.commitIndex, appliedIndex: s.appliedIndex };
  }

  private probe(address: string): NodeProbe {
    let p = this.probes.get(address);
    if (!p) {
      p = new NodeProbe(address, this.credentials);
      this.probes.set(address, p);
    }
    return p;
  }

  close(): void {
    for (const p of this.probes.values()) p.close();
    this.probes.clear();
  }
}
