// The node's Prometheus metrics on prom-client: one Registry per node instance (tests run several
// nodes in one process, so the global default registry is never used), default process and
// Node.js metrics, and an etcd-like set named quorumkv_*. Units are seconds and bytes.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { NodeMetrics } from '../runtime/metrics.js';
import type { RaftNode } from '../runtime/raft-node.js';

/** What the process knows about each peer link (the transport's counters), read at scrape time. */
export interface PeerLinkStats {
  connected: boolean;
  streamFailures: number;
  droppedMessages: number;
  snapshotsFailed: number;
}

export interface NodeMetricsOptions {
  nodeId: string;
  version: string;
  /** The node, once it exists (the HTTP port is bound before the data dir is opened). */
  node: () => RaftNode | undefined;
  /** Per-peer link counters (the Raft transport's), by peer id. */
  peerStats?: () => Record<string, PeerLinkStats>;
  /** Transport-wide counters of refused or malformed inbound Raft traffic. */
  inboundRefusals?: () => { refused: number; malformed: number; misrouted: number; snapshotsRejected: number };
}

/** One leader change as this node saw it, for the status page. */
export interface LeaderChange {
  at: number;
  leaderId: string;
  term: number;
}

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const DISK_BUCKETS = [0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096];
const SNAPSHOT_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
const GRPC_CODES = [
  'OK',
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
];
const HISTORY_LIMIT = 50;

/** A counter whose value is read at scrape time from a count kept elsewhere. */
function observedCounter(registry: Registry, name: string, help: string, read: () => number | undefined): void {
  new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      const v = read();
      this.reset();
      if (v !== undefined && v > 0) this.inc(v);
    },
  });
}

function gauge(registry: Registry, name: string, help: string, read: () => number | undefined): void {
  new Gauge({
    name,
    help,
    registers: [registry],
    collect() {
      const v = read();
      if (v !== undefined) this.set(v);
    },
  });
}

export class NodePrometheus {
  readonly registry = new Registry();
  /** What the runtime reports into (RaftNodeOptions.metrics). */
  readonly runtime: NodeMetrics;
  readonly leaderHistory: LeaderChange[] = [];
  private readonly fsync: Histogram;
  private readonly backendCommit: Histogram;
  private readonly peerRtt: Histogram<'peer'>;
  private readonly peerSent: Counter<'peer'>;
  private readonly peerReceived: Counter<'peer'>;
  private readonly snapshotSend: Histogram<'peer' | 'ok'>;
  private readonly snapshotSentBytes: Counter<'peer'>;
  private readonly requests: Counter<'grpc_method' | 'grpc_code'>;
  private readonly requestSeconds: Histogram<'grpc_method'>;
  private readonly loopDelay: Histogram;

  constructor(options: NodeMetricsOptions) {
    const r = this.registry;
    // prom-client samples event-loop delay with a timer of its own, 10 ms by default: every 100 ms
    // is enough for its gauges, and saves an idle node 90 wake-ups a second.
    collectDefaultMetrics({ register: r, eventLoopMonitoringPrecision: 100 });
    const node = options.node;
    const status = () => node()?.raftStatus();
    new Gauge({ name: 'quorumkv_build_info', help: 'Build information (always 1)', labelNames: ['version', 'node_version'], registers: [r] }).set(
      { version: options.version, node_version: process.version },
      1,
    );
    gauge(r, 'quorumkv_server_has_leader', '1 when this node knows a leader, else 0', () => (status() ? (status()!.leaderId ? 1 : 0) : 0));
    gauge(r, 'quorumkv_server_is_leader', '1 when this node is the leader, else 0', () => (status()?.role === 'leader' ? 1 : 0));
    gauge(r, 'quorumkv_server_is_learner', '1 when this node is a learner (non-voting member), else 0', () =>
      status()?.conf.learners.includes(options.nodeId) ? 1 : 0,
    );
    gauge(r, 'quorumkv_server_term', 'Current Raft term', () => status()?.term);
    gauge(r, 'quorumkv_server_proposals_committed_total', 'Highest log index known committed', () => status()?.commit);
    gauge(r, 'quorumkv_server_proposals_applied_total', 'Highest log index applied to the state machine', () => status()?.applied);
    gauge(r, 'quorumkv_server_last_index', 'Last index in the local log', () => status()?.lastIndex);
    gauge(r, 'quorumkv_server_proposals_pending', 'Sync writes proposed and waiting to apply', () => node()?.pendingProposals);
    gauge(
      r,
      'quorumkv_server_parked_waits',
      'Requests parked in the runtime (sync writes, applied-index waits, reads waiting for a read index)',
      () => node()?.parkedWaits,
    );
    gauge(r, 'quorumkv_server_follower_lag_seconds', 'How far behind the leader this node may be, in seconds (0 on the leader)', () => {
      const n = node();
      return n ? n.followerLagMs() / 1000 : undefined;
    });
    observedCounter(
      r,
      'quorumkv_raft_refused_messages_total',
      'Peer messages dropped before the core (not a member, not the leader of the term, learner votes, absurd terms)',
      () => (node() ? node()!.refusedPeerMessages : undefined),
    );

    const counter = (name: string, help: string) => new Counter({ name, help, registers: [r] });
    const histogram = (name: string, help: string, buckets: number[]) => new Histogram({ name, help, buckets, registers: [r] });
    const leaderChanges = counter('quorumkv_server_leader_changes_seen_total', 'Leader changes seen by this node');
    const history = this.leaderHistory;
    this.runtime = {
      fsyncSeconds: histogram('quorumkv_raft_save_duration_seconds', 'Seconds the runtime waited for one durable save of hard state and entries', DISK_BUCKETS),
      proposals: counter('quorumkv_server_proposals_total', 'Write proposals accepted by this node as leader'),
      proposalsFailed: counter('quorumkv_server_proposals_failed_total', 'Write proposals that failed (lost, not leader, deadline, overload)'),
      readIndexRounds: counter('quorumkv_server_read_indexes_total', 'ReadIndex rounds issued (each may serve many linearizable reads)'),
      readIndexFailures: counter('quorumkv_server_read_indexes_failed_total', 'ReadIndex rounds the Raft core refused'),
      snapshots: counter('quorumkv_snapshot_saves_total', 'Snapshots taken by this node'),
      snapshotSaveSeconds: histogram(
        'quorumkv_snapshot_save_total_duration_seconds',
        'Seconds to save a snapshot and compact the log behind it',
        SNAPSHOT_BUCKETS,
      ),
      snapshotSaveBytes: counter('quorumkv_snapshot_saved_bytes_total', 'Bytes of the snapshots this node saved'),
      snapshotsInstalled: counter('quorumkv_snapshot_installs_total', 'Snapshots received from a leader and installed'),
      snapshotInstallSeconds: histogram(
        'quorumkv_snapshot_install_duration_seconds',
        'Seconds to install a received snapshot into the state machine',
        SNAPSHOT_BUCKETS,
      ),
      snapshotInstallBytes: counter('quorumkv_snapshot_installed_bytes_total', 'Bytes of the snapshots installed'),
      leaderChanges: {
        inc: (by?: number) => {
          leaderChanges.inc(by);
          const s = status();
          history.push({ at: Date.now(), leaderId: s?.leaderId ?? '', term: s?.term ?? 0 });
          if (history.length > HISTORY_LIMIT) history.splice(0, history.length - HISTORY_LIMIT);
        },
      },
      appliedEntries: counter('quorumkv_server_applied_entries_total', 'Log entries applied to the state machine'),
      applySeconds: histogram('quorumkv_server_apply_duration_seconds', 'Seconds to apply one batch of committed entries', LATENCY_BUCKETS),
    };
    this.fsync = histogram('quorumkv_disk_wal_fsync_duration_seconds', 'Seconds of one fsync of the Raft log (group commit)', DISK_BUCKETS);
    this.backendCommit = histogram('quorumkv_disk_backend_commit_duration_seconds', 'Seconds of one LevelDB batch commit of applied entries', DISK_BUCKETS);
    this.peerRtt = new Histogram({
      name: 'quorumkv_network_peer_round_trip_time_seconds',
      help: 'Seconds from a heartbeat to a peer until its answer (leader only)',
      labelNames: ['peer'],
      buckets: [0.0001, 0.0002, 0.0004, 0.0008, 0.0016, 0.0032, 0.0064, 0.0128, 0.0256, 0.0512, 0.1024, 0.2048, 0.4096, 0.8192],
      registers: [r],
    });
    this.peerSent = new Counter({
      name: 'quorumkv_network_peer_sent_bytes_total',
      help: 'Raft message bytes sent to each peer',
      labelNames: ['peer'],
      registers: [r],
    });
    this.peerReceived = new Counter({
      name: 'quorumkv_network_peer_received_bytes_total',
      help: 'Raft message bytes received from each peer',
      labelNames: ['peer'],
      registers: [r],
    });
    const peers = () => options.peerStats?.() ?? {};
    new Counter({
      name: 'quorumkv_network_peer_sent_failures_total',
      help: 'Raft streams to each peer that failed, and messages dropped for it (queue full, encode error)',
      labelNames: ['peer'],
      registers: [r],
      collect() {
        this.reset();
        for (const [peer, s] of Object.entries(peers())) this.inc({ peer }, s.streamFailures + s.droppedMessages);
      },
    });
    new Gauge({
      name: 'quorumkv_network_peer_connected',
      help: '1 while the Raft stream to the peer is up',
      labelNames: ['peer'],
      registers: [r],
      collect() {
        this.reset();
        for (const [peer, s] of Object.entries(peers())) this.set({ peer }, s.connected ? 1 : 0);
      },
    });
    this.snapshotSend = new Histogram({
      name: 'quorumkv_network_snapshot_send_total_duration_seconds',
      help: 'Seconds to stream a snapshot to a peer',
      labelNames: ['peer', 'ok'],
      buckets: SNAPSHOT_BUCKETS,
      registers: [r],
    });
    this.snapshotSentBytes = new Counter({
      name: 'quorumkv_network_snapshot_sent_bytes_total',
      help: 'Snapshot bytes streamed to each peer (completed transfers)',
      labelNames: ['peer'],
      registers: [r],
    });
    const inbound = () => options.inboundRefusals?.();
    observedCounter(
      r,
      'quorumkv_raft_refused_batches_total',
      'Raft batches and snapshots refused unread (not a member, wrong certificate, other cluster, too big)',
      () => inbound()?.refused,
    );
    observedCounter(r, 'quorumkv_raft_malformed_batches_total', 'Raft batches that did not decode (dropped whole)', () => inbound()?.malformed);
    observedCounter(
      r,
      'quorumkv_raft_misrouted_messages_total',
      'Raft messages not addressed to this node or not from the stream sender',
      () => inbound()?.misrouted,
    );
    observedCounter(r, 'quorumkv_snapshots_rejected_total', 'Incoming snapshot transfers refused or aborted', () => inbound()?.snapshotsRejected);
    this.requests = new Counter({
      name: 'quorumkv_grpc_server_handled_total',
      help: 'Client requests completed, by method and gRPC status code',
      labelNames: ['grpc_method', 'grpc_code'],
      registers: [r],
    });
    this.requestSeconds = new Histogram({
      name: 'quorumkv_grpc_server_handling_seconds',
      help: 'Seconds to serve a client request, by method',
      labelNames: ['grpc_method'],
      buckets: LATENCY_BUCKETS,
      registers: [r],
    });
    // Event-loop delay as a histogram (prom-client's own nodejs_eventloop_lag_* are percentile
    // gauges), observed by the process's one event-loop watch (observeEventLoopDelay).
    this.loopDelay = histogram(
      'quorumkv_event_loop_delay_seconds',
      'How late a 20 ms timer fired, in seconds (event-loop delay)',
      [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    );
  }

  /** How late the event loop ran (the process's event-loop watch, src/process/event-loop-watch.ts). */
  observeEventLoopDelay(seconds: number): void {
    this.loopDelay.observe(seconds);
  }

  observeFsync(seconds: number): void {
    this.fsync.observe(seconds);
  }

  observeBackendCommit(seconds: number): void {
    this.backendCommit.observe(seconds);
  }

  observePeerRtt(peer: string, seconds: number): void {
    this.peerRtt.observe({ peer }, seconds);
  }

  /** Implements the transport's observer (TransportObserver). */
  readonly transport = {
    sent: (peer: string, bytes: number) => this.peerSent.inc({ peer }, bytes),
    received: (peer: string, bytes: number) => this.peerReceived.inc({ peer }, bytes),
    snapshotSent: (peer: string, ok: boolean, seconds: number, bytes: number) => {
      this.snapshotSend.observe({ peer, ok: ok ? 'true' : 'false' }, seconds);
      if (ok) this.snapshotSentBytes.inc({ peer }, bytes);
    },
  };

  /** One client request (kv-service onRequest). */
  readonly request = (method: string, code: number, seconds: number): void => {
    this.requests.inc({ grpc_method: method, grpc_code: GRPC_CODES[code] ?? String(code) });
    this.requestSeconds.observe({ grpc_method: method }, seconds);
  };

  /** Client requests so far and their summed seconds, for the status page's charts. */
  async requestTotals(): Promise<{ requests: number; seconds: number }> {
    const handled = await this.requests.get();
    const timed = await this.requestSeconds.get();
    const requests = handled.values.reduce((sum, v) => sum + v.value, 0);
    const seconds = timed.values.filter((v) => v.metricName === 'quorumkv_grpc_server_handling_seconds_sum').reduce((sum, v) => sum + v.value, 0);
    return { requests, seconds };
  }
}
