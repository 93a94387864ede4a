// Public surface of the storage layer.
export type { RaftStorage, StorageUpdate } from './raft-storage.js';
export type { StateMachine, ScanOptions, ScanResult } from './state-machine.js';
export type { Command, Op, Compare, OpResult, CommandResult, CommandErrorName, KeyValue } from '../api/command.js';
export { FileRaftStorage, type FileRaftStorageOptions } from './file-raft-storage.js';
export { MemoryRaftStorage, type MemoryRaftStorageOptions } from './memory-raft-storage.js';
export { LevelStateMachine, CORRUPTION_MARKER, type LevelStateMachineOptions } from './level-state-machine.js';
export { MemoryStateMachine, type MemoryStateMachineOptions } from './memory-state-machine.js';
export { encodeCommand, decodeCommand, validateCommand, MAX_TXN_DEPTH } from './codec.js';
export { prefixEnd } from './keyspace.js';
export { DEFAULT_MAX_SESSIONS, DEFAULT_MAX_RESULTS_PER_SESSION } from './session-table.js';
export {
  StorageCorruptionError,
  StorageFailedError,
  StorageClosedError,
  InvalidStorageUpdateError,
  InvalidCommandError,
  InvalidSnapshotError,
  StateMachineCorruptionError,
} from './errors.js';
export { DataDirInconsistentError, DataDirLockedError, DataDirIdentityError } from './errors.js';
export { DataDirLock, readIdentity, writeIdentity, type NodeIdentity, type NodeOwner } from './data-dir.js';
