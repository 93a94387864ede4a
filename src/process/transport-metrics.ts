// The Raft transport's counters as Prometheus text, for the node's /metrics.
import { renderGauge } from '../runtime/metrics.js';
import type { GrpcTransport } from '../transport/grpc-transport.js';

export function transportMetrics(transport: GrpcTransport): string[] {
  const s = transport.stats();
  const i = s.inbound;
  return [
    renderGauge('quorumkv_raft_received_batches_total', 'Raft message batches accepted from peers', i.batches),
    renderGauge(
      'quorumkv_raft_refused_batches_total',
      'Raft batches and snapshots refused unread: sender not a member, wrong certificate, another cluster, too many messages',
      i.refusedNonMembers + i.refusedIdentity + i.rejectedStreams + i.oversizedBatches,
    ),
    renderGauge('quorumkv_raft_malformed_batches_total', 'Raft batches that did not decode (dropped whole)', i.malformedBatches),
    renderGauge('quorumkv_raft_misrouted_messages_total', 'Raft messages not addressed to this node or not from the stream sender', i.misroutedMessages),
    renderGauge('quorumkv_snapshots_rejected_total', 'Incoming snapshot transfers refused or aborted', i.snapshotsRejected),
  ];
}
