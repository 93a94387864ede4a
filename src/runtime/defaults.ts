// The runtime's defaults: the one place these values live (the config table in
// src/process/config.ts is built from them).
export const RUNTIME_DEFAULTS = Object.freeze({
  /** Snapshot and compact the log every this many applied entries (as etcd). */
  snapshotEntries: 100_000,
  /** ...or once this many bytes of commands were applied since the last snapshot. */
  snapshotBytes: 64 * 1024 * 1024,
  /**
   * ...but only once the commands applied since the last snapshot reach this percent of that
   * snapshot's file: a snapshot rewrites the whole state, so its interval grows with the state.
   */
  snapshotLogPercent: 25,
  /**
   * Bytes of committed entries applied per Ready. Applying decodes and checks every entry on the
   * event loop: a follower catching up with 4 MiB per Ready (the core's default) blocked it for
   * 150-180 ms at a time; 512 KiB keeps that near 20 ms. Live traffic rarely fills it.
   */
  maxApplyBytesPerReady: 512 * 1024,
  /** Entries kept behind a snapshot for slow followers: min(snapshotEntries, this). */
  maxRetainEntries: 1000,
  /** Sync writes waiting for their entry to apply. */
  maxPendingProposals: 10_000,
  /** Linearizable reads waiting for a read index. */
  maxPendingReads: 10_000,
  /** A log save slower than this is logged. */
  slowFsyncMs: 100,
  /** How long stop() waits for in-flight requests. */
  drainTimeoutMs: 2000,
  /** Failback: the preferred node must stay caught up this long before leadership returns to it. */
  failbackHoldMs: 3000,
  /** Failback: "caught up" means within this many entries of the leader's last index. */
  failbackMaxLagEntries: 1000,
});
