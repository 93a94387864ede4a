export { RawNode } from './raw-node.ts';
export { MemoryStorage } from './memory-storage.ts';
export { CompactedError, UnavailableError, entrySize, type LogStorage } from './log-storage.ts';
export { ConfChangeRejectedError, InvariantError, NotLeaderError, ProposalDroppedError, UncommittedLimitError, invariant } from './errors.ts';
export { applyConfChangeTo, decodeConfChange, decodeConfEntry, encodeConfEntry, MalformedConfChangeError, type ConfEntry } from './conf-change-codec.ts';
export * from './types.ts';
