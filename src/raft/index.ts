export { RawNode } from './raw-node.js';
export { MemoryStorage } from './memory-storage.js';
export { CompactedError, EntriesLoadingError, UnavailableError, entrySize, type LogStorage } from './log-storage.js';
export { ConfChangeRejectedError, InvariantError, NotLeaderError, ProposalDroppedError, UncommittedLimitError, invariant } from './errors.js';
export { applyConfChangeTo, decodeConfChange, decodeConfEntry, encodeConfEntry, MalformedConfChangeError, type ConfEntry } from './conf-change-codec.js';
export * from './types.js';
