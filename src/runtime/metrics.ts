// What the runtime reports about itself. The runtime declares this small interface and never
// formats metrics; the server implements it with prom-client (src/server/node-metrics.ts), so no
// lower layer imports a higher one. Units: seconds and bytes.

export interface MetricCounter {
  inc(by?: number): void;
}

export interface MetricHistogram {
  observe(value: number): void;
}

export interface NodeMetrics {
  /** fsync (storage.save) latency in seconds. */
  readonly fsyncSeconds: MetricHistogram;
  /** Write proposals accepted by this node as leader. */
  readonly proposals: MetricCounter;
  /** Write proposals that failed (lost, not leader, deadline, overload). */
  readonly proposalsFailed: MetricCounter;
  /** ReadIndex rounds issued (each may serve many reads). */
  readonly readIndexRounds: MetricCounter;
  /** ReadIndex rounds the core refused (not leader, no quorum contact yet). */
  readonly readIndexFailures: MetricCounter;
  /** Snapshots taken by this node. */
  readonly snapshots: MetricCounter;
  /** Seconds to save a snapshot and compact the log behind it. */
  readonly snapshotSaveSeconds: MetricHistogram;
  /** Bytes of the snapshots this node saved. */
  readonly snapshotSaveBytes: MetricCounter;
  /** Snapshots received from a leader and installed. */
  readonly snapshotsInstalled: MetricCounter;
  /** Seconds to install a received snapshot into the state machine. */
  readonly snapshotInstallSeconds: MetricHistogram;
  /** Bytes of the snapshots installed. */
  readonly snapshotInstallBytes: MetricCounter;
  /** Leader changes observed by this node. */
  readonly leaderChanges: MetricCounter;
  /** Log entries applied to the state machine. */
  readonly appliedEntries: MetricCounter;
  /** Seconds to apply one batch of committed entries (state machine write and settling the waiters). */
  readonly applySeconds: MetricHistogram;
}

const NOOP = { inc: () => {}, observe: () => {} };

/** Metrics that go nowhere (a node without an HTTP endpoint, the simulator, tests). */
export function noopNodeMetrics(): NodeMetrics {
  return {
    fsyncSeconds: NOOP,
    proposals: NOOP,
    proposalsFailed: NOOP,
    readIndexRounds: NOOP,
    readIndexFailures: NOOP,
    snapshots: NOOP,
    snapshotSaveSeconds: NOOP,
    snapshotSaveBytes: NOOP,
    snapshotsInstalled: NOOP,
    snapshotInstallSeconds: NOOP,
    snapshotInstallBytes: NOOP,
    leaderChanges: NOOP,
    appliedEntries: NOOP,
    applySeconds: NOOP,
  };
}
