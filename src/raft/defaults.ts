// The Raft core's defaults: the one place these values live (the config table in
// src/process/config.ts is built from them).
export const RAFT_DEFAULTS = Object.freeze({
  preVote: true,
  checkQuorum: true,
  /** Append messages in flight per follower before waiting for acks. */
  maxInflightMsgs: 64,
  /** Bytes of entries per append message (at least one entry is always sent). */
  maxSizePerMsg: 1024 * 1024,
  /** The leader refuses proposals beyond this many appended-but-uncommitted entries. */
  maxUncommittedEntries: 1024,
});
