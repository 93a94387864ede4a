// The node's HTTP endpoints: /healthz (process alive), /readyz (knows a leader and has applied what
// it knows is committed) and /metrics (Prometheus text).
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { renderGauge } from '../runtime/metrics.js';
import type { RaftNode } from '../runtime/raft-node.js';

export interface HttpEndpoints {
  /** host:port actually bound (the port is resolved when 0 was asked for). */
  readonly address: string;
  close(): Promise<void>;
}

/**
 * Serves the endpoints on `bind` (host:port; port 0 = any free port). `source` may be a getter so
 * the port can be bound before the node exists (a taken port then fails the start before the data
 * dir is touched); until it returns the node, /healthz answers ok and everything else 503.
 */
export async function startHttpEndpoints(
  source: RaftNode | (() => RaftNode | undefined),
  bind: string,
  /** More metric families for /metrics (e.g. the transport's counters, rendered by the process). */
  extraMetrics?: () => string[],
): Promise<HttpEndpoints> {
  const server = createServer((req, res) => {
    const node = typeof source === 'function' ? source() : source;
    if (node) handleHttp(node, req, res, extraMetrics);
    else if ((req.url ?? '/').split('?')[0] === '/healthz') res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    else res.writeHead(503, { 'content-type': 'text/plain' }).end('not ready: the node is still opening its data dir\n');
  });
  const i = bind.lastIndexOf(':');
  const host = bind.slice(0, i);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(Number(bind.slice(i + 1)), host, () => resolve());
  });
  const bound = server.address();
  const port = bound && typeof bound === 'object' ? bound.port : Number(bind.slice(i + 1));
  return {
    address: `${host}:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function handleHttp(node: RaftNode, req: IncomingMessage, res: ServerResponse, extraMetrics?: () => string[]): void {
  const url = (req.url ?? '/').split('?')[0];
  if (url === '/healthz') {
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
  } else if (url === '/readyz') {
    const ok = node.isCaughtUp();
    res
      .writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' })
      .end(ok ? 'ready\n' : 'not ready: no leader known, applying behind commit, or its stored data is damaged (see the log)\n');
  } else if (url === '/metrics') {
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(renderMetrics(node, extraMetrics?.() ?? []));
  } else {
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /healthz, /readyz or /metrics\n');
  }
}

const ROLE_CODES = { follower: 0, preCandidate: 1, candidate: 2, leader: 3 } as const;

export function renderMetrics(node: RaftNode, extra: string[] = []): string {
  const s = node.raftStatus();
  const m = node.metrics;
  const parts = [
    renderGauge('quorumkv_term', 'Current Raft term', s.term),
    renderGauge('quorumkv_commit_index', 'Highest log index known committed', s.commit),
    renderGauge('quorumkv_applied_index', 'Highest log index applied to the state machine', s.applied),
    renderGauge('quorumkv_last_index', 'Last index in the local log', s.lastIndex),
    renderGauge('quorumkv_role', 'Raft role (0 follower, 1 pre-candidate, 2 candidate, 3 leader)', ROLE_CODES[s.role] ?? -1, { role: s.role }),
    renderGauge('quorumkv_is_leader', '1 when this node is the leader', s.role === 'leader' ? 1 : 0),
    renderGauge('quorumkv_follower_lag_ms', 'How far behind the leader this node may be (0 on the leader)', node.followerLagMs()),
    renderGauge('quorumkv_pending_proposals', 'Sync writes waiting to apply', node.pendingProposals),
    renderGauge(
      'quorumkv_parked_waits',
      'Requests parked in the runtime (sync writes, applied-index waiters, reads waiting for a read index)',
      node.parkedWaits,
    ),
    renderGauge(
      'quorumkv_raft_refused_messages_total',
      'Peer messages dropped before the core (not a member, not the leader of the term, learner votes, absurd terms)',
      node.refusedPeerMessages,
    ),
    m.fsyncSeconds.render(),
    m.proposals.render(),
    m.proposalsFailed.render(),
    m.readIndexRounds.render(),
    m.snapshots.render(),
    m.snapshotsInstalled.render(),
    m.leaderChanges.render(),
    m.appliedEntries.render(),
    ...extra,
  ];
  return `${parts.join('\n')}\n`;
}
